// Per-address announce rate limits through real gateway processes
// (docs/policy.md "The chain in the gateway"). A token bucket of 5 at 1 token
// a second: five quick announces pass, the sixth is refused, and a second
// later one more passes (a rate, not a ban). One gateway per protocol, so the
// two buckets of 127.0.0.1 do not share tokens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import { sleep } from '@shoal/testing/processes';
import {
  httpAnnounceOutcome,
  refusalsCounted,
  udpAnnounceOutcome,
  verdict,
} from './harness/policy.ts';
import { randomInfoHash, randomPeerId, UdpTrackerClient } from '@shoal/testing/tracker-client';

const LIMITED = {
  STORAGE_DRIVER: 'memory',
  RATE_LIMIT_ANNOUNCES_PER_SECOND: '1',
  RATE_LIMIT_ANNOUNCE_BURST: '5',
};
const RATE_LIMITED = 'too many requests from your address, slow down [POLICY_ERR_RATE_LIMITED]';

let httpGateway: GatewayProcess | undefined;
let udpGateway: GatewayProcess | undefined;

beforeAll(async () => {
  [httpGateway, udpGateway] = await Promise.all([startGateway(LIMITED), startGateway(LIMITED)]);
}, 60_000);

afterAll(async () => {
  await Promise.all([httpGateway?.stop(), udpGateway?.stop()]);
}, 30_000);

describe('announce rate limit per address', () => {
  it('over HTTP, refuses the 6th quick announce with POLICY_ERR_RATE_LIMITED and serves again after a token is back', async () => {
    const g = httpGateway!;
    const infoHash = randomInfoHash();
    const verdicts: string[] = [];
    const reasons: string[] = [];
    for (let i = 0; i < 6; i++) {
      const o = await httpAnnounceOutcome(g.announceUrl('http'), {
        infoHash,
        peerId: randomPeerId(),
        port: 44_000 + i,
        left: 1n,
      });
      verdicts.push(verdict(o));
      if (!o.ok) reasons.push(o.reason);
    }
    expect(verdicts).toEqual([...Array<string>(5).fill('served'), 'POLICY_ERR_RATE_LIMITED']);
    expect(reasons).toEqual([RATE_LIMITED]);
    expect(await refusalsCounted(g.adminUrl('/metrics'), 'POLICY_ERR_RATE_LIMITED')).toBe(1);
    await sleep(1_100);
    const again = await httpAnnounceOutcome(g.announceUrl('http'), {
      infoHash,
      peerId: randomPeerId(),
      port: 44_010,
      left: 1n,
    });
    expect(verdict(again)).toBe('served');
    expect(g.alive()).toBe(true);
  }, 20_000);

  it('over UDP, answers the 6th quick announce with an error action carrying POLICY_ERR_RATE_LIMITED', async () => {
    const g = udpGateway!;
    const client = await UdpTrackerClient.open(g.udpPort, g.host);
    try {
      // Connects have their own limit (RATE_LIMIT_CONNECTS_PER_SECOND), off here.
      const connectionId = await client.connect();
      const infoHash = randomInfoHash();
      const verdicts: string[] = [];
      const reasons: string[] = [];
      for (let i = 0; i < 6; i++) {
        const o = await udpAnnounceOutcome(client, connectionId, {
          infoHash,
          peerId: randomPeerId(),
          port: 44_100 + i,
          left: 1n,
        });
        verdicts.push(verdict(o));
        if (!o.ok) reasons.push(o.reason);
      }
      expect(verdicts).toEqual([...Array<string>(5).fill('served'), 'POLICY_ERR_RATE_LIMITED']);
      expect(reasons).toEqual([RATE_LIMITED]);
      await sleep(1_100);
      const again = await udpAnnounceOutcome(client, connectionId, {
        infoHash,
        peerId: randomPeerId(),
        port: 44_110,
        left: 1n,
      });
      expect(verdict(again)).toBe('served');
    } finally {
      await client.close();
    }
    expect(g.alive()).toBe(true);
  }, 20_000);
});
