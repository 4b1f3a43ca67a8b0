// The lease locks against real servers (the lock path is tested for
// real, docs/gc-worker.md): Redis from @shoal/testing's startRedis, PostgreSQL from
// startPostgres, and the memory lock, all through one suite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import {
  startRedis,
  startSentinelSet,
  type RedisServer,
  type SentinelSet,
} from '@shoal/testing/redis';
import { redisStoreConfig } from '../redis/config.ts';
import { isStoreError } from '../errors.ts';
import {
  createMemoryLeaseLock,
  createPostgresLeaseLock,
  createRedisLeaseLock,
  type LeaseLock,
} from './index.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let seq = 0;
const leaseName = (): string => `gc-${process.pid}-${++seq}`;

function leaseSuite(label: string, open: () => Promise<{ a: LeaseLock; b: LeaseLock }>): void {
  describe(label, () => {
    // Two lock objects (two connections): as two storage-api replicas would see it.
    let a: LeaseLock;
    let b: LeaseLock;
    beforeAll(async () => {
      ({ a, b } = await open());
    });
    afterAll(async () => {
      await a.close();
      await b.close();
    });

    it('gives the lease to exactly one of many holders acquiring at once', async () => {
      const name = leaseName();
      const holders = Array.from({ length: 24 }, (_, i) => `worker-${i}`);
      const results = await Promise.all(
        holders.map((h, i) => (i % 2 === 0 ? a : b).acquire(name, h, 5000)),
      );
      const winners = results.filter((r) => r.held);
      expect(winners).toHaveLength(1);
      const winner = winners[0]!.holder;
      expect(holders).toContain(winner);
      // Everyone else is told who holds it.
      for (const r of results) expect(r.holder).toBe(winner);
      const again = await b.acquire(name, 'latecomer', 5000);
      expect(again).toMatchObject({ held: false, holder: winner });
      expect(again.expiresAt).toBeGreaterThan(Date.now());
    });

    it('lets the holder renew and extends its expiry, while others stay refused', async () => {
      const name = leaseName();
      const first = await a.acquire(name, 'alice', 400);
      expect(first.held).toBe(true);
      await sleep(250);
      const renewed = await b.acquire(name, 'alice', 400);
      expect(renewed.held).toBe(true);
      expect(renewed.expiresAt!).toBeGreaterThan(first.expiresAt! + 150);
      await sleep(250);
      // 500 ms after the first acquire: only the renewal keeps it alive.
      expect(await a.acquire(name, 'bob', 400)).toMatchObject({ held: false, holder: 'alice' });
    });

    it('hands the lease over once it expires without renewal', async () => {
      const name = leaseName();
      expect((await a.acquire(name, 'alice', 200)).held).toBe(true);
      expect((await b.acquire(name, 'bob', 200)).held).toBe(false);
      await sleep(300);
      expect(await b.acquire(name, 'bob', 5000)).toMatchObject({ held: true, holder: 'bob' });
      expect(await a.acquire(name, 'alice', 5000)).toMatchObject({ held: false, holder: 'bob' });
    });

    it('releases only for the holder, and a released lease is free at once', async () => {
      const name = leaseName();
      expect((await a.acquire(name, 'alice', 60_000)).held).toBe(true);
      expect(await b.release(name, 'mallory')).toBe(false);
      expect(await b.acquire(name, 'bob', 60_000)).toMatchObject({ held: false, holder: 'alice' });
      expect(await a.release(name, 'alice')).toBe(true);
      expect(await a.release(name, 'alice')).toBe(false);
      expect(await b.acquire(name, 'bob', 60_000)).toMatchObject({ held: true, holder: 'bob' });
    });

    it('reports a free lease as held by nobody after its release', async () => {
      const name = leaseName();
      await a.acquire(name, 'alice', 60_000);
      await a.release(name, 'alice');
      // A holder that lost its lease must not be able to delete the next one.
      expect(await a.release(name, 'alice')).toBe(false);
      expect(await b.acquire(name, 'bob', 1000)).toMatchObject({ held: true, holder: 'bob' });
    });

    it('refuses bad names, holders and TTLs with STORE_ERR_BAD_INPUT', async () => {
      for (const call of [
        () => a.acquire('', 'x', 1000),
        () => a.acquire('has space', 'x', 1000),
        () => a.acquire('ok', '', 1000),
        () => a.acquire('ok', 'x', 0),
        () => a.acquire('ok', 'x', 1.5),
        () => a.release('ok', ''),
      ]) {
        const err: unknown = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isStoreError(err) && err.code).toBe('STORE_ERR_BAD_INPUT');
      }
    });
  });
}

leaseSuite('memory lease lock', () => {
  const one = createMemoryLeaseLock();
  // One map shared by both names: the memory lock serves one process.
  return Promise.resolve({ a: one, b: { ...one, close: () => Promise.resolve() } });
});

let redis: RedisServer | undefined;
leaseSuite('redis lease lock (real redis-server)', async () => {
  redis = await startRedis();
  const config = redisStoreConfig({
    REDIS_ADDRESSES: [redis.address],
    REDIS_PASSWORD: redis.password,
  });
  return { a: await createRedisLeaseLock(config), b: await createRedisLeaseLock(config) };
});

let sentinelSet: SentinelSet | undefined;
leaseSuite('redis lease lock through Sentinel (real sentinels)', async () => {
  sentinelSet = await startSentinelSet();
  const config = redisStoreConfig({
    REDIS_MODE: 'sentinel',
    REDIS_SENTINELS: sentinelSet.sentinelAddresses.map((a) => `${a.host}:${a.port}`),
    REDIS_MASTER_NAME: sentinelSet.masterName,
    REDIS_PASSWORD: sentinelSet.password,
    REDIS_SENTINEL_PASSWORD: sentinelSet.sentinelPassword,
  });
  return { a: await createRedisLeaseLock(config), b: await createRedisLeaseLock(config) };
});

let pg: PostgresServer | undefined;
leaseSuite('postgres lease lock (real PostgreSQL)', async () => {
  pg = await startPostgres();
  const url = await pg.createDatabase();
  // Two locks creating the table at once: the IF NOT EXISTS race must not fail either.
  const [a, b] = await Promise.all([
    createPostgresLeaseLock({ DATABASE_URL: url }),
    createPostgresLeaseLock({ DATABASE_URL: url }),
  ]);
  return { a, b };
});

describe('lease lock with the backend down', () => {
  it('rejects with STORE_ERR_UNAVAILABLE from PostgreSQL and works once it is back', async () => {
    const server = await startPostgres();
    try {
      const url = await server.createDatabase();
      await server.stopServer();
      const lock = await createPostgresLeaseLock({ DATABASE_URL: url, PG_CONNECT_TIMEOUT_MS: 500 });
      const err: unknown = await lock.acquire('gc', 'alice', 1000).catch((e: unknown) => e);
      expect(isStoreError(err) && err.code).toBe('STORE_ERR_UNAVAILABLE');
      await server.start();
      expect((await lock.acquire('gc', 'alice', 1000)).held).toBe(true);
      await lock.close();
    } finally {
      await server.stop();
    }
  });
});

afterAll(async () => {
  await redis?.close();
  await sentinelSet?.close();
  await pg?.stop();
});
