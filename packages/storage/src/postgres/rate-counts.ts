// The shared rate-limit counters of the PostgreSQL driver (docs/policy.md
// "Shared rate limits", docs/postgres.md "Shared rate-limit counts"): one
// upsert statement per sync, and the windows nobody reads any more deleted
// by the store itself, because an embedded store has no gc-worker.
import type { RateCounts } from '../capabilities.ts';
import { validateRateCounts } from '../validate.ts';
import type { PostgresExecutor } from './executor.ts';
import {
  ADD_RATE_COUNTS,
  EXPIRE_RATE_COUNTS_COCKROACH,
  EXPIRE_RATE_COUNTS_POSTGRES,
  type Dialect,
} from './queries.ts';
import { bind, compileQuery, type CompiledQuery } from './sql.ts';

const ADD_RATE_COUNTS_QUERY = compileQuery('addRateCounts (built in)', ADD_RATE_COUNTS, {
  allowed: ['window_ms', 'window', 'keys', 'deltas'],
  required: ['window_ms', 'window', 'keys', 'deltas'],
}).query;
const EXPIRE_SPEC = {
  allowed: ['window_ms', 'before', 'limit'],
  required: ['window_ms', 'before', 'limit'],
};
const EXPIRE_RATE_COUNTS_QUERY: Record<Dialect, CompiledQuery> = {
  postgres: compileQuery('expireRateCounts (built in)', EXPIRE_RATE_COUNTS_POSTGRES, EXPIRE_SPEC)
    .query,
  cockroach: compileQuery('expireRateCounts (built in)', EXPIRE_RATE_COUNTS_COCKROACH, EXPIRE_SPEC)
    .query,
};

export interface RateCountsOptions {
  dialect: Dialect;
  /** Rows deleted per statement (PG_GC_BATCH_SIZE). */
  gcBatchSize: number;
  /** A failed deletion of old windows (they are deleted again next window). */
  onError: (err: unknown) => void;
}

export class PostgresRateCounts {
  readonly #db: PostgresExecutor;
  readonly #opts: RateCountsOptions;
  /** Per window length, the newest window whose predecessors this store has deleted. */
  readonly #expired = new Map<number, number>();
  #expiring: Promise<void> | undefined;

  constructor(db: PostgresExecutor, opts: RateCountsOptions) {
    this.#db = db;
    this.#opts = opts;
  }

  async addRateCounts(
    window: number,
    windowMs: number,
    keys: readonly string[],
    deltas: readonly number[],
  ): Promise<RateCounts> {
    this.#db.assertOpen();
    validateRateCounts(window, windowMs, keys, deltas);
    // One row per key and statement: a key named twice is added once, summed.
    const merged = new Map<string, number>();
    for (let i = 0; i < keys.length; i++)
      merged.set(keys[i]!, (merged.get(keys[i]!) ?? 0) + deltas[i]!);
    const counts: RateCounts = { current: [], previous: [] };
    if (merged.size === 0) return counts;
    const q = ADD_RATE_COUNTS_QUERY;
    const res = await this.#db.run<{
      key: string;
      current: string | number;
      previous: string | number;
    }>(
      'addRateCounts',
      q,
      bind(q, {
        window_ms: windowMs,
        window,
        keys: [...merged.keys()],
        deltas: [...merged.values()],
      }),
    );
    this.#expireBefore(window, windowMs);
    const byKey = new Map(res.rows.map((r) => [r.key, r]));
    for (const key of keys) {
      const row = byKey.get(key);
      counts.current.push(Number(row?.current ?? 0));
      counts.previous.push(Number(row?.previous ?? 0));
    }
    return counts;
  }

  /**
   * The first call of a newer window deletes the windows before the one
   * before it, in the background after any deletion still running: a sync
   * never waits for it, and a failed one is tried again by the next call.
   */
  #expireBefore(window: number, windowMs: number): void {
    if ((this.#expired.get(windowMs) ?? -1) >= window) return;
    this.#expired.set(windowMs, window);
    const q = EXPIRE_RATE_COUNTS_QUERY[this.#opts.dialect];
    const limit = this.#opts.gcBatchSize;
    const params = bind(q, { window_ms: windowMs, before: window - 1, limit });
    const expire = async (): Promise<void> => {
      for (;;) {
        if (this.#db.closed) return;
        const res = await this.#db.run('expireRateCounts', q, params);
        if ((res.rowCount ?? 0) < limit) return;
      }
    };
    this.#expiring = this.#settled()
      .then(expire)
      .then(
        () => undefined,
        (err: unknown) => {
          if ((this.#expired.get(windowMs) ?? -1) === window)
            this.#expired.set(windowMs, window - 1);
          if (!this.#db.closed) this.#opts.onError(err);
        },
      );
  }

  #settled(): Promise<void> {
    return this.#expiring ?? Promise.resolve();
  }
}
