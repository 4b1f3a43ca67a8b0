// Two (then three) real gc-worker processes electing through a real
// storage-api whose leases live in a real Redis (docs/gc-worker.md: two gc-workers
// never collect at the same time; killing the leader hands over within the
// lease duration). Between the workers and storage-api sits a recorder
// that times every POST /v1/gc (held 40 ms so overlaps would show) and passes
// everything through.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import { startService, storageApiEnv, type ServiceProcess } from '@shoal/testing/launcher';

const TOKEN = 'gc-process-test-token-0123456789';
const LEASE_S = 2;
const RETRY_S = 0.2;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Run {
  client: string;
  start: number;
  end: number;
}

let redis: RedisServer;
let storageApi: ServiceProcess;
let recorder: Server;
let recorderUrl: string;
let logDir: string;
const runs: Run[] = [];
const workers: ServiceProcess[] = [];

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function startRecorder(target: string): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const payload = await body(req);
      const isGc = req.method === 'POST' && req.url === '/v1/gc';
      const start = Date.now();
      if (isGc) await sleep(40);
      const upstream = await fetch(`${target}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers: {
          authorization: req.headers.authorization ?? '',
          'content-type': 'application/json',
        },
        ...(payload.length > 0 ? { body: payload } : {}),
      });
      const text = await upstream.text();
      if (isGc)
        runs.push({ client: String(req.headers['x-shoal-client']), start, end: Date.now() });
      res.writeHead(upstream.status, { 'content-type': 'application/json' });
      res.end(text);
    })().catch(() => {
      res.writeHead(502);
      res.end('{"code":"RECORDER_UPSTREAM"}');
    });
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

function startWorker(id: string): Promise<ServiceProcess> {
  return startService({
    name: id,
    service: 'gc-worker',
    logDir,
    env: {
      ADMIN_HOST: '127.0.0.1',
      ADMIN_PORT: '0',
      STORAGE_API_URL: recorderUrl,
      STORAGE_API_TOKEN: TOKEN,
      LEADER_ELECTION: 'storage-api',
      HOLDER_IDENTITY: id,
      GC_INTERVAL_SECONDS: '0.1',
      LEASE_DURATION_SECONDS: String(LEASE_S),
      RENEW_DEADLINE_SECONDS: '1.2',
      RETRY_PERIOD_SECONDS: String(RETRY_S),
      STORAGE_API_TIMEOUT_SECONDS: '1',
      LOG_LEVEL: 'info',
    },
  }).then((w) => {
    workers.push(w);
    return w;
  });
}

async function leaderGauge(w: ServiceProcess): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${Number(w.listening.admin)}/metrics`)).text();
  return Number(/^shoal_gc_leader (\S+)$/m.exec(text)?.[1]);
}

async function waitFor<T>(what: string, f: () => T | undefined, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}; runs: ${JSON.stringify(runs.slice(-5))}`);
    await sleep(10);
  }
}

function expectNoOverlap(): void {
  const sorted = [...runs].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    expect(
      cur.start,
      `${prev.client} [${prev.start},${prev.end}] overlaps ${cur.client} [${cur.start},${cur.end}]`,
    ).toBeGreaterThanOrEqual(prev.end);
  }
}

beforeAll(async () => {
  logDir = mkdtempSync(join(tmpdir(), 'shoal-gc-test-'));
  redis = await startRedis();
  storageApi = await startService({
    name: 'storage-api',
    service: 'storage-api',
    logDir,
    env: storageApiEnv(TOKEN, 'redis', {
      REDIS_ADDRESSES: redis.address,
      REDIS_PASSWORD: redis.password ?? '',
    }),
  });
  recorder = await startRecorder(`http://127.0.0.1:${Number(storageApi.listening.port)}`);
  recorderUrl = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill()));
  await storageApi?.stop();
  recorder?.closeAllConnections();
  await new Promise((r) => recorder?.close(r));
  await redis?.close();
  rmSync(logDir, { recursive: true, force: true });
});

describe('gc-workers electing through storage-api (Redis lease)', () => {
  it('lets exactly one of two workers collect, never both at once', async () => {
    const [w1, w2] = await Promise.all([startWorker('worker-1'), startWorker('worker-2')]);
    await expect.poll(() => runs.length, { timeout: 15_000 }).toBeGreaterThanOrEqual(5);
    const gauges = await Promise.all([leaderGauge(w1), leaderGauge(w2)]);
    expect([...gauges].sort()).toEqual([0, 1]);
    const leader = gauges[0] === 1 ? 'worker-1' : 'worker-2';
    expect(runs.length).toBeGreaterThanOrEqual(5);
    expect(new Set(runs.map((r) => r.client))).toEqual(new Set([leader]));
    expectNoOverlap();
  }, 30_000);

  it('hands over within the lease duration when the leader is SIGKILLed', async () => {
    const leaderId = runs.at(-1)!.client;
    const leader = workers.find((w) => w.name === leaderId)!;
    const other = workers.find((w) => w.name !== leaderId && w.alive())!;
    // Timed from the signal, not from when the exit is seen: on a loaded
    // machine the exit event arrives late and made a correct handover look early.
    const killedAt = Date.now();
    await leader.kill();
    const first = await waitFor(
      'the other worker to collect',
      () => runs.find((r) => r.client === other.name),
      (LEASE_S + 3) * 1000,
    );
    const handover = first.start - killedAt;
    // The lease had at most one retry period of its TTL used up at the kill.
    expect(handover).toBeGreaterThanOrEqual((LEASE_S - RETRY_S * 1.2) * 1000 - 100);
    // Slack for two busy cores: process scheduling, not the election.
    expect(handover).toBeLessThanOrEqual((LEASE_S + RETRY_S * 1.2) * 1000 + 700);
    expect(await leaderGauge(other)).toBe(1);
    expectNoOverlap();
  }, 30_000);

  it('releases the lease on SIGTERM so a waiting worker takes over at once', async () => {
    const leader = workers.find((w) => w.alive())!;
    const w3 = await startWorker('worker-3');
    await sleep(500);
    expect(await leaderGauge(w3)).toBe(0);
    const stoppedAt = Date.now();
    expect(await leader.stop(5000)).toBe(0);
    expect(leader.tail()).toContain('lease released');
    const first = await waitFor(
      'worker-3 to collect',
      () => runs.find((r) => r.client === 'worker-3'),
      LEASE_S * 1000,
    );
    // Far sooner than the lease would have expired on its own.
    expect(first.start - stoppedAt).toBeLessThan(LEASE_S * 1000 * 0.6);
    expectNoOverlap();
  }, 30_000);
});
