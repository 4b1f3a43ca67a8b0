// The PostgreSQL / CockroachDB driver: peers, download counts and
// KV in SQL. One statement per announce (upsert, count, sample), named
// prepared statements on pipelined connections, retries with backoff and
// jitter on serialization failures, batched GC.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { StoreError } from '../errors.ts';
import {
  INFO_HASH_LEN,
  badInput,
  validateAnnounce,
  validateInfoHashes,
  validateTopLimit,
} from '../validate.ts';
import type {
  AnnounceResult,
  DataStore,
  DownloadCounter,
  DownloadReceipt,
  DownloadReceipts,
  GcResult,
  PeerAnnounce,
  PeerStore,
  StoreOptions,
  StoreStats,
  SwarmCounts,
  TopSwarm,
} from '../types.ts';
import {
  compileQueries,
  resolvePostgresStoreConfig,
  type CompiledQueries,
  type ResolvedPostgresStoreConfig,
  type PostgresStoreConfigInput,
} from './config.ts';
import {
  clientConfig,
  isConnectionError,
  isRetryable,
  pipelineRunner,
  poolRunner,
  toStoreError,
  type QueryRunner,
  type Statement,
} from './connection.ts';
import type { TopSwarms } from '../capabilities.ts';
import { runMigrations } from './migrations.ts';
import {
  ADD_DOWNLOADS,
  ADD_DOWNLOAD_RECEIPTS,
  EXPIRE_RECEIPTS_COCKROACH,
  EXPIRE_RECEIPTS_POSTGRES,
  GET_DOWNLOADS,
  type Dialect,
  type QueryName,
} from './queries.ts';
import { bind, compileQuery, type CompiledQuery } from './sql.ts';

export interface RetryInfo {
  /** Query name in config, e.g. PG_QUERY_ANNOUNCE. */
  query: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** SQLSTATE: 40001 (serialization failure) or 40P01 (deadlock). */
  code: string;
  delayMs: number;
}

export interface PostgresStoreOptions extends StoreOptions {
  /** Called before each retry (metrics, tests). */
  onRetry?: (info: RetryInfo) => void;
  /** Uniform [0, 1) source for sampling start keys and jitter; default Math.random. */
  random?: () => number;
  /** Background failures (migrations retried after an unreachable boot), for logging. */
  onError?: (err: unknown) => void;
}

export interface MigrateResult {
  /** Versions applied by this call ('custom' for PG_QUERY_MIGRATE); empty when up to date. */
  applied: Array<number | 'custom'>;
}

export interface PostgresStore
  extends PeerStore, DataStore, DownloadCounter, DownloadReceipts, TopSwarms {
  readonly driver: 'postgres';
  readonly dialect: Dialect;
  /** Creates or updates the schema; idempotent, never drops data. */
  migrate(): Promise<MigrateResult>;
}

const EMPTY = Buffer.alloc(0);
// Sample keys are non-negative INT4 values.
const SAMPLE_KEY_SPAN = 0x7fffffff;

interface AnnounceRow {
  seeders: number;
  leechers: number;
  downloaded: string | number;
  address: Buffer | null;
  port: number | null;
  peer_id: Buffer | null;
  /** 1 when this announce added a download; absent from custom queries that do not say. */
  counted?: number | null;
}

const DOWNLOAD_SPEC = { allowed: ['info_hashes', 'counts'], required: ['info_hashes'] };
const ADD_DOWNLOADS_QUERY = compileQuery(
  'addDownloads (built in)',
  ADD_DOWNLOADS,
  DOWNLOAD_SPEC,
).query;
const ADD_DOWNLOAD_RECEIPTS_QUERY = compileQuery(
  'addDownloadReceipts (built in)',
  ADD_DOWNLOAD_RECEIPTS,
  {
    allowed: ['info_hashes', 'receipts', 'now'],
    required: ['info_hashes', 'receipts', 'now'],
  },
).query;
const EXPIRE_SPEC = { allowed: ['before', 'limit'], required: ['before', 'limit'] };
const EXPIRE_RECEIPTS_QUERY: Record<Dialect, CompiledQuery> = {
  postgres: compileQuery('expireDownloadReceipts (built in)', EXPIRE_RECEIPTS_POSTGRES, EXPIRE_SPEC)
    .query,
  cockroach: compileQuery(
    'expireDownloadReceipts (built in)',
    EXPIRE_RECEIPTS_COCKROACH,
    EXPIRE_SPEC,
  ).query,
};
/**
 * Receipts are kept this many peer lifetimes: the peer store re-sends one
 * within one lifetime of the completion, and the row's time (this replica's
 * clock at insert) is never earlier than that, so twice leaves room for
 * clock skew between replicas.
 */
