// Default schema as numbered migrations (issue 4): idempotent (IF NOT EXISTS),
// additive only (a migration never drops or rewrites data), in the SQL subset
// PostgreSQL and CockroachDB both accept: BYTEA addresses (no inet index),
// INT8 millisecond expiry, logged tables (UNLOGGED is ignored by CockroachDB,
// so nothing relies on it).
import type { Dialect } from './queries.ts';

export interface Migration {
  readonly version: number;
  readonly name: string;
  statements(dialect: Dialect): string[];
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
      // A monotonically growing key is a write hotspot on one CockroachDB
      // range; hash sharding spreads it.
      dialect === 'cockroach'
        ? `CREATE INDEX IF NOT EXISTS shoal_peers_expiry ON shoal_peers (expires_at) USING HASH`
        : `CREATE INDEX IF NOT EXISTS shoal_peers_expiry ON shoal_peers (expires_at)`,
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
 * gc-worker's batched deletes (FIELD-NOTES "CockroachDB": the default delete
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
