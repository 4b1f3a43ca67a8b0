// The one place storage-api opens its drivers from config: the peer backend
// (PEER_STORE_DRIVER), the durable backend (DATA_STORE_DRIVER: KV, leases),
// and the lease lock on the durable backend. One backend named twice is
// opened once, so "all in one" costs one set of connections.
import type { Logger } from 'pino';
import type { PeerStore } from '@shoal/storage';
import type { PingableDataStore } from '@shoal/storage/composite';
import {
  createMemoryLeaseLock,
  createPostgresLeaseLock,
  createRedisLeaseLock,
  type LeaseLock,
} from '@shoal/storage/locks';
import { createMemoryStore } from '@shoal/storage/memory';
import { createPostgresStore } from '@shoal/storage/postgres';
import { createRedisStore, type RedisStoreConfig } from '@shoal/storage/redis';
import type { StorageApiConfig } from './config.ts';

type Driver = StorageApiConfig['PEER_STORE_DRIVER'];

export interface Stores {
  peers: PeerStore;
  /** The same object as `peers` when both drivers are the same. */
  data: PingableDataStore;
  locks: LeaseLock;
  close(): Promise<void>;
}

export async function openStores(config: StorageApiConfig, logger: Logger): Promise<Stores> {
  const log = logger.child({ module: 'storage' });
  const opened = new Map<Driver, PeerStore & PingableDataStore>();
  // Each resolves while its backend is down: operations fail with
  // STORE_ERR_UNAVAILABLE until it answers, and /readyz reports it.
  const open = async (driver: Driver): Promise<PeerStore & PingableDataStore> => {
    const existing = opened.get(driver);
    if (existing !== undefined) return existing;
    let store: PeerStore & PingableDataStore;
    switch (driver) {
      case 'memory':
        store = createMemoryStore({ peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS });
        break;
      case 'redis': {
        const redisConfig: RedisStoreConfig = config;
        store = await createRedisStore(redisConfig, {
          peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS,
          onError: (err: unknown) => log.warn({ err }, 'redis connection error'),
        });
        break;
      }
      case 'postgres':
        store = await createPostgresStore(
          { ...config, DATABASE_URL: config.DATABASE_URL ?? '' },
          {
            peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS,
            onError: (err: unknown) => log.warn({ err }, 'postgres error'),
          },
        );
        break;
    }
    opened.set(driver, store);
    return store;
  };
  const peers = await open(config.PEER_STORE_DRIVER);
  const data = await open(config.DATA_STORE_DRIVER);
  let locks: LeaseLock;
  switch (config.DATA_STORE_DRIVER) {
    case 'memory':
      locks = createMemoryLeaseLock();
      break;
    case 'redis':
      locks = await createRedisLeaseLock(config);
      break;
    case 'postgres':
      locks = await createPostgresLeaseLock({ ...config, DATABASE_URL: config.DATABASE_URL ?? '' });
      break;
  }
  return {
    peers,
    data,
    locks,
    async close() {
      await Promise.allSettled([locks.close(), ...[...opened.values()].map((s) => s.close())]);
    },
  };
}
