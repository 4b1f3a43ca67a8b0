// The announce rate limit shared by all gateway replicas (docs/policy.md
// "Shared rate limits"), as processes: three gateways on one real Redis, and
// two gateways on one storage-api, with a client hammering them all from
// 127.0.0.1. Alone, each replica's bucket would admit LIMIT per window, so
// the cluster would admit replicas x LIMIT; shared, every whole window of
// the run admits at most the documented bound
//   LIMIT + (replicas - 1) x (BURST + RATE x S),  S = sync period + sync time,
// taken generously (SYNC_ALLOWANCE_S) because the machine is loaded. The
// same on PostgreSQL: two gateways on one database, and two on a storage-api
// keeping everything in PostgreSQL. Then the Redis holding the counters goes
// down (a ring whose first shard holds them, while the swarm lives on the
// second): syncs fail, announces are still served, and each gateway's own
// bucket still limits. When the PostgreSQL of embedded gateways goes down it
// holds the peers too, so announces get "retry later" until it is back; the
// buckets still refuse bursts meanwhile, and syncs resume after.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ownerIndex } from '@shoal/storage/redis';
import {
  startGateway,
  startService,
  storageApiEnv,
  type GatewayProcess,
  type ServiceProcess,
} from '@shoal/testing/launcher';
import { startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import { startRedis, startRing, type RedisRing, type RedisServer } from '@shoal/testing/redis';
import { randomInfoHash, randomPeerId } from '@shoal/testing/tracker-client';
import { fetchText, httpAnnounceOutcome, sumSamples, verdict } from './harness/policy.ts';

const RATE = 4;
const BURST = 1;
const WINDOW_S = 5;
const SYNC_MS = 250;
/** BURST + RATE x WINDOW_S: what one address may do per window, cluster-wide. */
const LIMIT = BURST + RATE * WINDOW_S;
/** Sync period plus the time of a sync, with room for a loaded machine. */
const SYNC_ALLOWANCE_S = 2;
const bound = (replicas: number) => LIMIT + (replicas - 1) * (BURST + RATE * SYNC_ALLOWANCE_S);
const WINDOW_MS = WINDOW_S * 1000;
const LIMITED = {
  RATE_LIMIT_ANNOUNCES_PER_SECOND: String(RATE),
  RATE_LIMIT_ANNOUNCE_BURST: String(BURST),
  RATE_LIMIT_SHARED: 'true',
  RATE_LIMIT_SHARED_WINDOW_SECONDS: String(WINDOW_S),
  RATE_LIMIT_SHARED_SYNC_MS: String(SYNC_MS),
};

interface Answer {
  sentAt: number;
  doneAt: number;
  verdict: string;
}

const metric = async (g: GatewayProcess, name: string, labels: Record<string, string> = {}) =>
  sumSamples(await fetchText(g.adminUrl('/metrics')), [name], labels);

const announce = (g: GatewayProcess, infoHash: Buffer) =>
  httpAnnounceOutcome(g.announceUrl('http'), {
    infoHash,
    peerId: randomPeerId(),
    port: 40_000 + Math.floor(Math.random() * 20_000),
    left: 1n,
  });

/**
 * Announces to every gateway in turn, a few at once, until `full` whole
 * windows have passed and a shared refusal was counted (bounded by time).
 */
async function hammer(gateways: GatewayProcess[], full: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  const infoHash = randomInfoHash();
  const firstWhole = (Math.floor(Date.now() / WINDOW_MS) + 1) * WINDOW_MS;
  const until = firstWhole + full * WINDOW_MS;
  const deadline = Date.now() + 120_000;
  let turn = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < until && Date.now() < deadline) {
      const g = gateways[turn++ % gateways.length]!;
      const sentAt = Date.now();
      const o = await announce(g, infoHash);
      answers.push({ sentAt, doneAt: Date.now(), verdict: verdict(o) });
    }
  };
  await Promise.all(Array.from({ length: 4 * gateways.length }, worker));
  return answers;
}

/** Per whole window of the run: the announces that may have been admitted in it. */
function admittedPerWindow(answers: Answer[]): number[] {
  const first = Math.floor(Math.min(...answers.map((a) => a.sentAt)) / WINDOW_MS) + 1;
  const last = Math.floor(Math.max(...answers.map((a) => a.doneAt)) / WINDOW_MS) - 1;
  const counts: number[] = [];
  for (let w = first; w <= last; w++) {
    const [start, end] = [w * WINDOW_MS, (w + 1) * WINDOW_MS];
    counts.push(
      answers.filter((a) => a.verdict === 'served' && a.doneAt >= start && a.sentAt < end).length,
    );
  }
  return counts;
}

