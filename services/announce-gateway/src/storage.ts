// The one place the gateway's store is constructed from config, so the
// 'redis' and 'postgres' drivers (and the remote storage-api client) are
// added here as branches and nowhere else (docs/decisions.md "Services").
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { AnnounceResult, PeerAnnounce, PeerStore } from '@shoal/storage';
import { createMemoryStore } from '@shoal/storage/memory';
import { createRedisStore, type RedisStoreConfig } from '@shoal/storage/redis';
import { createPostgresStore } from '@shoal/storage/postgres';
import type { GatewayConfig } from './config.ts';
import { createRemoteStore } from './remote/store.ts';

/**
 * A store the gateway can drive. Embedded drivers may also answer without a
 * Promise; the UDP and HTTP paths use that when it is there.
 */
export interface GatewayStorage extends PeerStore {
  announceSync?: (a: PeerAnnounce) => AnnounceResult;
}

export interface StorageHandle {
  store: GatewayStorage;
  /** Stops background work (embedded garbage collection) and closes the store. */
  close(): Promise<void>;
}

/** `registry` receives the remote client's metrics (contract §4); the embedded drivers publish none. */
export async function createStorage(
  config: GatewayConfig,
  logger: Logger,
  registry: Registry = new Registry(),
): Promise<StorageHandle> {
  const log = logger.child({ module: 'storage' });
  switch (config.STORAGE_DRIVER) {
    case 'memory': {
      const store = createMemoryStore({ peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS });
      // No gc-worker reaches an embedded store: sweep it here so idle swarms free their memory.
      const everyMs = Math.max(30, Math.floor(config.PEER_LIFETIME_SECONDS / 4)) * 1000;
      let sweeping = false;
      const timer = setInterval(() => {
        if (sweeping) return;
        sweeping = true;
        store.collectGarbage().then(
          (r) => {
            sweeping = false;
            if (r.peersRemoved > 0 || r.swarmsRemoved > 0) log.debug(r, 'expired peers removed');
          },
          (err: unknown) => {
            sweeping = false;
            log.error({ err }, 'garbage collection failed');
          },
        );
      }, everyMs);
      timer.unref();
      return {
        store,
        close: async () => {
          clearInterval(timer);
          await store.close();
        },
      };
    }
    case 'redis': {
      // Resolves even while Redis is down: announces get STORE_ERR_UNAVAILABLE
      // until it answers, and /readyz reports it.
      const redisConfig: RedisStoreConfig = config;
      const store = await createRedisStore(redisConfig, {
        peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS,
        onError: (err: unknown) => log.warn({ err }, 'redis connection error'),
      });
      return { store, close: () => store.close() };
    }
    case 'postgres': {
      // Resolves while the database is down (migrations retried in the
      // background); announces get STORE_ERR_UNAVAILABLE meanwhile.
      const store = await createPostgresStore(
        { ...config, DATABASE_URL: config.DATABASE_URL ?? '' },
        {
          peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS,
          onError: (err: unknown) => log.warn({ err }, 'postgres error'),
        },
      );
      return { store, close: () => store.close() };
    }
    case 'remote': {
      // Never connects at boot: storage-api may start after the gateway, and
      // until it answers announces get "retry later" and /readyz says so.
      const store = createRemoteStore(config, { logger, registry });
      return { store, close: () => store.close() };
    }
  }
}
