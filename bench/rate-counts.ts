// Time of one shared-rate-limit sync (RateCounters.addRateCounts, docs/policy.md
// "Shared rate limits") on PostgreSQL against Redis, measured in the same
// run: GATEWAYS stores (one per simulated gateway, each with its own
// connections, as separate processes would have) sync at once, back to back,
// batches of KEYS addresses drawn from one pool that all gateways share (so
// their upserts touch the same rows), windows of WINDOW_MS so old windows
// are deleted during the run. Rounds alternate the stores.
//   DATABASE_URL=... node bench/rate-counts.ts
// bench/rate-counts.sh starts PostgreSQL with its default settings and runs
// this. Not part of `make test`. Loopback only.
import { performance } from 'node:perf_hooks';
import { hasRateCounters, type PeerStore } from '@shoal/storage';
import { createPostgresStore } from '@shoal/storage/postgres';
import { createRedisStore, redisStoreConfig } from '@shoal/storage/redis';
import { startRedis } from '@shoal/testing/redis';

const url = process.env.DATABASE_URL;
if (url === undefined) throw new Error('DATABASE_URL is required');
const SECONDS = Number(process.env.DURATION_SECONDS ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const GATEWAYS = Number(process.env.GATEWAYS ?? 3);
const POOL = Number(process.env.ADDRESSES ?? 20_000);
const WINDOW_MS = Number(process.env.WINDOW_MS ?? 2000);
const BATCHES = (process.env.KEYS ?? '1,64,1024,4096').split(',').map(Number);

const addresses = Array.from({ length: POOL }, (_, i) => `4-${(0x0a000000 + i).toString(16)}`);

function batchOf(size: number): string[] {
  const start = Math.floor(Math.random() * POOL);
  return Array.from({ length: size }, (_, i) => addresses[(start + i) % POOL]!);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))] ?? NaN;
};

/** GATEWAYS stores syncing back to back for SECONDS: the time of each sync, ms. */
async function round(stores: PeerStore[], keys: number): Promise<number[]> {
  const times: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  await Promise.all(
    stores.map(async (store) => {
      if (!hasRateCounters(store)) throw new Error(`${store.driver} keeps no rate counters`);
      while (performance.now() < deadline) {
        const batch = batchOf(keys);
        const window = Math.floor(Date.now() / WINDOW_MS);
        const t = performance.now();
        await store.addRateCounts(
          window,
          WINDOW_MS,
          batch,
          batch.map(() => 1),
        );
        times.push(performance.now() - t);
      }
    }),
  );
  return times;
}

const redis = await startRedis();
const lifetime = { peerLifetimeSeconds: 1860 };
const stores: Record<string, PeerStore[]> = {
  postgres: await Promise.all(
    Array.from({ length: GATEWAYS }, () =>
      createPostgresStore({ DATABASE_URL: url, PG_POOL_SIZE: 2 }, lifetime),
    ),
  ),
  redis: await Promise.all(
    Array.from({ length: GATEWAYS }, () =>
      createRedisStore(
        redisStoreConfig({
          REDIS_ADDRESSES: [redis.address],
          REDIS_PASSWORD: redis.password,
          REDIS_KEY_PREFIX: 'bench:',
        }),
        lifetime,
      ),
    ),
  ),
};
try {
  console.log(
    `${GATEWAYS} gateways syncing at once, back to back; ${POOL} addresses; windows of ${WINDOW_MS} ms; ${ROUNDS} rounds of ${SECONDS} s`,
  );
  console.log('keys/sync | store    | syncs | median ms | p90 ms | µs per key (median)');
  for (const keys of BATCHES) {
    const times: Record<string, number[]> = { postgres: [], redis: [] };
    for (let r = 0; r < ROUNDS; r++)
      for (const name of r % 2 === 0 ? ['postgres', 'redis'] : ['redis', 'postgres'])
        times[name]!.push(...(await round(stores[name]!, keys)));
    for (const [name, t] of Object.entries(times)) {
      const m = median(t);
      console.log(
        `${String(keys).padStart(9)} | ${name.padEnd(8)} | ${String(t.length).padStart(5)} | ${m.toFixed(2).padStart(9)} | ${quantile(t, 0.9).toFixed(2).padStart(6)} | ${((m * 1000) / keys).toFixed(1)}`,
      );
    }
  }
} finally {
  for (const list of Object.values(stores)) await Promise.all(list.map((s) => s.close()));
  await redis.close();
}
