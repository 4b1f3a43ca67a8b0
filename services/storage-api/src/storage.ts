// Where storage-api opens its backends from config: peers (PEER_STORE_DRIVER)
// and the durable data (DATA_STORE_DRIVER: KV, download counts) as one
// composite store through @shoal/storage's openStore, and the lease lock on
// the durable backend (docs/storage.md "Opening a store"). One backend named
// twice is opened once, so "all in one" costs one set of connections.
import type { Logger } from 'pino';
import { backendConfig, openLeaseLock, openStore, type CompositeConfig } from '@shoal/storage';
import type { CompositeStore, CompositeStoreParts } from '@shoal/storage/composite';
import type { LeaseLock } from '@shoal/storage/locks';
import type { StorageApiConfig } from './config.ts';

export interface Stores {
  store: CompositeStore;
  locks: LeaseLock;
  close(): Promise<void>;
}

/** The composite config of storage-api's two backends (openStore's, the doctor's). */
export function storeConfig(config: StorageApiConfig): CompositeConfig {
  return {
    driver: 'composite',
    peers: backendConfig(config.PEER_STORE_DRIVER, config),
    data: backendConfig(config.DATA_STORE_DRIVER, config),
  };
}

/** Opens the stores; `onDownloadsError` hears of download-counter writes and reads that failed (the app's metrics). */
export async function openStores(
  config: StorageApiConfig,
  logger: Logger,
  onDownloadsError?: CompositeStoreParts['onError'],
): Promise<Stores> {
  const log = logger.child({ module: 'storage' });
  const composite = storeConfig(config);
  // It resolves while a backend is down: operations fail with
  // STORE_ERR_UNAVAILABLE until it answers, and /readyz reports it.
  const store = await openStore(composite, {
    peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS,
    onError: (err, driver) => log.warn({ err }, `${driver} connection error`),
    ...(onDownloadsError === undefined ? {} : { composite: { onError: onDownloadsError } }),
  });
  let locks: LeaseLock;
  try {
    locks = await openLeaseLock(composite.data ?? composite.peers);
  } catch (err) {
    await store.close();
    throw err;
  }
  return {
    store,
    locks,
    async close() {
      await Promise.allSettled([locks.close(), store.close()]);
    },
  };
}
