// The durable key-value data of the PostgreSQL driver (approval lists,
// passkeys): one table keyed by (context, key), queries replaceable in config.
import type { CompiledQueries } from './config.ts';
import type { PostgresExecutor } from './executor.ts';
import { bind } from './sql.ts';

export class PostgresKv {
  readonly #db: PostgresExecutor;
  readonly #queries: CompiledQueries;

  constructor(db: PostgresExecutor, queries: CompiledQueries) {
    this.#db = db;
    this.#queries = queries;
  }

  async get(context: string, key: string): Promise<string | undefined> {
    this.#db.assertOpen();
    const q = this.#queries.kvGet;
    const res = await this.#db.run<{ value: string }>('kvGet', q, bind(q, { context, key }));
    return res.rows[0]?.value;
  }

  async put(context: string, key: string, value: string): Promise<void> {
    this.#db.assertOpen();
    const q = this.#queries.kvPut;
    await this.#db.run('kvPut', q, bind(q, { context, key, value }));
  }

  async delete(context: string, key: string): Promise<boolean> {
    this.#db.assertOpen();
    const q = this.#queries.kvDelete;
    const res = await this.#db.run('kvDelete', q, bind(q, { context, key }));
    return (res.rowCount ?? res.rows.length) > 0;
  }

  async list(context: string): Promise<Array<[key: string, value: string]>> {
    this.#db.assertOpen();
    const q = this.#queries.kvList;
    const res = await this.#db.run<{ key: string; value: string }>(
      'kvList',
      q,
      bind(q, { context }),
    );
    const entries = res.rows.map((r): [string, string] => [r.key, r.value]);
    // UTF-16 code unit order whatever the database collation, as the memory driver.
    entries.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    return entries;
  }
}