async function expectSharedLimit(gateways: GatewayProcess[]): Promise<void> {
  const answers = await hammer(gateways, 2);
  const verdicts = new Set(answers.map((a) => a.verdict));
  // Served or rate limited, nothing else (no store error, no timeout).
  expect([...verdicts].sort()).toEqual(['POLICY_ERR_RATE_LIMITED', 'served']);
  const perWindow = admittedPerWindow(answers);
  expect(perWindow.length).toBeGreaterThanOrEqual(2);
  for (const n of perWindow) expect(n).toBeLessThanOrEqual(bound(gateways.length));
  // The client asked for far more than the cluster gave, and some of the
  // refusals were the shared limit's (the replica's own bucket had room).
  expect(answers.length).toBeGreaterThan(gateways.length * LIMIT * perWindow.length);
  let shared = 0;
  for (const g of gateways) shared += await metric(g, 'shoal_rate_limit_shared_refusals_total');
  expect(shared).toBeGreaterThan(0);
  for (const g of gateways)
    expect(await metric(g, 'shoal_rate_limit_syncs_total', { outcome: 'ok' })).toBeGreaterThan(0);
}

/**
 * Announces to `g` until its syncs of `outcome` number more than `above`: a
 * gateway with no new counts sends no sync.
 */
async function announceUntilSyncs(
  g: GatewayProcess,
  infoHash: Buffer,
  outcome: 'ok' | 'failed',
  above: number,
): Promise<void> {
  await expect
    .poll(
      async () => {
        await announce(g, infoHash);
        return metric(g, 'shoal_rate_limit_syncs_total', { outcome });
      },
      { timeout: 60_000, interval: 500 },
    )
    .toBeGreaterThan(above);
}

/** Polls each gateway until it serves an announce again. */
async function untilServed(gateways: GatewayProcess[], infoHash: Buffer): Promise<void> {
  for (const g of gateways)
    await expect
      .poll(async () => verdict(await announce(g, infoHash)), { timeout: 60_000, interval: 500 })
      .toBe('served');
}

/** The verdicts of 3 x RATE announces sent at once: past the bucket's BURST, then RATE a second. */
async function burstVerdicts(g: GatewayProcess, infoHash: Buffer): Promise<string[]> {
  const answers = await Promise.all(Array.from({ length: 3 * RATE }, () => announce(g, infoHash)));
  return answers.map(verdict);
}

describe('three gateways on one Redis', () => {
  let redis: RedisServer;
  let gateways: GatewayProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    gateways = await Promise.all(
      [0, 1, 2].map(() =>
        startGateway({
          STORAGE_DRIVER: 'redis',
          REDIS_ADDRESSES: redis.address,
          REDIS_PASSWORD: redis.password ?? '',
          ...LIMITED,
        }),
      ),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await redis?.close();
  }, 60_000);

  it('hold one address to the limit across the cluster within the documented bound', async () => {
    await expectSharedLimit(gateways);
  }, 180_000);
});

/**
 * Two gateways on one storage-api whose peer and data stores are `driver`
 * (`env()` its settings, read when the block starts); `before` starts what
 * the store needs and `after` stops it.
 */
function describeOnStorageApi(
  name: string,
  driver: string,
  hooks: { before?: () => Promise<Record<string, string>>; after?: () => Promise<void> } = {},
): void {
  describe(name, () => {
    let api: ServiceProcess;
    let gateways: GatewayProcess[] = [];

    beforeAll(async () => {
      const token = randomBytes(24).toString('hex');
      const env = (await hooks.before?.()) ?? {};
      api = await startService({ service: 'storage-api', env: storageApiEnv(token, driver, env) });
      const url = `http://127.0.0.1:${Number(api.listening.port)}`;
      gateways = await Promise.all(
        [0, 1].map(() =>
          startGateway({
            STORAGE_DRIVER: 'remote',
            STORAGE_API_URL: url,
            STORAGE_API_TOKEN: token,
            ...LIMITED,
          }),
        ),
      );
    }, 120_000);

    afterAll(async () => {
      await Promise.all(gateways.map((g) => g.stop()));
      await api?.stop();
      await hooks.after?.();
    }, 60_000);

    it('hold one address to the limit across the cluster within the documented bound', async () => {
      await expectSharedLimit(gateways);
    }, 180_000);
  });
}

