// How the PostgreSQL driver runs a statement: as a named prepared statement
// on the pooled or pipelined connections (connection.ts), retried with
// backoff and jitter on serialization failures and deadlocks, and refused
// once the store is closed. The store's parts (swarms.ts, downloads.ts,
// kv.ts) share one executor.
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { StoreError } from '../errors.ts';
import type { ResolvedPostgresStoreConfig } from './config.ts';
import {
  clientConfig,
  isRetryable,
  pipelineRunner,
  poolRunner,
  toStoreError,
  type QueryRunner,
  type Statement,
} from './connection.ts';
import type { CompiledQuery } from './sql.ts';

export interface RetryInfo {
  /** Query name in config, e.g. PG_QUERY_ANNOUNCE. */
  query: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** SQLSTATE: 40001 (serialization failure) or 40P01 (deadlock). */
  code: string;
  delayMs: number;
}

export class PostgresExecutor {
  readonly #config: ResolvedPostgresStoreConfig;
  readonly #runner: QueryRunner;
  readonly #random: () => number;
  readonly #onRetry: ((info: RetryInfo) => void) | undefined;
  #closed = false;

  constructor(
    config: ResolvedPostgresStoreConfig,
    random: () => number,
    onRetry: ((info: RetryInfo) => void) | undefined,
  ) {
    this.#config = config;
    const cfg = clientConfig(config);
    this.#runner = config.PG_PIPELINE
      ? pipelineRunner(cfg, config.PG_POOL_SIZE, config.PG_UNAVAILABLE_HOLD_MS)
      : poolRunner(cfg, config.PG_POOL_SIZE);
    this.#random = random;
    this.#onRetry = onRetry;
  }

  get closed(): boolean {
    return this.#closed;
  }

  assertOpen(): void {
    if (this.#closed) throw new StoreError('STORE_ERR_UNAVAILABLE', 'store closed');
  }

  /** `query` prepared as `shoal_<name>`, retried. */
  run<R extends pg.QueryResultRow>(
    name: string,
    query: CompiledQuery,
    params: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.#retrying(query, () => this.#runner.query<R>(`shoal_${name}`, query.text, params));
  }

  /** Statements written together on one connection (a transaction), retried as a whole. */
  batch(query: CompiledQuery, statements: readonly Statement[]): Promise<pg.QueryResult[]> {
    return this.#retrying(query, () => this.#runner.batch(statements));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#runner.close();
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
