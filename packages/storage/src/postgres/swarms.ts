// The peer half of the PostgreSQL driver: one statement per announce
// (upsert, count, sample), scrape, batched GC, stats and the largest swarms,
// each query replaceable in config (queries.ts, docs/postgres.md).
import type pg from 'pg';
import { StoreError } from '../errors.ts';
import { validateAnnounce, validateInfoHashes, validateTopLimit } from '../validate.ts';
import type {
  AnnounceResult,
  GcResult,
  PeerAnnounce,
  StoreStats,
  SwarmCounts,
  TopSwarm,
} from '../types.ts';
import type { CompiledQueries, ResolvedPostgresStoreConfig } from './config.ts';
import type { Statement } from './connection.ts';
import type { PostgresExecutor } from './executor.ts';
import { bind, type CompiledQuery } from './sql.ts';

const EMPTY = Buffer.alloc(0);
// Sample keys are non-negative INT4 values.
const SAMPLE_KEY_SPAN = 0x7fffffff;

interface AnnounceRow {
  seeders: number;
  leechers: number;
  /** Absent from custom queries written before BEP 21 support. */
  partial_seeds?: number | null;
  downloaded: string | number;
  address: Buffer | null;
  port: number | null;
  peer_id: Buffer | null;
  /** 1 when this announce added a download; absent from custom queries that do not say. */
  counted?: number | null;
}

export interface SwarmOptions {
  clock: () => number;
  /** Uniform [0, 1) source for the sample keys. */
  random: () => number;
  lifetimeMs: number;
}

/**
 * Under READ COMMITTED each statement reads the snapshot of its start, so
 * two concurrent first announces can miss each other (chihaya#457). A
 * per-swarm lock taken in an earlier statement of the same transaction
 * makes the announce's snapshot include every announce before it.
 * SERIALIZABLE gets the same guarantee from 40001 + retry instead.
 */
function takesSwarmLock(config: ResolvedPostgresStoreConfig): boolean {
  return (
    config.DATABASE_DIALECT === 'postgres' &&
    (config.PG_ANNOUNCE_SWARM_LOCK === 'on' ||
      (config.PG_ANNOUNCE_SWARM_LOCK === 'auto' && config.PG_ISOLATION_LEVEL !== 'serializable'))
  );
}

export class PostgresSwarms {
  readonly #db: PostgresExecutor;
  readonly #queries: CompiledQueries;
  readonly #gcBatchSize: number;
  readonly #swarmLock: boolean;
  readonly #lifetimeMs: number;
  readonly #clock: () => number;
  readonly #random: () => number;
  /** Custom announce queries move nothing unless a move query comes with them (docs/postgres.md). */
  readonly #moves: boolean;

  constructor(
    db: PostgresExecutor,
    config: ResolvedPostgresStoreConfig,
    queries: CompiledQueries,
    opts: SwarmOptions,
  ) {
    this.#db = db;
    this.#queries = queries;
    this.#gcBatchSize = config.PG_GC_BATCH_SIZE;
    this.#swarmLock = takesSwarmLock(config);
    this.#lifetimeMs = opts.lifetimeMs;
    this.#clock = opts.clock;
    this.#random = opts.random;
    this.#moves =
      config.PG_QUERY_ANNOUNCE === undefined || config.PG_QUERY_ANNOUNCE_MOVE !== undefined;
  }

