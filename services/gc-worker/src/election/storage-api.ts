// Election through storage-api's /v1/leases/:name: the Redis or PostgreSQL
// lock lives behind storage-api, so the worker holds no database credentials
// (docs/decisions.md "Tracker semantics"). The lease's TTL is LEASE_DURATION_SECONDS.
import type { Logger } from 'pino';
import type { StorageApiClient } from '../storage-api-client.ts';
import { createLeaseElector } from './loop.ts';
import type { ElectionTiming, LeaderElector, LeaseBackend } from './types.ts';

export interface StorageApiLeaseElectorOptions {
  client: StorageApiClient;
  leaseName: string;
  identity: string;
  timing: ElectionTiming;
  logger: Logger;
  clock?: () => number;
}

export function createStorageApiLeaseBackend(
  client: StorageApiClient,
  leaseName: string,
  identity: string,
  leaseDurationMs: number,
): LeaseBackend {
  const ttlMs = Math.max(1, Math.round(leaseDurationMs));
  return {
    async tryAcquireOrRenew(signal) {
      return (await client.acquireLease(leaseName, identity, ttlMs, signal)).held;
    },
    async release(signal) {
      await client.releaseLease(leaseName, identity, signal);
    },
  };
}

export function createStorageApiLeaseElector(
  options: StorageApiLeaseElectorOptions,
): LeaderElector {
  return createLeaseElector({
    mode: 'storage-api',
    identity: options.identity,
    backend: createStorageApiLeaseBackend(
      options.client,
      options.leaseName,
      options.identity,
      options.timing.leaseDurationMs,
    ),
    timing: options.timing,
    logger: options.logger,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
}
