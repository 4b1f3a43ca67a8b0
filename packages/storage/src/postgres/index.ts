// @shoal/storage/postgres: the PostgreSQL / CockroachDB driver.
export {
  PostgresStoreConfigSchema,
  PostgresConfigError,
  checkPostgresStoreConfig,
  resolvePostgresStoreConfig,
  type ConfigProblem,
  type PostgresStoreConfig,
  type PostgresStoreConfigInput,
  type ResolvedPostgresStoreConfig,
} from './config.ts';
export {
  createPostgresStore,
  type MigrateResult,
  type PostgresStore,
  type PostgresStoreOptions,
  type RetryInfo,
} from './store.ts';
export {
  QUERY_CONFIG_KEYS,
  QUERY_PARAMS,
  defaultQueries,
  type Dialect,
  type QueryName,
} from './queries.ts';
export { MIGRATIONS } from './migrations.ts';
