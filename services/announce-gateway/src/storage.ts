// The gateway's store from config: storage-api's client for the remote
// driver, otherwise @shoal/storage's openStore (docs/storage.md). What the
// store can do beyond PeerStore is asked through @shoal/storage's
// capability guards (hasSyncAnnounce, isDataStore, ...), never by name.
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import {
  attachSharedMemoryStore,
  backendConfig,
  createSharedMemoryStore,
  openStore,
  type BackendConfig,
  type GcResult,
  type PeerStore,
  type SharedMemoryHandle,
  type SharedMemoryStore,
} from '@shoal/storage';
import type { GatewayConfig } from './config.ts';
import { createRemoteStore } from './remote/store.ts';

/** A store the gateway can drive; its capabilities come with @shoal/storage's guards. */
export type GatewayStorage = PeerStore;

export interface StorageHandle {
  store: GatewayStorage;
  /** Stops background work (embedded garbage collection) and closes the store. */
  close(): Promise<void>;
}

/** The embedded store's config (openStore's, the doctor's); undefined for storage-api's client. */
export function embeddedStoreConfig(config: GatewayConfig): BackendConfig | undefined {
  return config.STORAGE_DRIVER === 'remote'
    ? undefined
    : backendConfig(config.STORAGE_DRIVER, config);
}

/** `registry` receives the remote client's metrics (contract §4); the embedded drivers publish none. */
export async function createStorage(
  config: GatewayConfig,
  logger: Logger,
  registry: Registry = new Registry(),
): Promise<StorageHandle> {
  const log = logger.child({ module: 'storage' });
  // Never connects at boot: storage-api may start after the gateway, and
  // until it answers announces get "retry later" and /readyz says so.
  const embedded = embeddedStoreConfig(config);
  const store =
    embedded === undefined
      ? createRemoteStore(config, { logger, registry })
      : await openStore(embedded, {
          peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS,
          onError: (err, driver) => log.warn({ err }, `${driver} connection error`),
          // No gc-worker reaches an embedded store: an in-memory one sweeps itself.
          sweep: sweepLog(log),
        });
  return { store, close: () => store.close() };
}

function sweepLog(log: Logger): (r: GcResult | undefined, err?: unknown) => void {
  return (r, err) => {
    if (err !== undefined) log.error({ err }, 'garbage collection failed');
    else if (r !== undefined && (r.peersRemoved > 0 || r.swarmsRemoved > 0))
      log.debug(r, 'expired peers removed');
  };
}

/**
 * The memory store of a gateway with workers (docs/workers.md "Stores"): one
 * shared-memory store, made by the main thread, which alone sweeps it (as
 * openStore sweeps the memory driver: every quarter lifetime, at least 30 s).
 * Throws STORE_ERR_CONFIG for options it refuses.
 */
export function createSharedStorage(
  config: GatewayConfig,
  logger: Logger,
): StorageHandle & { store: SharedMemoryStore; handle: SharedMemoryHandle } {
  const { handle, store } = createSharedMemoryStore({
    peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS,
    maxMemoryBytes: config.SHARED_MEMORY_MAX_BYTES,
    peerIds: config.SHARED_MEMORY_PEER_IDS,
    // Each worker, and each replacement of one, attaches once over the store's life.
    maxOwners: SHARED_MEMORY_MAX_ATTACHMENTS,
    sweepEveryMs: Math.max(30, Math.floor(config.PEER_LIFETIME_SECONDS / 4)) * 1000,
    onSweep: sweepLog(logger.child({ module: 'storage' })),
  });
  return { handle, store, close: () => store.close() };
}

/** Attachments a shared-memory store allows over its life: 65536 worker starts (owner table: 512 KiB). */
export const SHARED_MEMORY_MAX_ATTACHMENTS = 65_536;

/** A worker's attachment to the main thread's shared-memory store; it never sweeps. */
export function attachSharedStorage(
  handle: SharedMemoryHandle,
  config: GatewayConfig,
): StorageHandle {
  const store = attachSharedMemoryStore(handle, {
    peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS,
  });
  return { store, close: () => store.close() };
}
