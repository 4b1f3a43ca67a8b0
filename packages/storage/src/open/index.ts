// openStore: the one place a store is constructed from config
// (docs/storage.md "Opening a store"). Drivers are imported when first
// opened, so `@shoal/storage` itself never loads a database client.
import type { PingableDataStore } from '../capabilities.ts';
import type { CompositeStore, CompositeStoreParts } from '../composite/index.ts';
import { StoreError } from '../errors.ts';
import type { LeaseLock } from '../locks/types.ts';
import {
  checkPostgresStoreConfig,
  type ConfigProblem,
  type PostgresStoreConfig,
} from '../postgres/config.ts';
import { checkRedisStoreConfig, type RedisStoreConfig } from '../redis/config.ts';
import type { GcResult, PeerStore, StoreOptions } from '../types.ts';
import type {
  BackendConfig,
  BackendDriver,
  CompositeConfig,
  PostgresDialectConfig,
  RedisTopologyConfig,
  StoreConfig,
} from './config.ts';

export interface OpenStoreOptions extends StoreOptions {
  /** Backend trouble the store recovers from on its own (lost connections, migrations retried). */
  onError?: (err: unknown, driver: BackendDriver) => void;
  /**
   * No gc-worker reaches this store (an embedded gateway's): a store held in
   * this process's memory removes expired peers itself, every quarter
   * lifetime (at least 30 s). Told each outcome.
   */
  sweep?: (result: GcResult | undefined, err?: unknown) => void;
  /** Composite only: how the durable download counts are kept (createCompositeStore). */
  composite?: Pick<CompositeStoreParts, 'onError' | 'maxPendingSwarms'>;
}

/** Every driver's store: peers, KV data, a ping; ask the guards for more. */
export type BackendStore = PeerStore & PingableDataStore;

export async function openStore(
  config: BackendConfig,
  options: OpenStoreOptions,
): Promise<BackendStore>;
export async function openStore(
  config: CompositeConfig,
  options: OpenStoreOptions,
): Promise<CompositeStore>;
export async function openStore(
  config: StoreConfig,
  options: OpenStoreOptions,
): Promise<BackendStore>;
export async function openStore(
  config: StoreConfig,
  options: OpenStoreOptions,
): Promise<BackendStore> {
  if (config.driver !== 'composite') return openBackend(config, options);
  const { peers, data } = await openBackends(config, options);
  const { createCompositeStore } = await import('../composite/index.ts');
  return createCompositeStore({
    peers,
    data,
    dataDriver: (config.data ?? config.peers).driver,
    // One backend named twice counts downloads once, in its own counters.
    downloadsApart: config.data !== undefined && config.data.driver !== config.peers.driver,
    ...options.composite,
  });
}

interface OpenedBackends {
  peers: BackendStore;
  /** The same object as `peers` when one backend holds both. */
  data: BackendStore;
  close(): Promise<void>;
}

/** Both sides of a composite, one backend opened once when both name the same driver. */
async function openBackends(
  config: CompositeConfig,
  options: OpenStoreOptions,
): Promise<OpenedBackends> {
  const peers = await openBackend(config.peers, options);
  const same = config.data === undefined || config.data.driver === config.peers.driver;
  let data = peers;
  if (!same && config.data !== undefined) {
    try {
      data = await openBackend(config.data, options);
    } catch (err) {
      await peers.close();
      throw err;
    }
  }
  return {
    peers,
    data,
    async close() {
      await Promise.allSettled([peers.close(), same ? undefined : data.close()]);
    },
  };
}

/**
 * Each resolves while its backend is down: operations fail with
 * STORE_ERR_UNAVAILABLE until it answers, and readiness reports it.
 */
async function openBackend(
  config: BackendConfig,
  options: OpenStoreOptions,
): Promise<BackendStore> {
  const { peerLifetimeSeconds } = options;
  const base = {
    peerLifetimeSeconds,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  };
  const onError = (err: unknown): void => options.onError?.(err, config.driver);
  switch (config.driver) {
    case 'memory': {
      const { createMemoryStore } = await import('../memory/index.ts');
      return createMemoryStore({
        ...base,
        ...(config.shards === undefined ? {} : { shards: config.shards }),
        ...(options.sweep === undefined
          ? {}
          : {
              sweepEveryMs: Math.max(30, Math.floor(peerLifetimeSeconds / 4)) * 1000,
              onSweep: options.sweep,
            }),
      });
    }
    case 'redis': {
      const { createRedisStore } = await import('../redis/store.ts');
      return createRedisStore(config.redis, { ...base, onError });
    }
    case 'postgres': {
      const { createPostgresStore } = await import('../postgres/store.ts');
      return createPostgresStore(config.postgres, { ...base, onError });
    }
  }
}

/** The lease lock kept on a backend (storage-api's /v1/leases, the gc-worker's election). */
export async function openLeaseLock(config: BackendConfig): Promise<LeaseLock> {
  switch (config.driver) {
    case 'memory': {
      const { createMemoryLeaseLock } = await import('../locks/memory.ts');
      return createMemoryLeaseLock();
    }
    case 'redis': {
      const { createRedisLeaseLock } = await import('../locks/redis.ts');
      return createRedisLeaseLock(config.redis);
    }
    case 'postgres': {
      const { createPostgresLeaseLock } = await import('../locks/postgres.ts');
      return createPostgresLeaseLock(config.postgres);
    }
  }
}

/** A service's validated settings: REDIS_* and PG_* / DATABASE_* under their environment names. */
export type StoreSettings = RedisStoreConfig & Readonly<Partial<PostgresStoreConfig>>;

/**
 * The typed config of `driver` from a service's flat settings. The settings
 * object is passed on whole, so a reload compares exactly what was loaded.
 */
export function backendConfig(driver: BackendDriver, settings: StoreSettings): BackendConfig {
  switch (driver) {
    case 'memory':
      return { driver };
    case 'redis':
      return { driver, redis: settings as RedisTopologyConfig };
    case 'postgres': {
      const url = settings.DATABASE_URL;
      if (url === undefined)
        throw new StoreError('STORE_ERR_CONFIG', 'DATABASE_URL is required by the postgres driver');
      return { driver, postgres: { ...settings, DATABASE_URL: url } as PostgresDialectConfig };
    }
  }
}

/**
 * The cross-field problems of `driver`'s settings (the schema checks each
 * field alone), for a service's config loader: a service names the driver
 * its config chose and never which checks that driver needs.
 */
export function checkStoreSettings(
  driver: BackendDriver,
  settings: StoreSettings,
): ConfigProblem[] {
  switch (driver) {
    case 'memory':
      return [];
    case 'redis':
      return checkRedisStoreConfig(settings);
    case 'postgres':
      return checkPostgresStoreConfig(settings);
  }
}
