// The gateway with STORAGE_DRIVER=remote against the real storage-api
// process: tracker semantics over HTTP and UDP through the batch
// endpoint, coalescing under a burst, immediate "retry later" while
// storage-api is gone, and recovery without touching the gateway.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpAnnounceOutcome, udpAnnounceOutcome } from './harness/policy.ts';
import {
  startGateway,
  startService,
  storageApiEnv,
  type GatewayProcess,
  type ServiceProcess,
} from '@shoal/testing/launcher';
import { waitFor } from '@shoal/testing/processes';
import {
  UdpTrackerClient,
  httpAnnounce,
  httpScrape,
  randomInfoHash,
  randomPeerId,
} from '@shoal/testing/tracker-client';

const token = randomBytes(24).toString('hex');
let api: ServiceProcess | undefined;
let gateway: GatewayProcess;

async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(gateway.adminUrl('/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

/** An HTTP announce whose failure reason is an answer, not a throw (an HTTP status other than 200 throws). */
const leecherAnnounce = (infoHash: Buffer, port: number) =>
  httpAnnounceOutcome(gateway.announceUrl('http'), {
    infoHash,
    peerId: randomPeerId(),
    port,
    left: 1n,
  });

beforeAll(async () => {
  // storage-api as users run it, memory peer store; a restart keeps its port, so the gateway's URL stays valid.
  api = await startService({
    service: 'storage-api',
    env: storageApiEnv(token, 'memory', { LOG_LEVEL: 'info' }),
  });
  gateway = await startGateway({
    STORAGE_DRIVER: 'remote',
    STORAGE_API_URL: `http://127.0.0.1:${Number(api.listening.port)}`,
    STORAGE_API_TOKEN: token,
    REMOTE_BREAKER_FAILURES: '3',
    REMOTE_BREAKER_OPEN_MS: '300',
    REMOTE_TIMEOUT_MS: '1000',
  });
}, 60_000);

afterAll(async () => {
  await Promise.all([gateway?.stop(), api?.stop()]);
});

describe('gateway with STORAGE_DRIVER=remote and a real storage-api', () => {
  it('serves HTTP and UDP announces and scrapes from one swarm kept by storage-api', async () => {
    const infoHash = randomInfoHash();
    const seeder = await httpAnnounce(gateway.announceUrl('http'), {
      infoHash,
      peerId: randomPeerId(),
      port: 51_001,
      left: 0n,
      event: 'started',
    });
    expect(seeder).toMatchObject({ seeders: 1, leechers: 0, peers: [] });
    const udp = await UdpTrackerClient.open(gateway.udpPort);
    try {
      const leecher = await udp.announce({
        infoHash,
        peerId: randomPeerId(),
        port: 51_002,
        left: 100n,
        event: 'started',
      });
      expect(leecher).toMatchObject({ seeders: 1, leechers: 1, peers: ['127.0.0.1:51001'] });
      expect(await udp.scrape([infoHash])).toEqual([{ complete: 1, incomplete: 1, downloaded: 0 }]);
    } finally {
      await udp.close();
    }
    expect(await httpScrape(gateway.scrapeUrl(), [infoHash])).toEqual([
      { complete: 1, incomplete: 1, downloaded: 0 },
    ]);
    const ready = await fetch(gateway.adminUrl('/readyz'));
    expect(ready.status).toBe(200);
  });

  it('coalesces a burst of 100 UDP announces into a few batch requests', async () => {
    const batchesBefore = await metric('shoal_storage_client_batch_size_count');
    const okBefore = await metric('shoal_storage_client_requests_total', '{outcome="ok"}');
    const udp = await UdpTrackerClient.open(gateway.udpPort);
    try {
      const connectionId = await udp.connect();
      const infoHash = randomInfoHash();
      const replies = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          udp.announce(
            { infoHash, peerId: randomPeerId(), port: 52_000 + i, left: 100n, event: 'started' },
            connectionId,
          ),
        ),
      );
      expect(Math.max(...replies.map((r) => r.leechers))).toBe(100);
    } finally {
      await udp.close();
    }
    const batches = (await metric('shoal_storage_client_batch_size_count')) - batchesBefore;
    const ok = (await metric('shoal_storage_client_requests_total', '{outcome="ok"}')) - okBefore;
    expect(ok).toBe(100);
    // One socket read burst -> a handful of ticks; one request per announce would be 100.
    expect(batches).toBeLessThanOrEqual(20);
  });

  it('answers "retry later" at once while storage-api is gone, and recovers by itself when it returns', async () => {
    await api!.stop();
    const infoHash = randomInfoHash();
    const udp = await UdpTrackerClient.open(gateway.udpPort);
    try {
      const connectionId = await udp.connect();
      const slowest: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        const answer = await leecherAnnounce(infoHash, 53_000 + i);
        slowest.push(performance.now() - started);
        expect(answer).toMatchObject({
          ok: false,
          reason: expect.stringContaining('retry later') as unknown,
          retryIn: expect.any(Number) as unknown,
        });
      }
      const started = performance.now();
      const reply = await udpAnnounceOutcome(udp, connectionId, {
        infoHash,
        peerId: randomPeerId(),
        port: 53_100,
        left: 1n,
      });
      slowest.push(performance.now() - started);
      expect(reply).toMatchObject({
        ok: false,
        reason: expect.stringContaining('retry later') as unknown,
      });
      // No hang: loopback refusals and the open circuit answer within milliseconds.
      expect(Math.max(...slowest)).toBeLessThan(250);
      expect(await metric('shoal_storage_client_circuit_state')).toBe(2);
      // Ready before the outage, so it stays in its Service and says why (docs/decisions.md).
      const degraded = await fetch(gateway.adminUrl('/readyz'));
      expect(degraded.status).toBe(200);
      expect(await degraded.json()).toMatchObject({
        status: 'degraded',
        message: expect.stringContaining('storage unavailable') as unknown,
      });

      await api!.restart();
      await waitFor(
        'the gateway to serve announces again',
        async () => (await leecherAnnounce(infoHash, 53_200)).ok,
        10_000,
        100,
      );
      const back = await udp.announce(
        { infoHash, peerId: randomPeerId(), port: 53_201, left: 0n, event: 'started' },
        connectionId,
      );
      expect(back.seeders).toBe(1);
      expect(await metric('shoal_storage_client_circuit_state')).toBe(0);
      expect((await fetch(gateway.adminUrl('/readyz'))).status).toBe(200);
    } finally {
      await udp.close();
    }
    expect(gateway.alive()).toBe(true);
  }, 30_000);
});