  async announce(a: PeerAnnounce): Promise<AnnounceResult> {
    this.#db.assertOpen();
    validateAnnounce(a);
    const now = this.#clock();
    const stopped = a.event === 'stopped';
    const seeder = a.seeder || a.event === 'completed';
    // docs/load.md: each peer is kept for the lifetime it was promised.
    const lifetimeMs =
      a.lifetimeSeconds === undefined ? this.#lifetimeMs : a.lifetimeSeconds * 1000;
    const values: Record<string, unknown> = {
      info_hash: a.infoHash,
      peer_id: a.peerId,
      is_v6: a.family === 6,
      address: a.address,
      port: a.port,
      is_seeder: seeder,
      is_partial_seed: !seeder && a.partialSeed === true,
      event: a.event,
      now,
      peer_lifetime_ms: lifetimeMs,
      key_hash: a.keyHash ?? null,
    };
    let query: CompiledQuery;
    if (stopped) {
      query = this.#queries.announceStopped;
    } else {
      query = this.#queries.announce;
      values.completed = a.event === 'completed';
      values.created = now;
      values.expires = now + lifetimeMs;
      values.numwant = a.numWant;
      values.sample_key = Math.floor(this.#random() * SAMPLE_KEY_SPAN);
      values.random_start = Math.floor(this.#random() * SAMPLE_KEY_SPAN);
    }
    const params = bind(query, values);
    const name = stopped ? 'announceStopped' : 'announce';
    // docs/decisions.md "Peers that move": pipelined before the announce.
    const move: Statement[] =
      a.keyHash !== undefined && !stopped && this.#moves
        ? [
            {
              name: 'shoal_announceMove',
              text: this.#queries.announceMove.text,
              values: bind(this.#queries.announceMove, values),
            },
          ]
        : [];
    let rows: AnnounceRow[];
    if (this.#swarmLock) {
      const lockKey = a.infoHash.readBigInt64BE(0).toString();
      const statements: Statement[] = [
        { text: 'BEGIN' },
        {
          name: 'shoal_swarm_lock',
          text: 'SELECT pg_advisory_xact_lock($1::INT8)',
          values: [lockKey],
        },
        ...move,
        { name: `shoal_${name}`, text: query.text, values: params },
        { text: 'COMMIT' },
      ];
      const results = await this.#db.batch(query, statements);
      rows = (results[2 + move.length] as pg.QueryResult<AnnounceRow>).rows;
    } else if (move.length > 0) {
      const results = await this.#db.batch(query, [
        ...move,
        { name: `shoal_${name}`, text: query.text, values: params },
      ]);
      rows = (results[1] as pg.QueryResult<AnnounceRow>).rows;
    } else {
      rows = (await this.#db.run<AnnounceRow>(name, query, params)).rows;
    }
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
    if (first.partial_seeds !== undefined && first.partial_seeds !== null)
      result.partialSeeds = Number(first.partial_seeds);
    if (stopped) result.downloadCounted = false;
    else if (first.counted !== undefined && first.counted !== null)
      result.downloadCounted = Number(first.counted) > 0;
    return result;
  }

  async scrape(infoHashes: readonly Buffer[]): Promise<SwarmCounts[]> {
    this.#db.assertOpen();
    validateInfoHashes(infoHashes);
    if (infoHashes.length === 0) return [];
    const query = this.#queries.scrape;
    const res = await this.#db.run<{
      info_hash: Buffer;
      seeders: number;
      leechers: number;
      partial_seeds?: number;
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
    // A custom scrape query without the column reports no partial seeds at all.
    const partial = res.fields.some((f) => f.name === 'partial_seeds');
    const byHash = new Map<string, SwarmCounts>();
    for (const r of res.rows) {
      byHash.set(r.info_hash.toString('hex'), {
        seeders: Number(r.seeders),
        leechers: Number(r.leechers),
        downloaded: Number(r.downloaded),
        ...(partial ? { partialSeeds: Number(r.partial_seeds ?? 0) } : {}),
      });
    }
    const none: SwarmCounts = { seeders: 0, leechers: 0, downloaded: 0 };
    if (partial) none.partialSeeds = 0;
    return infoHashes.map((h) => ({ ...(byHash.get(h.toString('hex')) ?? none) }));
  }

  async collectGarbage(): Promise<GcResult> {
    this.#db.assertOpen();
    const now = this.#clock();
    const limit = this.#gcBatchSize;
    const query = this.#queries.gc;
    let peersRemoved = 0;
    let swarmsRemoved = 0;
    // Each batch is its own short implicit transaction (docs/postgres.md: never a long one).
    for (;;) {
      const res = await this.#db.run<{ peers_removed: number; swarms_removed: number }>(
        'gc',
        query,
        bind(query, { now, limit, peer_lifetime_ms: this.#lifetimeMs }),
      );
      const row = res.rows[0];
      const removed = Number(row?.peers_removed ?? res.rowCount ?? 0);
      peersRemoved += removed;
      swarmsRemoved += Number(row?.swarms_removed ?? 0);
      if (removed < limit || this.#db.closed) break;
    }
    return { peersRemoved, swarmsRemoved };
  }

  async stats(): Promise<StoreStats> {
    this.#db.assertOpen();
    const query = this.#queries.stats;
    const res = await this.#db.run<Record<string, number | string | null>>(
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
    this.#db.assertOpen();
    validateTopLimit(limit);
    const query = this.#queries.topSwarms;
    const res = await this.#db.run<{
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
}
