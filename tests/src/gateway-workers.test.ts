// A gateway with two worker threads on one Redis (docs/workers.md), through
// real sockets: each worker answers, a peer announced through one worker is
// returned through the other, counts stay exact while both write, /metrics
// is one, a terminated worker is replaced while the other keeps serving, and
// SIGTERM drains both, requests in flight included. Which worker answered is
// read from shoal_gateway_worker_requests_total{worker} before and after one
// request at a time; distinct source ports (one UDP socket or one TCP
// connection per client) spread clients over the workers (SO_REUSEPORT).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import { sleep, waitFor } from '@shoal/testing/processes';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import {
  connectPacket,
  randomInfoHash,
  type UdpTrackerClient,
} from '@shoal/testing/tracker-client';
import { MAX_CLIENTS, peer, sample, workersProbe } from './harness/workers.ts';

const TOKEN = 'workers-admin-token-0123456789';
const WORKERS = 2;

let redis: RedisServer;
let gateway: GatewayProcess;
const probe = workersProbe(() => gateway, WORKERS, TOKEN);
const {
  metricsText,
  perWorker,
  workerOf,
  udpClient,
  udpClientPerWorker,
  announce,
  scrape,
  freshHttpAnnounce,
  admin,
} = probe;

beforeAll(async () => {
  redis = await startRedis();
  gateway = await startGateway(
    {
      GATEWAY_WORKERS: String(WORKERS),
      STORAGE_DRIVER: 'redis',
      REDIS_ADDRESSES: redis.address,
      REDIS_PASSWORD: redis.password ?? '',
      // The drain test stops Redis with requests in flight: they must wait, not time out.
      REDIS_COMMAND_TIMEOUT_MS: '600000',
      ADMIN_API_TOKEN: TOKEN,
      STATS_INTERVAL_SECONDS: '1',
      // The drain test reads each worker's waiting announces from the queue signal.
      LOAD_SAMPLE_MS: '50',
      LOAD_QUEUE_TARGET: '1000',
      // The drain test holds requests in flight while it checks each worker.
      SHUTDOWN_GRACE_SECONDS: '300',
    },
    { timeoutMs: 180_000 },
  );
}, 240_000);

afterAll(async () => {
  await probe.closeClients();
  if (redis?.pid !== undefined) process.kill(redis.pid, 'SIGCONT');
  await gateway?.stop();
  await redis?.close();
});

