// Default schema as numbered migrations: idempotent (IF NOT EXISTS),
// additive only (a migration never drops or rewrites data), in the SQL subset
// PostgreSQL and CockroachDB both accept: BYTEA addresses (no inet index),
// INT8 millisecond expiry, logged tables (UNLOGGED is ignored by CockroachDB,
// so nothing relies on it).
import type { Dialect } from './queries.ts';
import type { Statement } from './connection.ts';

export interface Migration {
  readonly version: number;
  readonly name: string;
  statements(dialect: Dialect): string[];
}

/**
 * An index on a column of times. A monotonically growing key is a write
 * hotspot on one CockroachDB range; hash sharding spreads it.
 */
function timeIndex(dialect: Dialect, name: string, table: string, column: string): string {
  const sql = `CREATE INDEX IF NOT EXISTS ${name} ON ${table} (${column})`;
  return dialect === 'cockroach' ? `${sql} USING HASH` : sql;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'peers, downloads, kv',
    statements: (dialect) => [
      `CREATE TABLE IF NOT EXISTS shoal_peers (
        info_hash BYTEA NOT NULL,
        is_v6 BOOLEAN NOT NULL,
        address BYTEA NOT NULL,
        port INT4 NOT NULL,
        peer_id BYTEA NOT NULL,
        is_seeder BOOLEAN NOT NULL,
        expires_at INT8 NOT NULL,
        sample_key INT4 NOT NULL,
        PRIMARY KEY (info_hash, is_v6, address, port)
      )`,
      `CREATE INDEX IF NOT EXISTS shoal_peers_sample ON shoal_peers (info_hash, is_v6, sample_key)`,
      timeIndex(dialect, 'shoal_peers_expiry', 'shoal_peers', 'expires_at'),
      `CREATE TABLE IF NOT EXISTS shoal_downloads (
        info_hash BYTEA NOT NULL PRIMARY KEY,
        downloaded INT8 NOT NULL DEFAULT 0
      )`,
      `CREATE TABLE IF NOT EXISTS shoal_kv (
        context TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (context, key)
      )`,
    ],
  },
  {
    version: 2,
    name: 'download receipts',
    // Completions counted from another backend's receipts, kept long enough
    // that a re-sent receipt is recognised (docs/postgres.md "Download receipts").
    statements: (dialect) => [
      `CREATE TABLE IF NOT EXISTS shoal_download_receipts (
        info_hash BYTEA NOT NULL,
        receipt TEXT NOT NULL,
        created_at INT8 NOT NULL,
        PRIMARY KEY (info_hash, receipt)
      )`,
      timeIndex(
        dialect,
        'shoal_download_receipts_created',
        'shoal_download_receipts',
        'created_at',
      ),
    ],
  },
  {
    version: 3,
    name: 'partial seeds',
    // BEP 21 partial seeds, counted apart from the leechers they are among
    // (docs/decisions.md "Client features beyond BEP 3"). A default, so
    // rows written before are leechers or seeders as they were.
    statements: () => [
      `ALTER TABLE shoal_peers ADD COLUMN IF NOT EXISTS is_partial_seed BOOLEAN NOT NULL DEFAULT false`,
    ],
  },
  {
    version: 4,
    name: 'key hashes',
    // Peers that move (docs/decisions.md "Peers that move"): the hash of the
    // peer_id and key of a row's latest announce, NULL without a key. No
    // index: the move statement reads the swarm's rows by the primary key's
    // prefix, as the announce's counts already do.
    statements: () => [`ALTER TABLE shoal_peers ADD COLUMN IF NOT EXISTS key_hash BYTEA`],
  },
  {
    version: 5,
    name: 'rate counts',
    // Shared rate-limit counts per window (docs/policy.md "Shared rate
    // limits", docs/postgres.md "Shared rate-limit counts"). Only the primary
    // key: old windows are deleted by its prefix, and without a secondary
    // index an update that leaves the key alone stays a PostgreSQL HOT update.
    statements: () => [
      `CREATE TABLE IF NOT EXISTS shoal_rate_counts (
        window_ms INT8 NOT NULL,
        rate_window INT8 NOT NULL,
        key TEXT NOT NULL,
        hits INT8 NOT NULL,
        PRIMARY KEY (window_ms, rate_window, key)
      )`,
    ],
  },
];

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS shoal_schema_migrations (
  version INT4 NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at_ms INT8 NOT NULL
)`;

export interface RowTtlSettings {
  jobCron: string;
  deleteRateLimit: number;
  deleteBatchSize: number;
}

/**
 * CockroachDB row-level TTL on the peers table, instead of or beside the
 * gc-worker's batched deletes (docs/decisions.md "Sources": the default delete
 * rate of 100 rows/s per leaseholder is far below tracker churn). Queries
 * still filter on expires_at, because the TTL job deletes late.
 */
export function cockroachRowTtlStatements(ttl: RowTtlSettings): string[] {
  const expression = `(TIMESTAMPTZ '1970-01-01 00:00:00+00:00' + expires_at * INTERVAL '1 millisecond')`;
  return [
    `ALTER TABLE shoal_peers SET (
      ttl_expiration_expression = '${expression.replaceAll("'", "''")}',
      ttl_job_cron = '${ttl.jobCron.replaceAll("'", "''")}',
      ttl_delete_rate_limit = ${Math.trunc(ttl.deleteRateLimit)},
      ttl_delete_batch_size = ${Math.trunc(ttl.deleteBatchSize)}
    )`,
  ];
}

/**
 * Names Shoal's schema lock among other advisory lock users. Never change it:
 * replicas of different versions must agree during a rolling upgrade (earlier
 * versions took the same key with the session-scoped pg_advisory_lock, which
 * conflicts with the transaction-scoped one).
 */
export const SCHEMA_LOCK_KEY = '5386209461245931';
export const SCHEMA_LOCK_SQL = 'SELECT pg_advisory_xact_lock($1::INT8)';

// 40001 serialization_failure, 42710 duplicate_object (the table's row type),
// 42P07 duplicate_table, 23505 unique_violation (a catalog index): two
// sessions created the same object at once. Which one appears depends on
// where the second session was when the first committed.
const SCHEMA_RACE_STATES = new Set(['40001', '42710', '42P07', '23505']);
/** CockroachDB: attempts of one schema creation before its race error is reported. */
export const SCHEMA_RACE_ATTEMPTS = 5;

export function isSchemaRace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && SCHEMA_RACE_STATES.has(code);
}

/**
 * `ddl` (idempotent: IF NOT EXISTS) as the statements to run in order on one
 * connection so that processes creating the same schema at once on an empty
 * database all succeed. PostgreSQL checks IF NOT EXISTS before it locks the
 * catalog, so concurrent creators fail with a SCHEMA_RACE_STATES code: there,
 * one transaction that first takes the transaction-scoped advisory lock makes
 * them run one after another (released by COMMIT or ROLLBACK, or when the
 * session dies, and safe behind a transaction-pooling proxy). CockroachDB's
 * advisory lock functions are missing or no-ops before v26.2, so its
 * statements run as they are, under retrySchemaRace.
 */
export function schemaStatements(dialect: Dialect, ddl: readonly string[]): Statement[] {
  const plain = ddl.map((text) => ({ text }));
  if (dialect === 'cockroach') return plain;
  return [
    { text: 'BEGIN' },
    { text: SCHEMA_LOCK_SQL, values: [SCHEMA_LOCK_KEY] },
    ...plain,
    { text: 'COMMIT' },
  ];
}

/**
 * Runs an idempotent schema creation; on CockroachDB again after a race
 * error, up to SCHEMA_RACE_ATTEMPTS times with a short random pause.
 * PostgreSQL serializes creators with the advisory lock instead, so there a
 * race error is a bug and is reported at once.
 */
export async function retrySchemaRace<T>(dialect: Dialect, create: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await create();
    } catch (err) {
      if (dialect !== 'cockroach' || !isSchemaRace(err) || attempt >= SCHEMA_RACE_ATTEMPTS)
        throw err;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80 * attempt));
    }
  }
}

/** One connection, as migrations need (pg.Client, pg.PoolClient). */
export interface SchemaSession {
  query<R extends object = object>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

export interface MigrationOptions {
  dialect: Dialect;
  /** PG_QUERY_MIGRATE: replaces MIGRATIONS, run as one script. */
  custom?: string | undefined;
  /** CockroachDB row-level TTL to set after the migrations (PG_COCKROACH_ROW_TTL). */
  rowTtl?: RowTtlSettings | undefined;
}

/**
 * Applies the migrations not yet recorded in shoal_schema_migrations. Safe
 * with many processes at once on an empty database (docs/postgres.md "Schema
 * and migrations"): on PostgreSQL everything, the version read included, is
 * one transaction under the advisory lock, so it applies whole or not at all
 * and later processes find nothing left to do; on CockroachDB the IF NOT
 * EXISTS statements and the version table's primary key make a repeat
 * harmless and races are retried.
 */
export async function runMigrations(
  session: SchemaSession,
  options: MigrationOptions,
): Promise<{ applied: Array<number | 'custom'> }> {
  const { dialect } = options;
  const inTransaction = async <T>(work: () => Promise<T>): Promise<T> => {
    if (dialect === 'cockroach') return work();
    await session.query('BEGIN');
    try {
      await session.query(SCHEMA_LOCK_SQL, [SCHEMA_LOCK_KEY]);
      const out = await work();
      await session.query('COMMIT');
      return out;
    } catch (err) {
      await session.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  };
  const result = await retrySchemaRace(dialect, () =>
    inTransaction(async (): Promise<{ applied: Array<number | 'custom'> }> => {
      if (options.custom !== undefined) {
        await session.query(options.custom);
        return { applied: ['custom'] };
      }
      await session.query(MIGRATIONS_TABLE);
      const done = new Set(
        (
          await session.query<{ version: number }>('SELECT version FROM shoal_schema_migrations')
        ).rows.map((r) => Number(r.version)),
      );
      const applied: number[] = [];
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        for (const sql of m.statements(dialect)) await session.query(sql);
        await session.query(
          'INSERT INTO shoal_schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING',
          [m.version, m.name, Date.now()],
        );
        applied.push(m.version);
      }
      return { applied };
    }),
  );
  if (dialect === 'cockroach' && options.rowTtl !== undefined) {
    for (const sql of cockroachRowTtlStatements(options.rowTtl)) await session.query(sql);
  }
  return result;
}
