// The typed config openStore takes (docs/storage.md "Opening a store"): one
// variant per driver, discriminated by `driver`; Redis topologies by
// REDIS_MODE, PostgreSQL dialects by DATABASE_DIALECT. The settings keep the
// environment variable names so a service's validated config slots in whole.
import type { PostgresStoreConfigInput } from '../postgres/config.ts';
import type { RedisStoreConfig } from '../redis/config.ts';

export interface MemoryConfig {
  readonly driver: 'memory';
  /** Number of swarm maps; garbage collection yields between two. Default 64. */
  readonly shards?: number;
}

type RedisMode = RedisStoreConfig['REDIS_MODE'];

/** One variant per topology: standalone, sentinel, cluster, ring (docs/redis.md). */
export type RedisTopologyConfig = {
  [M in RedisMode]: RedisStoreConfig & { readonly REDIS_MODE: M };
}[RedisMode];

export interface RedisConfig {
  readonly driver: 'redis';
  readonly redis: RedisTopologyConfig;
}

type Dialect = NonNullable<PostgresStoreConfigInput['DATABASE_DIALECT']>;

/** One variant per dialect: PostgreSQL, CockroachDB (docs/postgres.md, docs/cockroachdb.md). */
export type PostgresDialectConfig = {
  [D in Dialect]: PostgresStoreConfigInput & { readonly DATABASE_DIALECT?: D };
}[Dialect];

export interface PostgresConfig {
  readonly driver: 'postgres';
  readonly postgres: PostgresDialectConfig;
}

/** One backend: what a gateway embeds, or one side of storage-api's composite. */
export type BackendConfig = MemoryConfig | RedisConfig | PostgresConfig;

/**
 * Peers in one backend, KV data, leases and durable download counts in
 * another (docs/storage-api.md). `data` omitted: the peer backend holds
 * everything, opened once.
 */
export interface CompositeConfig {
  readonly driver: 'composite';
  readonly peers: BackendConfig;
  readonly data?: BackendConfig;
}

export type StoreConfig = BackendConfig | CompositeConfig;

/** A backend driver's name (metrics labels, logs). */
export type BackendDriver = BackendConfig['driver'];
