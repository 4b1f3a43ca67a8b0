// The PostgreSQL / CockroachDB driver: peers, download counts and KV in
// SQL, put together from its parts: swarms.ts (one statement per announce,
// scrape, batched GC), downloads.ts (durable counts and receipts), kv.ts,
// rate-counts.ts (shared rate-limit counters),
// over executor.ts (named prepared statements on pipelined connections,
// retries with backoff and jitter on serialization failures).
import pg from 'pg';
import { StoreError } from '../errors.ts';
import type {
  DataStore,
  DownloadCounter,
  DownloadReceipts,
  PeerStore,
  StoreOptions,
} from '../types.ts';
import type { RateCounters, TopSwarms } from '../capabilities.ts';
import {
  compileQueries,
  resolvePostgresStoreConfig,
  type ResolvedPostgresStoreConfig,
  type PostgresStoreConfigInput,
} from './config.ts';
import { clientConfig, isConnectionError, toStoreError } from './connection.ts';
import { PostgresDownloads } from './downloads.ts';
import { PostgresExecutor, type RetryInfo } from './executor.ts';
import { PostgresKv } from './kv.ts';
import { PostgresRateCounts } from './rate-counts.ts';
import { runMigrations } from './migrations.ts';
import type { Dialect } from './queries.ts';
import { PostgresSwarms } from './swarms.ts';

export type { RetryInfo };

export interface PostgresStoreOptions extends StoreOptions {
  /** Called before each retry (metrics, tests). */
  onRetry?: (info: RetryInfo) => void;
  /** Uniform [0, 1) source for sampling start keys and jitter; default Math.random. */
  random?: () => number;
  /**
   * Background failures (migrations retried after an unreachable boot, a
   * failed deletion of old rate-limit windows), for logging.
   */
  onError?: (err: unknown) => void;
}

export interface MigrateResult {
  /** Versions applied by this call ('custom' for PG_QUERY_MIGRATE); empty when up to date. */
  applied: Array<number | 'custom'>;
}

/**
 * `addRateCounts` (RateCounters) is there with the built-in schema only: a
 * custom one (PG_QUERY_MIGRATE) has no shoal_rate_counts table
 * (docs/postgres.md "Shared rate-limit counts").
 */
export interface PostgresStore
  extends
    PeerStore,
    DataStore,
    DownloadCounter,
    DownloadReceipts,
    Partial<RateCounters>,
    TopSwarms {
  readonly driver: 'postgres';
  readonly dialect: Dialect;
  /** Creates or updates the schema; idempotent, never drops data. */
  migrate(): Promise<MigrateResult>;
}

/**
 * Validates the config (every problem in one STORE_ERR_CONFIG), and runs the
 * migrations when PG_MIGRATE_ON_START (the default). A database that cannot
 * be reached does not fail the boot: the store resolves, its calls answer
 * STORE_ERR_UNAVAILABLE, and the migrations are retried in the background
 * until they succeed (recovery without restart). An SQL error in a
 * migration does fail it.
 */
export async function createPostgresStore(
  input: PostgresStoreConfigInput,
  opts: PostgresStoreOptions,
): Promise<PostgresStore> {
  const config = resolvePostgresStoreConfig(input);
  if (!Number.isInteger(opts.peerLifetimeSeconds) || opts.peerLifetimeSeconds < 1) {
    throw new StoreError('STORE_ERR_CONFIG', 'peerLifetimeSeconds must be a positive integer');
  }
  const queries = compileQueries(config).queries;
  const clock = opts.clock ?? Date.now;
  const random = opts.random ?? Math.random;
  const lifetimeMs = opts.peerLifetimeSeconds * 1000;
  const db = new PostgresExecutor(config, random, opts.onRetry);
  const swarms = new PostgresSwarms(db, config, queries, { clock, random, lifetimeMs });
  const downloads = new PostgresDownloads(db, {
    dialect: config.DATABASE_DIALECT,
    clock,
    lifetimeMs,
    gcBatchSize: config.PG_GC_BATCH_SIZE,
  });
  const kv = new PostgresKv(db, queries);
  const rateCounts = new PostgresRateCounts(db, {
    dialect: config.DATABASE_DIALECT,
    gcBatchSize: config.PG_GC_BATCH_SIZE,
    onError: (err) => opts.onError?.(err),
  });
  let migrationTimer: NodeJS.Timeout | undefined;

  const migrate = async (): Promise<MigrateResult> => {
    db.assertOpen();
    return migrateSchema(config);
  };
  /** Retries migrate() with capped backoff until it succeeds or the store closes. */
  const migrateInBackground = (delayMs: number): void => {
    migrationTimer = setTimeout(() => {
      migrationTimer = undefined;
      migrate().then(
        () => undefined,
        (err: unknown) => {
          if (db.closed) return;
          opts.onError?.(err);
          migrateInBackground(Math.min(delayMs * 2, 30_000));
        },
      );
    }, delayMs);
    migrationTimer.unref();
  };

  const store: PostgresStore = {
    driver: 'postgres',
    dialect: config.DATABASE_DIALECT,
    announce: (a) => swarms.announce(a),
    scrape: (infoHashes) => swarms.scrape(infoHashes),
    collectGarbage: () => swarms.collectGarbage(),
    stats: () => swarms.stats(),
    topSwarms: (limit) => swarms.topSwarms(limit),
    addDownloads: (increments) => downloads.addDownloads(increments),
    addDownloadReceipts: (receipts) => downloads.addDownloadReceipts(receipts),
    expireDownloadReceipts: () => downloads.expireDownloadReceipts(),
    downloads: (infoHashes) => downloads.downloads(infoHashes),
    get: (context, key) => kv.get(context, key),
    put: (context, key, value) => kv.put(context, key, value),
    delete: (context, key) => kv.delete(context, key),
    list: (context) => kv.list(context),
    async ping() {
      db.assertOpen();
      await db.run('ping', queries.ping, []);
    },
    migrate,
    /** Idempotent: the same object may be closed as PeerStore and as DataStore. */
    async close() {
      if (db.closed) return;
      clearTimeout(migrationTimer);
      await db.close();
    },
  };

  if (config.PG_QUERY_MIGRATE === undefined)
    store.addRateCounts = (window, windowMs, keys, deltas) =>
      rateCounts.addRateCounts(window, windowMs, keys, deltas);

  if (config.PG_MIGRATE_ON_START) {
    try {
      await store.migrate();
    } catch (err) {
      if (!isConnectionError(err)) {
        await store.close();
        throw err;
      }
      opts.onError?.(err);
      migrateInBackground(500);
    }
  }
  return store;
}

/** Migrates on a connection of its own, outside the pool. */
async function migrateSchema(config: ResolvedPostgresStoreConfig): Promise<MigrateResult> {
  const client = new pg.Client(clientConfig(config, true));
  // A broken connection during migration surfaces as the query's rejection.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw toStoreError(err, 'migrate: connect');
  }
  try {
    return await runMigrations(client, {
      dialect: config.DATABASE_DIALECT,
      custom: config.PG_QUERY_MIGRATE,
      rowTtl: config.PG_COCKROACH_ROW_TTL
        ? {
            jobCron: config.PG_COCKROACH_TTL_JOB_CRON,
            deleteRateLimit: config.PG_COCKROACH_TTL_DELETE_RATE_LIMIT,
            deleteBatchSize: config.PG_COCKROACH_TTL_DELETE_BATCH_SIZE,
          }
        : undefined,
    });
  } catch (err) {
    throw toStoreError(err, 'migrate');
  } finally {
    await client.end().catch(() => undefined);
  }
}
