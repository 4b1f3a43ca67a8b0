// @shoal/storage/locks: named leases with one holder at a time,
// backing storage-api's /v1/leases/:name and the gc-worker's election.
export type { LeaseLock, LeaseState } from './types.ts';
export { createMemoryLeaseLock } from './memory.ts';
export { createRedisLeaseLock } from './redis.ts';
export type { RedisLeaseLockOptions } from './redis.ts';
export { createPostgresLeaseLock, LEASES_DDL } from './postgres.ts';
