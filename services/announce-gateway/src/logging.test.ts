// docs/observability.md: one log line per failure of ours, carrying its error code and the
// request id; a client's own mistakes are metrics, not error lines.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '@shoal/storage/memory';
import { captureLogs } from '@shoal/testing/logs';
import type { GatewayStorage } from './storage.ts';
import { makeGateway } from '../test/support.ts';

const INFO_HASH = '%12%34%56%78%9a%bc%de%f1%23%45%67%89%ab%cd%ef%12%34%56%78%9a';
const announce = `/announce?info_hash=${INFO_HASH}&peer_id=-TR3000-abcdefghijkl&port=6881&left=0`;

describe('gateway logs', () => {
  it('logs a failure of ours once, with its code and the X-Request-Id, and no line for a bad request', async () => {
    const { lines, stream } = captureLogs();
    const broken: GatewayStorage = Object.assign(createMemoryStore({ peerLifetimeSeconds: 1860 }), {
      announceSync: undefined,
      announce: () => Promise.reject(new Error('disk on fire')),
    });
    const t = makeGateway({}, { storage: broken, logger: pino({ level: 'info' }, stream) });
    try {
      const res = await t.gateway.http.inject({
        url: announce,
        headers: { 'x-request-id': 'req-42' },
      });
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('GATEWAY_ERR_INTERNAL');
      const bad = await t.gateway.http.inject({ url: '/announce?info_hash=short' });
      expect(bad.body).toContain('failure reason');

      const errors = lines.filter((l) => (l.level as number) >= 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({
        code: 'GATEWAY_ERR_INTERNAL',
        reqId: 'req-42',
        action: 'announce',
      });
      expect((errors[0]!.err as { message: string }).message).toContain('disk on fire');
    } finally {
      await t.close();
    }
  });
});
