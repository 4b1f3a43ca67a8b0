// The conformance suite against the composite store, as storage-api serves
// it when PEER_STORE_DRIVER and DATA_STORE_DRIVER differ: peers in one
// backend, download counts and KV in another (docs/decisions.md "Storage").
// Two pairings: two memory stores (the logic alone), and Redis (keeping no
// peer ids, REDIS_STORE_PEER_IDS' default) with PostgreSQL, the shape of the
// chart's default (Redis Sentinel + CockroachDB).
import { afterAll, beforeAll, describe } from 'vitest';
import { runSql, startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import {
  describeDataStoreConformance,
  describePeerStoreConformance,
} from '../../test/conformance.ts';
import { createMemoryStore } from '../memory/index.ts';
import { createPostgresStore } from '../postgres/index.ts';
import { createRedisStore, redisStoreConfig } from '../redis/index.ts';
import { createCompositeStore } from './index.ts';

// Download counts live in the data backend; the composite store itself adds
// none (storage-api writes them from batches), so it is no DownloadCounter.
const SPLIT = { downloadCounter: false } as const;

describePeerStoreConformance(
  'composite: peers in memory, downloads and KV in another memory store',
  (o) =>
    Promise.resolve(
      createCompositeStore({
        peers: createMemoryStore(o),
        data: createMemoryStore(o),
        dataDriver: 'memory',
      }),
    ),
  SPLIT,
);
describeDataStoreConformance('composite: KV in the data backend (memory)', () =>
  Promise.resolve(
    createCompositeStore({
      peers: createMemoryStore({ peerLifetimeSeconds: 60 }),
      data: createMemoryStore({ peerLifetimeSeconds: 60 }),
      dataDriver: 'memory',
    }),
  ),
);

describe('composite on real servers', () => {
  let redis: RedisServer;
  let postgres: PostgresServer;
  let databaseUrl: string;
  let n = 0;
  beforeAll(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
    databaseUrl = await postgres.createDatabase();
  });
  afterAll(async () => {
    await Promise.all([redis?.close(), postgres?.stop()]);
  });

  const truncate = (): Promise<void> =>
    runSql(databaseUrl, 'TRUNCATE shoal_peers, shoal_downloads, shoal_download_receipts, shoal_kv');

  async function composite(o: { peerLifetimeSeconds: number; clock?: () => number }) {
    const peers = await createRedisStore(
      redisStoreConfig({
        REDIS_ADDRESSES: [redis.address],
        REDIS_PASSWORD: redis.password,
        // A fresh prefix per store is an empty peer backend.
        REDIS_KEY_PREFIX: `composite-${++n}:`,
        // The suite checks answers, not deadlines: its 500 concurrent
        // announces to one swarm outlast the 1 s default on a loaded machine.
        REDIS_COMMAND_TIMEOUT_MS: 10_000,
      }),
      o,
    );
    const data = await createPostgresStore(
      { DATABASE_URL: databaseUrl, PG_STATEMENT_TIMEOUT_MS: 30_000 },
      o,
    );
    await truncate();
    return createCompositeStore({ peers, data, dataDriver: 'postgres' });
  }

  describePeerStoreConformance(
    'composite: peers in Redis (no peer ids), downloads and KV in PostgreSQL',
    composite,
    { ...SPLIT, keepsPeerIds: false },
  );
  describeDataStoreConformance('composite: KV in the data backend (PostgreSQL)', () =>
    composite({ peerLifetimeSeconds: 60 }),
  );
});
