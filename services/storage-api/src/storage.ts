// Where storage-api opens its backends from config: the peer backend
// (PEER_STORE_DRIVER), the durable backend (DATA_STORE_DRIVER: KV, leases)
// and the lease lock on the durable backend, all through @shoal/storage's
// openStore family (docs/storage.md). One backend named twice is opened
// once, so "all in one" costs one set of connections.
import type { Logger } from 'pino';
import {
  backendConfig,
  openBackends,
  openLeaseLock,
  type BackendStore,
  type CompositeConfig,
} from '@shoal/storage';
import type { LeaseLock } from '@shoal/storage/locks';
import type { StorageApiConfig } from './config.ts';

export interface Stores {
  peers: BackendStore;
  /** The same object as `peers` when both drivers are the same. */
  data: BackendStore;
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

export async function openStores(config: StorageApiConfig, logger: Logger): Promise<Stores> {
  const log = logger.child({ module: 'storage' });
  const composite = storeConfig(config);
  // Each resolves while its backend is down: operations fail with
  // STORE_ERR_UNAVAILABLE until it answers, and /readyz reports it.
  const backends = await openBackends(composite, {
    peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS,
    onError: (err, driver) => log.warn({ err }, `${driver} connection error`),
  });
  let locks: LeaseLock;
  try {
    locks = await openLeaseLock(composite.data ?? composite.peers);
  } catch (err) {
    await backends.close();
    throw err;
  }
  return {
    peers: backends.peers,
    data: backends.data,
    locks,
    async close() {
      await Promise.allSettled([locks.close(), backends.close()]);
    },
  };
}
