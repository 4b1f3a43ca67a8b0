// The public contract of @shoal/storage. Drivers are subpath exports
// (`@shoal/storage/memory`, `/redis`, `/postgres`) so that importing the
// contract never loads a database client.
export type * from './types.ts';
export * from './errors.ts';
export type * from './capabilities.ts';
export {
  hasRateCounters,
  hasSyncAnnounce,
  hasSyncScrape,
  hasTopSwarms,
  isDataStore,
  isDownloadCounter,
  isPingable,
  isReconfigurable,
  isServiceClient,
  takesDownloadReceipts,
} from './capabilities.ts';
export {
  FULL_SCRAPE_MAX,
  fullScrapeOf,
  hasFullScrape,
  validateFullScrapeLimit,
} from './full-scrape.ts';
export type { FullScrape, FullScrapeEntry, FullScrapeResult } from './full-scrape.ts';
// A client of a storage service refuses what every driver would, before the round trip.
export { validateRateCounts } from './validate.ts';
// The shared-memory store loads no client library, so the contract carries it
// (docs/storage.md "Shared-memory store"): a gateway hands its handle to worker threads.
export { attachSharedMemoryStore, createSharedMemoryStore } from './shared-memory/index.ts';
export type {
  SharedMemoryAttachOptions,
  SharedMemoryHandle,
  SharedMemoryStore,
  SharedMemoryStoreOptions,
  SharedMemoryThreadOptions,
} from './shared-memory/index.ts';
export type * from './open/config.ts';
export { backendConfig, checkStoreSettings, openLeaseLock, openStore } from './open/index.ts';
export type { BackendStore, OpenStoreOptions, StoreSettings } from './open/index.ts';
