// @shoal/storage/postgres: the PostgreSQL / CockroachDB driver.
export {
  PostgresStoreConfigSchema,
  PostgresConfigError,
  checkPostgresStoreConfig,
  resolvePostgresStoreConfig,
} from './config.ts';
export type {
  ConfigProblem,
  PostgresStoreConfig,
  PostgresStoreConfigInput,
  ResolvedPostgresStoreConfig,
} from './config.ts';
export { createPostgresStore } from './store.ts';
export type { MigrateResult, PostgresStore, PostgresStoreOptions, RetryInfo } from './store.ts';
export { QUERY_CONFIG_KEYS, QUERY_PARAMS, defaultQueries } from './queries.ts';
export type { Dialect, QueryName } from './queries.ts';
export { MIGRATIONS } from './migrations.ts';
