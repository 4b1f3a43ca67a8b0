// What storage-api's route plugins share (docs/storage-api.md "Endpoints"):
// the store, its metrics and the timed store call, handed to each plugin as
// its options by buildStorageApi.
import type { Logger } from 'pino';
import { isStoreError } from '@shoal/storage';
import type { CompositeStore } from '@shoal/storage/composite';
import type { LeaseLock } from '@shoal/storage/locks';
import type { ApiMetrics, Endpoint, Operation } from '../metrics.ts';
import { ApiError } from '../errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    endpoint?: Endpoint;
  }
}

export interface RouteContext {
  store: CompositeStore;
  locks: LeaseLock;
  metrics: ApiMetrics;
  log: Logger;
  peerDriver: string;
  dataDriver: string;
  /** Runs one store call, timing it and counting its failure under a bounded code. */
  timed: <T>(driver: string, operation: Operation, call: () => Promise<T>) => Promise<T>;
}

export function codeOf(err: unknown): string {
  return isStoreError(err) ? err.code : 'RPC_ERR_INTERNAL';
}

export function createTimed(metrics: ApiMetrics, log: Logger): RouteContext['timed'] {
  return async (driver, operation, call) => {
    const start = performance.now();
    try {
      return await call();
    } catch (err) {
      metrics.error(driver, operation, codeOf(err));
      if (!isStoreError(err)) log.error({ err, operation }, 'store call failed unexpectedly');
      throw err;
    } finally {
      metrics.observe(driver, operation, start);
    }
  };
}

export function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('RPC_ERR_BAD_BODY', 'body must be a JSON object');
  }
  return body as Record<string, unknown>;
}