describe('a gateway with two workers on Redis', () => {
  it('each worker answers, over UDP and over HTTP', async () => {
    expect((await udpClientPerWorker()).size).toBe(WORKERS);
    const seen = new Set<number>();
    const swarm = randomInfoHash();
    for (let i = 0; i < MAX_CLIENTS && seen.size < WORKERS; i++)
      seen.add(await workerOf(() => freshHttpAnnounce(peer(30_000 + i, 1n, swarm))));
    expect(seen.size).toBe(WORKERS);
  }, 180_000);

  it('a peer announced through one worker is returned through the other', async () => {
    const byWorker = await udpClientPerWorker();
    const a = byWorker.get(0)!;
    const b = byWorker.get(1)!;
    const swarm = randomInfoHash();
    await announce(a, peer(41_001, 0n, swarm));
    const reply = await announce(b, peer(41_002, 10n, swarm));
    expect(reply.peers).toEqual(['127.0.0.1:41001']);
    expect(reply.seeders).toBe(1);
    expect(reply.leechers).toBe(1);
    // And over HTTP, from whichever worker a fresh connection reaches.
    const http = await freshHttpAnnounce(peer(41_003, 10n, swarm));
    expect(http.peers.sort()).toEqual(['127.0.0.1:41001', '127.0.0.1:41002']);
  }, 180_000);

  it('counts stay exact while both workers write one swarm at once', async () => {
    const swarm = randomInfoHash();
    const n = 40;
    const pool = await Promise.all(Array.from({ length: n }, () => udpClient()));
    const before = await perWorker();
    const peers = pool.map((_, i) => peer(42_000 + i, i % 2 === 0 ? 0n : 100n, swarm));
    await Promise.all(pool.map((c, i) => announce(c, peers[i]!)));
    // Ten leechers complete.
    await probe.completeTwice(
      [...pool.keys()]
        .filter((i) => i % 2 === 1)
        .slice(0, 10)
        .map((i) => [pool[i]!, peers[i]!]),
    );
    const after = await perWorker();
    // Both workers took part (2^-39 that one got none of 40 clients).
    for (let w = 0; w < WORKERS; w++) expect(after[w]!).toBeGreaterThan(before[w]!);
    expect(await scrape(pool[0]!, [swarm])).toEqual([
      { complete: 30, incomplete: 10, downloaded: 10 },
    ]);
  }, 180_000);

  it('serves one /metrics: counters summed over workers, the swarm gauges from the store', async () => {
    const text = await metricsText();
    const total = sample(text, 'shoal_requests_total');
    const byWorker = sample(text, 'shoal_gateway_worker_requests_total');
    // No worker was replaced yet: the total is exactly the workers' sum.
    expect(total).toBe(byWorker);
    expect(sample(text, 'shoal_gateway_workers')).toBe(WORKERS);
    expect(sample(text, 'shoal_gateway_workers_configured')).toBe(WORKERS);
    // One process: its CPU once, not once per worker.
    expect(text.match(/^process_cpu_user_seconds_total /gm)).toHaveLength(1);
    await waitFor(
      'the swarm gauges to count the swarms announced above',
      async () => sample(await metricsText(), 'shoal_swarm_torrents') >= 3,
      60_000,
      500,
    );
  }, 120_000);

  it('replaces a terminated worker while the other keeps serving, and keeps the totals', async () => {
    interface Listed {
      workers: Array<{ index: number; threadId?: number; state: string; restarts: number }>;
    }
    const list = async (): Promise<Listed['workers']> =>
      ((await (await admin('/v1/admin/workers')).json()) as Listed).workers;
    const [, old] = await list();
    const totalBefore = sample(await metricsText(), 'shoal_requests_total');
    expect((await admin('/v1/admin/workers/9/terminate', 'POST')).status).toBe(404);
    expect((await fetch(gateway.adminUrl('/v1/admin/workers'))).status).toBe(401);
    expect((await admin('/v1/admin/workers/1/terminate', 'POST')).status).toBe(202);
    // Once its thread is gone its sockets are closed: every client reaches the other.
    await waitFor(
      'worker 1 to exit',
      async () => (await list())[1]?.threadId !== old?.threadId,
      60_000,
      200,
    );
    const swarm = randomInfoHash();
    for (let i = 0; i < 10; i++) {
      const client = await udpClient();
      const reply = await announce(client, peer(43_000 + i, 0n, swarm));
      expect(reply.seeders).toBe(i + 1);
    }
    await waitFor(
      'the replacement to serve',
      async () => (await list())[1]?.state === 'serving',
      120_000,
      500,
    );
    expect((await list())[1]?.restarts).toBe(1);
    const text = await metricsText();
    expect(sample(text, 'shoal_gateway_worker_restarts_total')).toBe(1);
    // What the gone worker counted stays in the totals (counters never go down).
    expect(sample(text, 'shoal_requests_total')).toBeGreaterThanOrEqual(totalBefore + 20);
    expect((await udpClientPerWorker()).size).toBe(WORKERS);
  }, 300_000);

  it('SIGTERM drains every worker: requests in flight on each are answered, then the process exits 0', async () => {
    const byWorker = await udpClientPerWorker();
    const swarm = randomInfoHash();
    const queued = async (): Promise<number> =>
      sample(await metricsText(), 'shoal_gateway_load_signal', { signal: 'queue' });
    process.kill(redis.pid!, 'SIGSTOP');
    // Announces that wait as long as the test needs (the client's own timeout is 2 s).
    const held = async (client: UdpTrackerClient, port: number): Promise<number> =>
      (await announce(client, peer(port, 0n, swarm), 240_000)).seeders;
    // One announce waits on worker 0, two on worker 1: the max over workers of
    // waiting / LOAD_QUEUE_TARGET reads 0.001, then 0.002.
    const inFlight = [held(byWorker.get(0)!, 44_001)];
    await waitFor('worker 0 to wait on Redis', async () => (await queued()) >= 0.001, 60_000, 100);
    const c1 = byWorker.get(1)!;
    inFlight.push(held(c1, 44_002), held(c1, 44_003));
    await waitFor('worker 1 to wait on Redis', async () => (await queued()) >= 0.002, 60_000, 100);

    const exited = gateway.stop(120_000);
    // Each worker drops what arrives once it drains: a probe to each, counted
    // as dropped "closing", shows both are draining before Redis resumes.
    const dropped = async (): Promise<number> =>
      sample(await metricsText(), 'shoal_udp_dropped_packets_total', { reason: 'closing' });
    await waitFor(
      'readiness to turn to shutting down',
      async () => (await fetch(gateway.adminUrl('/readyz'))).status === 503,
      60_000,
      100,
    );
    for (const [w, client] of byWorker) {
      const before = await dropped();
      for (let probe = 0; probe < 100; probe++) {
        void client.exchange(connectPacket(0xffff_0000 + w), 0xffff_0000 + w, 100);
        if ((await dropped()) > before) break;
        await sleep(200);
      }
      expect(await dropped(), `worker ${w} draining`).toBeGreaterThan(before);
    }
    process.kill(redis.pid!, 'SIGCONT');
    const replies = await Promise.all(inFlight);
    expect(replies.sort()).toEqual([1, 2, 3]);
    expect(await exited).toBe(0);
    const drained = gateway.stdout.filter((l) => l.includes('"msg":"worker drained"'));
    expect(drained.map((l) => (JSON.parse(l) as { worker: number }).worker).sort()).toEqual([0, 1]);
  }, 300_000);
});
