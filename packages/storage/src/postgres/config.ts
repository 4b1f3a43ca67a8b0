// Config of the postgres driver: property names are the environment variable
// names, so a service composes this schema into its own and loads it with
// @shoal/config (docs/conventions.md "Config"). Query overrides are checked here too:
// an unknown @parameter or a missing required one is reported with the
// query's config key.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { StoreError } from '../errors.ts';
import {
  QUERY_CONFIG_KEYS,
  QUERY_NAMES,
  QUERY_PARAMS,
  defaultQueries,
  type QueryName,
} from './queries.ts';
import { compileQuery, type CompiledQuery } from './sql.ts';

const queryOverride = (what: string) =>
  Type.Optional(
    Type.String({
      minLength: 1,
      description: `Replaces the ${what} query (named @parameters, docs/postgres.md)`,
    }),
  );

const OptionalFile = (description: string) =>
  Type.Optional(Type.String({ minLength: 1, description }));

export const PostgresStoreConfigSchema = Type.Object({
  // Optional in the schema so a service can compose it and still boot with
  // another driver; checkPostgresStoreConfig requires it.
  DATABASE_URL: Type.Optional(
    Type.String({
      minLength: 1,
      secret: true,
      description:
        'postgres://user:pass@host:port/db?sslmode=... or a key=value DSN (host=... dbname=...); required by the postgres driver',
    }),
  ),
  DATABASE_DIALECT: Type.Union([Type.Literal('postgres'), Type.Literal('cockroach')], {
    default: 'postgres',
    description: 'postgres or cockroach: the SQL and locking that differ (docs/cockroachdb.md)',
  }),
  PG_POOL_SIZE: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 4,
    description: 'Connections per process',
  }),
  PG_PIPELINE: Type.Boolean({
    default: true,
    description: 'Pipeline queries on each connection (node-postgres >= 8.23); false uses pg.Pool',
  }),
  PG_CONNECT_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 2000,
    description: 'Connect timeout',
  }),
  PG_STATEMENT_TIMEOUT_MS: Type.Integer({
    minimum: 0,
    default: 5000,
    description: 'Server-side statement_timeout; 0 disables. Migrations run without it',
  }),
  PG_ISOLATION_LEVEL: Type.Union(
    [
      Type.Literal('server-default'),
      Type.Literal('read committed'),
      Type.Literal('repeatable read'),
      Type.Literal('serializable'),
    ],
    {
      default: 'server-default',
      description: 'Sets default_transaction_isolation at connect; server-default leaves it alone',
    },
  ),
  PG_ANNOUNCE_SWARM_LOCK: Type.Union(
    [Type.Literal('auto'), Type.Literal('on'), Type.Literal('off')],
    {
      default: 'auto',
      description:
        'Serialize announces of one swarm with a transaction-scoped advisory lock (PostgreSQL only); auto = on unless SERIALIZABLE',
    },
  ),
  PG_TLS: Type.Boolean({
    default: false,
    description: 'Use TLS even when DATABASE_URL does not ask for it',
  }),
  PG_TLS_CA_FILE: OptionalFile('PEM CA bundle to verify the server with, read once at boot'),
  PG_TLS_CERT_FILE: OptionalFile('PEM client certificate, with PG_TLS_KEY_FILE'),
  PG_TLS_KEY_FILE: OptionalFile('PEM key of PG_TLS_CERT_FILE'),
  PG_TLS_REJECT_UNAUTHORIZED: Type.Boolean({
    default: true,
    description: 'false accepts any server certificate',
  }),
  PG_MIGRATE_ON_START: Type.Boolean({
    default: true,
    description:
      'Run the migrations when the store is created; false leaves them to the migrate command (a Kubernetes Job)',
  }),
  PG_RETRY_MAX_ATTEMPTS: Type.Integer({
    minimum: 1,
    maximum: 100,
    default: 10,
    description:
      'Attempts of a statement on SQLSTATE 40001 / 40P01 (serialization failure, deadlock)',
  }),
  PG_RETRY_BASE_DELAY_MS: Type.Integer({
    minimum: 0,
    default: 2,
    description: 'Base of the capped exponential backoff between retries, full jitter',
  }),
  PG_RETRY_MAX_DELAY_MS: Type.Integer({
    minimum: 0,
    default: 200,
    description: 'Cap of the backoff between retries',
  }),
  PG_UNAVAILABLE_HOLD_MS: Type.Integer({
    minimum: 0,
    default: 250,
    description: 'After a failed connect, answer STORE_ERR_UNAVAILABLE at once for this long',
  }),
  PG_GC_BATCH_SIZE: Type.Integer({
    minimum: 1,
    default: 5000,
    description: 'Peers deleted per garbage collection statement (each its own short transaction)',
  }),
  PG_COCKROACH_ROW_TTL: Type.Boolean({
    default: false,
    description:
      'CockroachDB only: migrations turn on row-level TTL for expired peers, beside or instead of the gc-worker (docs/cockroachdb.md)',
  }),
  PG_COCKROACH_TTL_JOB_CRON: Type.String({
    minLength: 1,
    default: '*/5 * * * *',
    description: "Row-level TTL: the deletion job's schedule (ttl_job_cron)",
  }),
  PG_COCKROACH_TTL_DELETE_RATE_LIMIT: Type.Integer({
    minimum: 0,
    default: 10000,
    description:
      "Row-level TTL: rows deleted per second per leaseholder (ttl_delete_rate_limit); CockroachDB's default of 100 is far below tracker churn",
  }),
  PG_COCKROACH_TTL_DELETE_BATCH_SIZE: Type.Integer({
    minimum: 1,
    default: 1000,
    description: 'Row-level TTL: rows per delete batch (ttl_delete_batch_size)',
  }),
  PG_QUERY_MIGRATE: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'SQL script run by migrate() instead of the built-in migrations',
    }),
  ),
  PG_QUERY_ANNOUNCE: queryOverride('announce'),
  PG_QUERY_ANNOUNCE_STOPPED: queryOverride('event=stopped announce'),
  PG_QUERY_ANNOUNCE_MOVE: queryOverride(
    'move of a client announcing with a key from a new address, run before its announce',
  ),
  PG_QUERY_SCRAPE: queryOverride('scrape'),
  PG_QUERY_GC: queryOverride('garbage collection batch'),
  PG_QUERY_STATS: queryOverride('stats'),
  PG_QUERY_TOP_SWARMS: queryOverride('top swarms (admin view)'),
  PG_QUERY_KV_GET: queryOverride('KV get'),
  PG_QUERY_KV_PUT: queryOverride('KV put'),
  PG_QUERY_KV_DELETE: queryOverride('KV delete'),
  PG_QUERY_KV_LIST: queryOverride('KV list'),
  PG_QUERY_PING: queryOverride('ping'),
});

