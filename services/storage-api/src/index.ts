export { buildStorageApi } from './app.ts';
export type { StorageApi, StorageApiDeps } from './app.ts';
export { configSchema, loadStorageApiConfig } from './config.ts';
export type { StorageApiConfig } from './config.ts';
export { apiErrors, ApiError, isApiError } from './errors.ts';
export type { ApiErrorCode } from './errors.ts';
export { openStores } from './storage.ts';
export type { Stores } from './storage.ts';