const RECEIPT_LIFETIMES = 2;
const GET_DOWNLOADS_QUERY = compileQuery(
  'downloads (built in)',
  GET_DOWNLOADS,
  DOWNLOAD_SPEC,
).query;

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
  const store = new PostgresStoreImpl(config, opts);
  if (config.PG_MIGRATE_ON_START) {
    try {
      await store.migrate();
    } catch (err) {
      if (!isConnectionError(err)) {
        await store.close();
        throw err;
      }
      opts.onError?.(err);
      store.migrateInBackground();
    }
  }
  return store;
}

class PostgresStoreImpl implements PostgresStore {
  readonly driver = 'postgres' as const;
  readonly dialect: Dialect;
  readonly #config: ResolvedPostgresStoreConfig;
  readonly #queries: CompiledQueries;
  readonly #runner: QueryRunner;
  readonly #lifetimeMs: number;
  readonly #clock: () => number;
  readonly #random: () => number;
  readonly #onRetry: ((info: RetryInfo) => void) | undefined;
  readonly #swarmLock: boolean;
  readonly #onError: ((err: unknown) => void) | undefined;
  #migrationTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(config: ResolvedPostgresStoreConfig, opts: PostgresStoreOptions) {
    this.#config = config;
    this.dialect = config.DATABASE_DIALECT;
    this.#queries = compileQueries(config).queries;
    const cfg = clientConfig(config);
    this.#runner = config.PG_PIPELINE
      ? pipelineRunner(cfg, config.PG_POOL_SIZE, config.PG_UNAVAILABLE_HOLD_MS)
      : poolRunner(cfg, config.PG_POOL_SIZE);
    this.#lifetimeMs = opts.peerLifetimeSeconds * 1000;
    this.#clock = opts.clock ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#onRetry = opts.onRetry;
    this.#onError = opts.onError;
    // Under READ COMMITTED each statement reads the snapshot of its start, so
    // two concurrent first announces can miss each other (chihaya#457). A
    // per-swarm lock taken in an earlier statement of the same transaction
    // makes the announce's snapshot include every announce before it.
    // SERIALIZABLE gets the same guarantee from 40001 + retry instead.
    this.#swarmLock =
      config.DATABASE_DIALECT === 'postgres' &&
      (config.PG_ANNOUNCE_SWARM_LOCK === 'on' ||
        (config.PG_ANNOUNCE_SWARM_LOCK === 'auto' && config.PG_ISOLATION_LEVEL !== 'serializable'));
  }

  async announce(a: PeerAnnounce): Promise<AnnounceResult> {
    this.#assertOpen();
    validateAnnounce(a);
    const now = this.#clock();
    const stopped = a.event === 'stopped';
    const seeder = a.seeder || a.event === 'completed';
    const values: Record<string, unknown> = {
      info_hash: a.infoHash,
      peer_id: a.peerId,
      is_v6: a.family === 6,
      address: a.address,
      port: a.port,
      is_seeder: seeder,
      event: a.event,
      now,
      peer_lifetime_ms: this.#lifetimeMs,
    };
    let query: CompiledQuery;
    if (stopped) {
      query = this.#queries.announceStopped;
    } else {
      query = this.#queries.announce;
      values.completed = a.event === 'completed';
      values.created = now;
      values.expires = now + this.#lifetimeMs;
      values.numwant = a.numWant;
      values.sample_key = Math.floor(this.#random() * SAMPLE_KEY_SPAN);
      values.random_start = Math.floor(this.#random() * SAMPLE_KEY_SPAN);
    }
    const params = bind(query, values);
    const name = stopped ? 'announceStopped' : 'announce';
    const rows = this.#swarmLock
      ? await this.#retrying(query, async () => {
          const lockKey = a.infoHash.readBigInt64BE(0).toString();
          const statements: Statement[] = [
            { text: 'BEGIN' },
            {
              name: 'shoal_swarm_lock',
              text: 'SELECT pg_advisory_xact_lock($1::INT8)',
              values: [lockKey],
            },
            { name: `shoal_${name}`, text: query.text, values: params },
            { text: 'COMMIT' },
          ];
          const results = await this.#runner.batch(statements);
          return (results[2] as pg.QueryResult<AnnounceRow>).rows;
        })
      : (await this.#run<AnnounceRow>(name, query, params)).rows;
    return this.#announceResult(rows, a, stopped);
  }

  #announceResult(rows: AnnounceRow[], a: PeerAnnounce, stopped: boolean): AnnounceResult {
    const first = rows[0];
    if (first === undefined) {
      throw new StoreError(
        'STORE_ERR_UNAVAILABLE',
        `${this.#queries.announce.key} returned no row`,
      );
    }
    const ids: Buffer[] | undefined = a.withPeerIds ? [] : undefined;
    let peers = EMPTY;
    if (!stopped) {
      const addrLen = a.family === 6 ? 16 : 4;
      const size = addrLen + 2;
      let count = 0;
      for (const r of rows)
        if (r.address !== null && r.address.length === addrLen && r.port !== null) count++;
      if (count > 0) {
        peers = Buffer.allocUnsafe(count * size);
        let o = 0;
        for (const r of rows) {
          if (r.address === null || r.address.length !== addrLen || r.port === null) continue;
          r.address.copy(peers, o);
          peers.writeUInt16BE(r.port, o + addrLen);
          o += size;
          ids?.push(r.peer_id ?? EMPTY);
        }
      }
    }
    const result: AnnounceResult = {
      seeders: Number(first.seeders),
      leechers: Number(first.leechers),
      downloaded: Number(first.downloaded),
      peers,
      peerIds: ids,
    };
    if (stopped) result.downloadCounted = false;
    else if (first.counted !== undefined && first.counted !== null)
      result.downloadCounted = Number(first.counted) > 0;
    return result;
  }

  async addDownloads(
    increments: ReadonlyArray<readonly [infoHash: Buffer, count: number]>,
  ): Promise<void> {
    this.#assertOpen();
    const merged = new Map<string, number>();
    for (const [h, n] of increments) {
      if (h.length !== INFO_HASH_LEN) throw badInput('infoHash must be 20 bytes');
      if (!Number.isInteger(n) || n < 1) throw badInput('count must be a positive integer');
      const key = h.toString('hex');
      merged.set(key, (merged.get(key) ?? 0) + n);
    }
    if (merged.size === 0) return;
    const q = ADD_DOWNLOADS_QUERY;
    const params = bind(q, {
      info_hashes: [...merged.keys()].map((k) => Buffer.from(k, 'hex')),
      counts: [...merged.values()],
    });
    await this.#retrying(q, () => this.#runner.query('shoal_addDownloads', q.text, params));
  }

  async addDownloadReceipts(receipts: readonly DownloadReceipt[]): Promise<void> {
    this.#assertOpen();
    const distinct = new Map<string, DownloadReceipt>();
    for (const r of receipts) {
      if (r.infoHash.length !== INFO_HASH_LEN) throw badInput('infoHash must be 20 bytes');
      if (r.receipt.length === 0) throw badInput('receipt must not be empty');
      distinct.set(`${r.infoHash.toString('hex')} ${r.receipt}`, r);
    }
    if (distinct.size === 0) return;
    const q = ADD_DOWNLOAD_RECEIPTS_QUERY;
    const params = bind(q, {
      info_hashes: [...distinct.values()].map((r) => r.infoHash),
      receipts: [...distinct.values()].map((r) => r.receipt),
      now: this.#clock(),
    });
    await this.#retrying(q, () => this.#runner.query('shoal_addDownloadReceipts', q.text, params));
  }

  async expireDownloadReceipts(): Promise<number> {
    this.#assertOpen();
    const q = EXPIRE_RECEIPTS_QUERY[this.dialect];
    const limit = this.#config.PG_GC_BATCH_SIZE;
    const before = this.#clock() - RECEIPT_LIFETIMES * this.#lifetimeMs;
    let removed = 0;
    for (;;) {
      const res = await this.#retrying(q, () =>
        this.#runner.query('shoal_expireDownloadReceipts', q.text, bind(q, { before, limit })),
      );
      const n = res.rowCount ?? 0;
      removed += n;
      if (n < limit || this.#closed) break;
    }
    return removed;
  }

  async downloads(infoHashes: readonly Buffer[]): Promise<number[]> {
    this.#assertOpen();
    validateInfoHashes(infoHashes);
    if (infoHashes.length === 0) return [];
    const q = GET_DOWNLOADS_QUERY;
    const params = bind(q, { info_hashes: infoHashes });
    const res = await this.#retrying(q, () =>
      this.#runner.query<{ info_hash: Buffer; downloaded: string | number }>(
        'shoal_downloads',
        q.text,
        params,
      ),
    );
    const byHash = new Map<string, number>();
    for (const r of res.rows) byHash.set(r.info_hash.toString('hex'), Number(r.downloaded));
    return infoHashes.map((h) => byHash.get(h.toString('hex')) ?? 0);
  }

  async scrape(infoHashes: readonly Buffer[]): Promise<SwarmCounts[]> {
    this.#assertOpen();
    validateInfoHashes(infoHashes);
    if (infoHashes.length === 0) return [];
    const query = this.#queries.scrape;
    const res = await this.#run<{
      info_hash: Buffer;
      seeders: number;
      leechers: number;
      downloaded: string | number;
    }>(
      'scrape',
      query,
      bind(query, {
        info_hashes: infoHashes,
        now: this.#clock(),
        peer_lifetime_ms: this.#lifetimeMs,
      }),
    );
    const byHash = new Map<string, SwarmCounts>();
    for (const r of res.rows) {
      byHash.set(r.info_hash.toString('hex'), {
        seeders: Number(r.seeders),
        leechers: Number(r.leechers),
        downloaded: Number(r.downloaded),
      });
    }
    return infoHashes.map((h) => {
      const c = byHash.get(h.toString('hex'));
      return c === undefined ? { seeders: 0, leechers: 0, downloaded: 0 } : { ...c };
    });
  }

  async collectGarbage(): Promise<GcResult> {
    this.#assertOpen();
    const now = this.#clock();
    const limit = this.#config.PG_GC_BATCH_SIZE;
    const query = this.#queries.gc;
    let peersRemoved = 0;
    let swarmsRemoved = 0;
    // Each batch is its own short implicit transaction (docs/postgres.md: never a long one).
    for (;;) {
      const res = await this.#run<{ peers_removed: number; swarms_removed: number }>(
        'gc',
        query,
        bind(query, { now, limit, peer_lifetime_ms: this.#lifetimeMs }),
      );
      const row = res.rows[0];
      const removed = Number(row?.peers_removed ?? res.rowCount ?? 0);
      peersRemoved += removed;
      swarmsRemoved += Number(row?.swarms_removed ?? 0);
      if (removed < limit || this.#closed) break;
    }
    return { peersRemoved, swarmsRemoved };
  }

  async stats(): Promise<StoreStats> {
    this.#assertOpen();
    const query = this.#queries.stats;
    const res = await this.#run<Record<string, number | string | null>>(
      'stats',
      query,
      bind(query, { now: this.#clock(), peer_lifetime_ms: this.#lifetimeMs }),
    );
    const r = res.rows[0] ?? {};
    const n = (k: string): number => Number(r[k] ?? 0);
    return {
      torrents: n('torrents'),
      seeders: { v4: n('seeders_v4'), v6: n('seeders_v6') },
      leechers: { v4: n('leechers_v4'), v6: n('leechers_v6') },
    };
  }

  async topSwarms(limit: number): Promise<TopSwarm[]> {
    this.#assertOpen();
    validateTopLimit(limit);
    const query = this.#queries.topSwarms;
    const res = await this.#run<{
      info_hash: Buffer;
      seeders: number | string;
      leechers: number | string;
    }>(
      'topSwarms',
      query,
      bind(query, { now: this.#clock(), peer_lifetime_ms: this.#lifetimeMs, limit }),
    );
    return res.rows.map((r) => ({
      infoHash: r.info_hash,
      seeders: Number(r.seeders),
      leechers: Number(r.leechers),
    }));
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    await this.#run('ping', this.#queries.ping, []);
  }

  async get(context: string, key: string): Promise<string | undefined> {
    this.#assertOpen();
    const q = this.#queries.kvGet;
    const res = await this.#run<{ value: string }>('kvGet', q, bind(q, { context, key }));
    return res.rows[0]?.value;
  }

  async put(context: string, key: string, value: string): Promise<void> {
    this.#assertOpen();
    const q = this.#queries.kvPut;
    await this.#run('kvPut', q, bind(q, { context, key, value }));
  }

  async delete(context: string, key: string): Promise<boolean> {
    this.#assertOpen();
    const q = this.#queries.kvDelete;
    const res = await this.#run('kvDelete', q, bind(q, { context, key }));
    return (res.rowCount ?? res.rows.length) > 0;
  }

  async list(context: string): Promise<Array<[key: string, value: string]>> {
    this.#assertOpen();
    const q = this.#queries.kvList;
    const res = await this.#run<{ key: string; value: string }>('kvList', q, bind(q, { context }));
    const entries = res.rows.map((r): [string, string] => [r.key, r.value]);
    // UTF-16 code unit order whatever the database collation, as the memory driver.
    entries.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    return entries;
  }

  async migrate(): Promise<MigrateResult> {
    this.#assertOpen();
    const client = new pg.Client(clientConfig(this.#config, true));
    // A broken connection during migration surfaces as the query's rejection.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw toStoreError(err, 'migrate: connect');
    }
    try {
      return await this.#migrateWith(client);
    } catch (err) {
      throw toStoreError(err, 'migrate');
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  #migrateWith(client: pg.Client): Promise<MigrateResult> {
    const config = this.#config;
    return runMigrations(client, {
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
  }

  /** Retries migrate() with capped backoff until it succeeds or the store closes. */
  migrateInBackground(delayMs = 500): void {
    this.#migrationTimer = setTimeout(() => {
      this.#migrationTimer = undefined;
      this.migrate().then(
        () => undefined,
        (err: unknown) => {
          if (this.#closed) return;
          this.#onError?.(err);
          this.migrateInBackground(Math.min(delayMs * 2, 30_000));
        },
      );
    }, delayMs);
    this.#migrationTimer.unref();
  }

  /** Idempotent: the same object may be closed as PeerStore and as DataStore. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#migrationTimer);
    await this.#runner.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('STORE_ERR_UNAVAILABLE', 'store closed');
  }

  #run<R extends pg.QueryResultRow>(
    name: QueryName,
    query: CompiledQuery,
    params: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.#retrying(query, () => this.#runner.query<R>(`shoal_${name}`, query.text, params));
  }

  /**
   * Runs `fn` again on serialization failures and deadlocks, with capped
   * exponential backoff and full jitter (CockroachDB's client-side retry
   * protocol; PostgreSQL SERIALIZABLE raises the same 40001).
   */
  async #retrying<R>(query: CompiledQuery, fn: () => Promise<R>): Promise<R> {
    const max = this.#config.PG_RETRY_MAX_ATTEMPTS;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isRetryable(err) || attempt >= max || this.#closed) throw toStoreError(err, query.key);
        const cap = Math.min(
          this.#config.PG_RETRY_MAX_DELAY_MS,
          this.#config.PG_RETRY_BASE_DELAY_MS * 2 ** (attempt - 1),
        );
        const delayMs = Math.round(this.#random() * cap);
        this.#onRetry?.({
          query: query.key,
          attempt,
          code: (err as pg.DatabaseError).code ?? '',
          delayMs,
        });
        if (delayMs > 0) await sleep(delayMs);
      }
    }
  }
}
