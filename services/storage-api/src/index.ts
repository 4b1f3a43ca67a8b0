export { buildStorageApi } from './app.ts';
export type { StorageApi, StorageApiDeps } from './app.ts';
export { configSchema, loadStorageApiConfig } from './config.ts';
export type { StorageApiConfig } from './config.ts';