describeOnStorageApi('two gateways on one storage-api', 'memory');

describe('two gateways on one PostgreSQL', () => {
  let pg: PostgresServer;
  let gateways: GatewayProcess[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase();
    gateways = await Promise.all(
      [0, 1].map(() => startGateway({ STORAGE_DRIVER: 'postgres', DATABASE_URL: url, ...LIMITED })),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await pg?.stop();
  }, 60_000);

  it('hold one address to the limit across the cluster within the documented bound', async () => {
    await expectSharedLimit(gateways);
  }, 180_000);

  it('keep announcing while PostgreSQL is down, each bucket still refusing bursts, and sync again once it is back', async () => {
    const [a, b] = gateways as [GatewayProcess, GatewayProcess];
    const infoHash = randomInfoHash();
    await untilServed([a], infoHash);
    const failedBefore = await metric(a, 'shoal_rate_limit_syncs_total', { outcome: 'failed' });
    await pg.stopServer();
    try {
      await announceUntilSyncs(a, infoHash, 'failed', failedBefore);
      // Each gateway's own bucket still refuses a burst; the rest is the
      // store's coded "retry later", never a hang.
      const verdicts = await burstVerdicts(b, infoHash);
      expect(verdicts).toContain('POLICY_ERR_RATE_LIMITED');
      for (const v of verdicts)
        expect(['POLICY_ERR_RATE_LIMITED', 'STORE_ERR_UNAVAILABLE']).toContain(v);
    } finally {
      await pg.start();
    }
    const okBefore = await metric(b, 'shoal_rate_limit_syncs_total', { outcome: 'ok' });
    await untilServed([a, b], infoHash);
    await announceUntilSyncs(b, infoHash, 'ok', okBefore);
  }, 240_000);
});

let apiPostgres: PostgresServer | undefined;
describeOnStorageApi('two gateways on one storage-api with everything in PostgreSQL', 'postgres', {
  before: async () => {
    apiPostgres = await startPostgres();
    return { DATABASE_URL: await apiPostgres.createDatabase() };
  },
  after: async () => {
    await apiPostgres?.stop();
  },
});

describe('the Redis holding the counts goes down', () => {
  let ring: RedisRing;
  let gateways: GatewayProcess[] = [];
  /** A swarm on the second shard: its announces do not need the first. */
  let infoHash: Buffer;

  beforeAll(async () => {
    ring = await startRing(2);
    const names = ['s0', 's1'];
    for (let i = 0; i < 1000; i++) {
      infoHash = randomInfoHash();
      if (ownerIndex(names, infoHash) === 1) break;
    }
    gateways = await Promise.all(
      [0, 1].map(() =>
        startGateway({
          STORAGE_DRIVER: 'redis',
          REDIS_MODE: 'ring',
          REDIS_PASSWORD: ring.shards[0]!.password ?? '',
          REDIS_RING_SHARDS: ring.shards.map((s, i) => `${names[i]}=${s.address}`).join(','),
          REDIS_COMMAND_TIMEOUT_MS: '500',
          ...LIMITED,
        }),
      ),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await ring?.close();
  }, 60_000);

  it('serves announces and limits each address with every gateway’s own counts', async () => {
    const [a, b] = gateways as [GatewayProcess, GatewayProcess];
    expect(ownerIndex(['s0', 's1'], infoHash)).toBe(1);
    expect(verdict(await announce(a, infoHash))).toBe('served');
    await ring.shards[0]!.kill();
    // Or the count of the announce above may already have been synced before the kill.
    await announceUntilSyncs(a, infoHash, 'failed', 0);
    // Never refused wholesale: within a window or two both serve again.
    await untilServed([a, b], infoHash);
    // Each gateway's own bucket still refuses a burst.
    const verdicts = await burstVerdicts(a, infoHash);
    expect(verdicts).toContain('POLICY_ERR_RATE_LIMITED');
    for (const v of verdicts) expect(['served', 'POLICY_ERR_RATE_LIMITED']).toContain(v);
  }, 180_000);
});
