// @shoal/storage/redis: the Redis driver (standalone, Sentinel, Cluster, ring).
export {
  RedisStoreConfigSchema,
  redisStoreConfig,
  checkRedisStoreConfig,
  parseAddress,
  parseShard,
} from './config.ts';
export type { RedisStoreConfig, ShardSpec, HostPort } from './config.ts';
export { createRedisStore } from './store.ts';
export type { RedisStore, RedisStoreOptions } from './store.ts';
export type { ErrorSink } from './connection.ts';
export { shardWeight, ownerIndex } from './ring.ts';
