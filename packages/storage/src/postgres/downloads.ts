// The durable download counts of the PostgreSQL driver, for a composite
// whose peers live in another backend: counts added in batches, and the
// receipts that make a re-sent completion count once (docs/storage-api.md
// "Consistency of split backends"). These statements are built in, not
// replaceable in config.
import { INFO_HASH_LEN, badInput, validateInfoHashes } from '../validate.ts';
import type { DownloadReceipt } from '../types.ts';
import type { PostgresExecutor } from './executor.ts';
import {
  ADD_DOWNLOADS,
  ADD_DOWNLOAD_RECEIPTS,
  EXPIRE_RECEIPTS_COCKROACH,
  EXPIRE_RECEIPTS_POSTGRES,
  GET_DOWNLOADS,
  type Dialect,
} from './queries.ts';
import { bind, compileQuery, type CompiledQuery } from './sql.ts';

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

export interface DownloadsOptions {
  dialect: Dialect;
  clock: () => number;
  lifetimeMs: number;
  /** Receipts deleted per statement (PG_GC_BATCH_SIZE). */
  gcBatchSize: number;
}

export class PostgresDownloads {
  readonly #db: PostgresExecutor;
  readonly #opts: DownloadsOptions;

  constructor(db: PostgresExecutor, opts: DownloadsOptions) {
    this.#db = db;
    this.#opts = opts;
  }

  async addDownloads(
    increments: ReadonlyArray<readonly [infoHash: Buffer, count: number]>,
  ): Promise<void> {
    this.#db.assertOpen();
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
    await this.#db.run('addDownloads', q, params);
  }

  async addDownloadReceipts(receipts: readonly DownloadReceipt[]): Promise<void> {
    this.#db.assertOpen();
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
      now: this.#opts.clock(),
    });
    await this.#db.run('addDownloadReceipts', q, params);
  }

  async expireDownloadReceipts(): Promise<number> {
    this.#db.assertOpen();
    const q = EXPIRE_RECEIPTS_QUERY[this.#opts.dialect];
    const limit = this.#opts.gcBatchSize;
    const before = this.#opts.clock() - RECEIPT_LIFETIMES * this.#opts.lifetimeMs;
    let removed = 0;
    for (;;) {
      const res = await this.#db.run('expireDownloadReceipts', q, bind(q, { before, limit }));
      const n = res.rowCount ?? 0;
      removed += n;
      if (n < limit || this.#db.closed) break;
    }
    return removed;
  }

  async downloads(infoHashes: readonly Buffer[]): Promise<number[]> {
    this.#db.assertOpen();
    validateInfoHashes(infoHashes);
    if (infoHashes.length === 0) return [];
    const q = GET_DOWNLOADS_QUERY;
    const params = bind(q, { info_hashes: infoHashes });
    const res = await this.#db.run<{ info_hash: Buffer; downloaded: string | number }>(
      'downloads',
      q,
      params,
    );
    const byHash = new Map<string, number>();
    for (const r of res.rows) byHash.set(r.info_hash.toString('hex'), Number(r.downloaded));
    return infoHashes.map((h) => byHash.get(h.toString('hex')) ?? 0);
  }
}
