// @shoal/storage/redis: the Redis driver (standalone, Sentinel, Cluster, ring).
export {
  RedisStoreConfigSchema,
  redisStoreConfig,
  checkRedisStoreConfig,
  parseAddress,
  parseShard,
  type RedisStoreConfig,
  type ShardSpec,
  type HostPort,
} from './config.ts';
export { createRedisStore, type RedisStore, type RedisStoreOptions } from './store.ts';
export {
  openRedisClients,
  type Client as RedisClient,
  type ErrorSink,
  type RedisBackendClient,
} from './connection.ts';
export { shardWeight, ownerIndex } from './ring.ts';
