// A completed download acknowledged across a storage-api crash is counted
// exactly once (docs/storage-api.md "Consistency"): storage-api runs the
// Redis announce, then dies before adding the count to PostgreSQL; the
// gateway answers "retry later" and the client sends `completed` again to a
// restarted storage-api, while Redis already holds it as a seeder.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import { announceOf, infoHashOf } from '../../test/conformance.ts';
import { createPostgresStore, type PostgresStore } from '../postgres/index.ts';
import { createRedisStore, redisStoreConfig, type RedisStore } from '../redis/index.ts';
import { createCompositeStore, type CompositeStore } from './index.ts';

const LIFETIME_SECONDS = 60;

describe('a completed download across a storage-api crash', () => {
  let redis: RedisServer;
  let postgres: PostgresServer;
  let databaseUrl: string;
  let now = Date.UTC(2026, 0, 1);
  const clock = (): number => now;
  const opened: Array<{ close(): Promise<void> }> = [];
  let n = 0;

  beforeAll(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
    databaseUrl = await postgres.createDatabase();
  });
  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
    await Promise.all([redis?.close(), postgres?.stop()]);
  });

  async function peerStore(prefix: string): Promise<RedisStore> {
    const s = await createRedisStore(
      redisStoreConfig({
        REDIS_ADDRESSES: [redis.address],
        REDIS_PASSWORD: redis.password,
        REDIS_KEY_PREFIX: prefix,
      }),
      { peerLifetimeSeconds: LIFETIME_SECONDS, clock },
    );
    opened.push(s);
    return s;
  }

  async function dataStore(): Promise<PostgresStore> {
    const s = await createPostgresStore(
      { DATABASE_URL: databaseUrl },
      { peerLifetimeSeconds: LIFETIME_SECONDS, clock },
    );
    opened.push(s);
    return s;
  }

  /** A storage-api process: Redis peers, PostgreSQL downloads. */
  async function storageApi(prefix: string): Promise<CompositeStore> {
    return createCompositeStore({
      peers: await peerStore(prefix),
      data: await dataStore(),
      dataDriver: 'postgres',
    });
  }

  it('counts the retry once, and repeated retries never', async () => {
    const prefix = `crash-${++n}:`;
    const swarm = 100 + n;
    const completed = announceOf({ swarm, peer: 1, seeder: true, event: 'completed' });

    // First storage-api: the Redis step of the batch, then the crash.
    const first = await (await peerStore(prefix)).announce(completed);
    expect(first.downloadCounted).toBe(true);

    const restarted = await storageApi(prefix);
    const retry = await restarted.announce(completed);
    // Still "not counted here" (Redis holds a seeder), yet durable now.
    expect(retry.downloadCounted).toBe(false);
    expect(retry.downloaded).toBe(1);
    const data = await dataStore();
    expect(await data.downloads([infoHashOf(swarm)])).toEqual([1]);

    for (let i = 0; i < 3; i++) {
      const again = await restarted.announce(completed);
      expect(again.downloaded).toBe(1);
    }
    // Another restart retrying again.
    const third = await storageApi(prefix);
    expect((await third.announce(completed)).downloaded).toBe(1);
    expect(await data.downloads([infoHashOf(swarm)])).toEqual([1]);

    // Another peer's completion still counts.
    const other = await third.announce(
      announceOf({ swarm, peer: 2, seeder: true, event: 'completed' }),
    );
    expect(other).toMatchObject({ downloadCounted: true, downloaded: 2 });
  });

  it('counts one receipt once when flushed concurrently by several processes', async () => {
    const prefix = `crash-${++n}:`;
    const swarm = 100 + n;
    const { downloadReceipt } = await (
      await peerStore(prefix)
    ).announce(announceOf({ swarm, peer: 1, seeder: true, event: 'completed' }));
    expect(downloadReceipt).toBeDefined();
    const receipt = { infoHash: infoHashOf(swarm), receipt: downloadReceipt ?? '' };
    const writers = await Promise.all([dataStore(), dataStore(), dataStore()]);
    await Promise.all(
      writers.flatMap((w) => [
        w.addDownloadReceipts([receipt]),
        w.addDownloadReceipts([receipt, receipt]),
      ]),
    );
    expect(await writers[0].downloads([infoHashOf(swarm)])).toEqual([1]);
  });

  it('hands a receipt out for one peer lifetime, and PostgreSQL keeps it for two', async () => {
    const prefix = `crash-${++n}:`;
    const swarm = 100 + n;
    const peers = await peerStore(prefix);
    const completed = announceOf({ swarm, peer: 1, seeder: true, event: 'completed' });
    const { downloadReceipt } = await peers.announce(completed);
    expect(downloadReceipt).toBeDefined();
    now += (LIFETIME_SECONDS / 2) * 1000;
    expect((await peers.announce(completed)).downloadReceipt).toBe(downloadReceipt);
    // Kept live by announcing, but the completion is older than a lifetime.
    now += (LIFETIME_SECONDS / 2 + 10) * 1000;
    const late = await peers.announce(completed);
    expect(late.downloadCounted).toBe(false);
    expect(late.downloadReceipt).toBeUndefined();

    const data = await dataStore();
    const kept = [{ infoHash: infoHashOf(1000 + n), receipt: 'kept' }];
    await data.addDownloadReceipts(kept);
    now += LIFETIME_SECONDS * 1000;
    await data.expireDownloadReceipts();
    await data.addDownloadReceipts(kept);
    expect(await data.downloads([infoHashOf(1000 + n)])).toEqual([1]);
    now += LIFETIME_SECONDS * 1000 + 1;
    expect(await data.expireDownloadReceipts()).toBeGreaterThanOrEqual(1);
    await data.addDownloadReceipts(kept);
    expect(await data.downloads([infoHashOf(1000 + n)])).toEqual([2]);
    // A stopped peer's receipt is gone from Redis at once.
    const again = announceOf({ swarm, peer: 3, seeder: true, event: 'completed' });
    expect((await peers.announce(again)).downloadReceipt).toBeDefined();
    await peers.announce({ ...again, event: 'stopped' });
    await peers.announce({ ...again, event: 'none' });
    const rejoined = await peers.announce(again);
    expect(rejoined.downloadCounted).toBe(false);
    expect(rejoined.downloadReceipt).toBeUndefined();
  });
});