export type PostgresStoreConfig = Static<typeof PostgresStoreConfigSchema>;

/** A validated config: defaults applied, DATABASE_URL present. */
export type ResolvedPostgresStoreConfig = Readonly<PostgresStoreConfig & { DATABASE_URL: string }>;

/** What callers may pass: DATABASE_URL plus any settings; the rest take defaults. */
export type PostgresStoreConfigInput = Readonly<
  Partial<PostgresStoreConfig> & { DATABASE_URL: string }
>;

export interface ConfigProblem {
  key: string;
  message: string;
}

/** STORE_ERR_CONFIG with every problem as data, so callers need not read the message. */
export class PostgresConfigError extends StoreError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super('STORE_ERR_CONFIG', problems.map((p) => `${p.key} ${p.message}`).join('; '));
    this.problems = problems;
  }
}

export type CompiledQueries = Readonly<Record<QueryName, CompiledQuery>>;

/** Compiles the effective queries (defaults + overrides); problems name the config key. */
export function compileQueries(config: Readonly<Partial<PostgresStoreConfig>>): {
  queries: CompiledQueries;
  problems: ConfigProblem[];
} {
  const defaults = defaultQueries(config.DATABASE_DIALECT ?? 'postgres');
  const problems: ConfigProblem[] = [];
  const queries = {} as Record<QueryName, CompiledQuery>;
  for (const name of QUERY_NAMES) {
    const key = QUERY_CONFIG_KEYS[name];
    const sql = config[key] ?? defaults[name];
    const compiled = compileQuery(key, sql, QUERY_PARAMS[name]);
    queries[name] = compiled.query;
    for (const message of compiled.problems) problems.push({ key, message });
  }
  return { queries, problems };
}

