import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announceQuery, hashOf, makeGateway, type TestGateway } from '../test/support.ts';

describe('gateway lifecycle and admin', () => {
  let t: TestGateway;
  let ports: { httpPort: number | undefined; udpPort: number | undefined; adminPort: number };
  beforeAll(async () => {
    t = makeGateway();
    ports = await t.gateway.listen();
  });
  afterAll(() => t.close());

  it('serves HTTP and UDP on one port number even when PORT=0', () => {
    expect(ports.httpPort).toBeGreaterThan(0);
    expect(ports.udpPort).toBe(ports.httpPort);
    expect(ports.adminPort).not.toBe(ports.httpPort);
  });

  it('answers /healthz and /readyz on the admin port', async () => {
    const base = `http://127.0.0.1:${ports.adminPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it('exposes request counters, durations and process metrics without infohashes or addresses', async () => {
    await fetch(
      `http://127.0.0.1:${ports.httpPort}/announce?${announceQuery({ infoHash: hashOf('metrics'), port: 1 })}`,
    );
    const res = await fetch(`http://127.0.0.1:${ports.adminPort}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(
      /shoal_requests_total\{protocol="http",action="announce",outcome="ok"\} 1/,
    );
    expect(text).toMatch(
      /shoal_request_duration_seconds_count\{protocol="http",action="announce"\} 1/,
    );
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).not.toContain('127.0.0.1');
    expect(text).not.toContain('metrics\\u0000');
  });
});
