// The gc-worker's calls to storage-api (POST /v1/gc and the lease routes)
// through the one storage-api client (docs/storage-api.md "The client"),
// its errors turned into the gc-worker's GC_ERR_* codes here, at the edge.
import {
  StorageApiClient as ApiClient,
  isStorageApiClientError,
} from '@shoal/storage-api-contract/client';
import { GcError, type GcErrorCode } from './errors.ts';

export interface StorageApiClientOptions {
  /** http://host:port of storage-api's API port. */
  url: string;
  token: string;
  timeoutMs: number;
  /** Sent as x-shoal-client so storage-api's logs tell which worker collected. */
  clientId?: string;
}

export interface GcRunResult {
  peersRemoved: number;
  swarmsRemoved: number;
}

export interface LeaseAnswer {
  held: boolean;
  holder: string | null;
  expiresAt: number | null;
}

export interface StorageApiClient {
  collectGarbage(signal?: AbortSignal): Promise<GcRunResult>;
  acquireLease(
    name: string,
    holder: string,
    ttlMs: number,
    signal?: AbortSignal,
  ): Promise<LeaseAnswer>;
  releaseLease(name: string, holder: string, signal?: AbortSignal): Promise<boolean>;
  close(): Promise<void>;
}

const GC_CODES = {
  API_CLIENT_ERR_UNREACHABLE: 'GC_ERR_UNREACHABLE',
  API_CLIENT_ERR_TIMEOUT: 'GC_ERR_TIMEOUT',
  API_CLIENT_ERR_REFUSED: 'GC_ERR_HTTP',
  API_CLIENT_ERR_BAD_ANSWER: 'GC_ERR_BAD_RESPONSE',
} as const satisfies Record<string, GcErrorCode>;

async function coded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!isStorageApiClientError(err)) throw err;
    const remoteCode = err.body?.code;
    throw new GcError(GC_CODES[err.code], err.message, {
      cause: err,
      ...(err.status === undefined ? {} : { status: err.status }),
      ...(remoteCode === undefined ? {} : { remoteCode }),
    });
  }
}

export function createStorageApiClient(options: StorageApiClientOptions): StorageApiClient {
  const api = new ApiClient({
    url: options.url,
    token: options.token,
    timeoutMs: options.timeoutMs,
    ...(options.clientId === undefined ? {} : { headers: { 'x-shoal-client': options.clientId } }),
  });
  return {
    async collectGarbage(signal) {
      const { peersRemoved, swarmsRemoved } = await coded(() => api.collectGarbage(signal));
      return { peersRemoved, swarmsRemoved };
    },
    acquireLease: (name, holder, ttlMs, signal) =>
      coded(() => api.acquireLease(name, holder, ttlMs, signal)),
    releaseLease: (name, holder, signal) => coded(() => api.releaseLease(name, holder, signal)),
    close: () => api.close(),
  };
}