/**
 * Cross-field checks for @shoal/config's `check` hook: query parameters and
 * TLS files that only make sense together.
 */
export function checkPostgresStoreConfig(
  config: Readonly<Partial<PostgresStoreConfig>>,
): ConfigProblem[] {
  const problems = compileQueries(config).problems;
  if (config.DATABASE_URL === undefined) {
    problems.unshift({ key: 'DATABASE_URL', message: 'is required by the postgres driver' });
  }
  if ((config.PG_TLS_CERT_FILE === undefined) !== (config.PG_TLS_KEY_FILE === undefined)) {
    problems.push({
      key: 'PG_TLS_CERT_FILE',
      message: 'PG_TLS_CERT_FILE and PG_TLS_KEY_FILE go together',
    });
  }
  if ((config.PG_RETRY_MAX_DELAY_MS ?? 0) < (config.PG_RETRY_BASE_DELAY_MS ?? 0)) {
    problems.push({
      key: 'PG_RETRY_MAX_DELAY_MS',
      message: 'must be at least PG_RETRY_BASE_DELAY_MS',
    });
  }
  if (config.PG_ANNOUNCE_SWARM_LOCK === 'on' && config.DATABASE_DIALECT === 'cockroach') {
    problems.push({
      key: 'PG_ANNOUNCE_SWARM_LOCK',
      message: 'CockroachDB has no advisory locks; use auto or off',
    });
  }
  if (config.PG_COCKROACH_ROW_TTL === true && config.DATABASE_DIALECT !== 'cockroach') {
    problems.push({ key: 'PG_COCKROACH_ROW_TTL', message: 'needs DATABASE_DIALECT=cockroach' });
  }
  return problems;
}

/**
 * Defaults, type check and cross-field checks of a config given in code (the
 * services load it with @shoal/config, which runs the same schema). Every
 * problem is listed in one STORE_ERR_CONFIG.
 */
export function resolvePostgresStoreConfig(
  input: PostgresStoreConfigInput,
): ResolvedPostgresStoreConfig {
  const unknownQueries = Object.keys(input).filter(
    (k) =>
      k.startsWith('PG_QUERY_') &&
      k !== 'PG_QUERY_MIGRATE' &&
      !Object.values(QUERY_CONFIG_KEYS).includes(k as never),
  );
  const withDefaults = Value.Default(
    PostgresStoreConfigSchema,
    structuredClone({ ...input }),
  ) as Record<string, unknown>;
  const problems: ConfigProblem[] = unknownQueries.map((key) => ({
    key,
    message: 'is not a known query name',
  }));
  const failed = new Set<string>();
  for (const err of Value.Errors(PostgresStoreConfigSchema, withDefaults)) {
    const key = err.path.split('/')[1] ?? '(root)';
    if (failed.has(key)) continue;
    failed.add(key);
    problems.push({ key, message: err.message });
  }
  if (problems.length === 0) problems.push(...checkPostgresStoreConfig(withDefaults));
  if (problems.length > 0) throw new PostgresConfigError(problems);
  return Object.freeze(withDefaults) as ResolvedPostgresStoreConfig;
}
