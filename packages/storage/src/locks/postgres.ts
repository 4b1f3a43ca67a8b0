// PostgreSQL / CockroachDB lease lock: a `shoal_leases` row per lease, taken
// or renewed by one conditional upsert (INSERT ... ON CONFLICT DO UPDATE ...
// WHERE), which both databases run atomically against the row. Expiry is
// judged by the database clock, so storage-api replicas on skewed hosts agree.
import { StoreError } from '../errors.ts';
import { resolvePostgresStoreConfig, type PostgresStoreConfigInput } from '../postgres/config.ts';
import {
  clientConfig,
  isRetryable,
  poolRunner,
  toStoreError,
  type QueryRunner,
} from '../postgres/connection.ts';
import { retrySchemaRace, schemaStatements } from '../postgres/migrations.ts';
import type { Dialect } from '../postgres/queries.ts';
import { checkLeaseArgs, type LeaseLock, type LeaseState } from './types.ts';

export const LEASES_DDL = `CREATE TABLE IF NOT EXISTS shoal_leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
)`;

// When the upsert's WHERE refuses (someone else holds a live lease), `up` is
// empty and the second branch reports the row that refused, read from the
// statement's snapshot. CockroachDB accepts both the conditional ON CONFLICT
// and the data-modifying CTE.
const ACQUIRE_SQL = `WITH up AS (
  INSERT INTO shoal_leases AS l (name, holder, expires_at)
  VALUES ($1, $2, now() + $3::FLOAT8 * INTERVAL '1 millisecond')
  ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
  WHERE l.holder = excluded.holder OR l.expires_at <= now()
  RETURNING l.holder, l.expires_at
)
SELECT true AS held, holder, expires_at FROM up
UNION ALL
SELECT false AS held, holder, expires_at FROM shoal_leases
WHERE name = $1 AND expires_at > now() AND NOT EXISTS (SELECT 1 FROM up)`;

// Used only when the upsert refused a row the statement's snapshot predates
// (a concurrent first insert): read the committed holder.
const CURRENT_SQL = `SELECT holder, expires_at FROM shoal_leases WHERE name = $1 AND expires_at > now()`;

const RELEASE_SQL = `DELETE FROM shoal_leases WHERE name = $1 AND holder = $2 RETURNING expires_at > now() AS live`;

interface Row {
  held: boolean;
  holder: string;
  expires_at: Date;
}

/**
 * The table is created on first use (and again after a failure), so a lock
 * made while the database is down starts working when it returns.
 */
export function createPostgresLeaseLock(input: PostgresStoreConfigInput): Promise<LeaseLock> {
  let runner: QueryRunner;
  let retries: number;
  let dialect: Dialect;
  try {
    const config = resolvePostgresStoreConfig(input);
    runner = poolRunner(clientConfig(config), 2);
    retries = config.PG_RETRY_MAX_ATTEMPTS;
    dialect = config.DATABASE_DIALECT;
  } catch (err) {
    return Promise.reject(
      err instanceof Error ? err : new StoreError('STORE_ERR_CONFIG', String(err)),
    );
  }
  let ready: Promise<void> | undefined;
  let closed = false;

  // Under the schema lock that migrations take too: storage-api and gc-worker
  // replicas starting together on an empty database all create it at once.
  const ensureTable = (): Promise<void> => {
    ready ??= retrySchemaRace(dialect, () =>
      runner.batch(schemaStatements(dialect, [LEASES_DDL])),
    ).then(
      () => undefined,
      (err: unknown) => {
        ready = undefined;
        throw toStoreError(err, 'create shoal_leases');
      },
    );
    return ready;
  };

  // CockroachDB asks clients to retry SQLSTATE 40001 (docs/decisions.md "Sources").
  const run = async <R extends object>(
    what: string,
    name: string,
    text: string,
    values: unknown[],
  ): Promise<R[]> => {
    if (closed) throw new StoreError('STORE_ERR_UNAVAILABLE', 'lease lock closed');
    await ensureTable();
    for (let attempt = 1; ; attempt++) {
      try {
        return (await runner.query(name, text, values)).rows as R[];
      } catch (err) {
        if (!isRetryable(err) || attempt >= retries) throw toStoreError(err, what);
      }
    }
  };
  const check = (name: string, holder: string, ttlMs?: number): void => {
    const problem = checkLeaseArgs(name, holder, ttlMs);
    if (problem !== undefined) throw new StoreError('STORE_ERR_BAD_INPUT', problem);
  };

  return Promise.resolve({
    async acquire(name, holder, ttlMs): Promise<LeaseState> {
      check(name, holder, ttlMs);
      const rows = await run<Row>('lease acquire', 'shoal_lease_acquire', ACQUIRE_SQL, [
        name,
        holder,
        ttlMs,
      ]);
      let row: Omit<Row, 'held'> | undefined = rows[0];
      if (row === undefined)
        row = (
          await run<Omit<Row, 'held'>>('lease read', 'shoal_lease_read', CURRENT_SQL, [name])
        )[0];
      if (row === undefined) return { held: false, holder: null, expiresAt: null };
      return {
        held: rows[0]?.held === true,
        holder: row.holder,
        expiresAt: row.expires_at.getTime(),
      };
    },
    async release(name, holder) {
      check(name, holder);
      const rows = await run<{ live: boolean }>(
        'lease release',
        'shoal_lease_release',
        RELEASE_SQL,
        [name, holder],
      );
      return rows[0]?.live === true;
    },
    async close() {
      if (closed) return;
      closed = true;
      await runner.close();
    },
  });
}
