// The storage conformance suite against the gateway's remote store
// (STORAGE_DRIVER=remote) -> a real storage-api on loopback -> Redis started
// by @shoal/testing: standalone keeping no peer ids (REDIS_STORE_PEER_IDS'
// default, the configuration whose compact=0 answers once failed whole
// batches) and keeping them, then sentinel, cluster and ring.
import { afterAll, beforeAll, describe } from 'vitest';
import { describePeerStoreConformance } from '@shoal/storage/conformance';
import { createRedisStore, redisStoreConfig } from '@shoal/storage/redis';
import {
  startCluster,
  startRedis,
  startRing,
  startSentinelSet,
  type RedisCluster,
  type RedisRing,
  type RedisServer,
  type SentinelSet,
} from '@shoal/testing/redis';
import { remoteStoreFactory } from './harness/remote-store.ts';

type RedisInput = Parameters<typeof redisStoreConfig>[0];
const SPLIT = { downloadCounter: false } as const;
let n = 0;

function redisRemote(config: () => RedisInput) {
  return remoteStoreFactory({
    driver: 'redis',
    // A fresh key prefix per store is an empty store without flushing the server.
    backend: (o) =>
      createRedisStore(
        redisStoreConfig({
          ...config(),
          REDIS_KEY_PREFIX: `remote-${++n}:`,
          // The suite checks answers, not deadlines: its 500 concurrent
          // non-compact announces to one swarm can outlast the 1 s default on
          // a loaded machine (the timeouts have tests of their own).
          REDIS_COMMAND_TIMEOUT_MS: 10_000,
        }),
        o,
      ),
  });
}

describe('remote store on Redis standalone', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.close();
  });
  const standalone = (): RedisInput => ({
    REDIS_ADDRESSES: [server.address],
    REDIS_PASSWORD: server.password,
  });

  describePeerStoreConformance(
    'remote -> storage-api -> redis standalone (REDIS_STORE_PEER_IDS=false, the default)',
    redisRemote(standalone),
    { ...SPLIT, keepsPeerIds: false },
  );
  describePeerStoreConformance(
    'remote -> storage-api -> redis standalone (REDIS_STORE_PEER_IDS=true)',
    redisRemote(() => ({ ...standalone(), REDIS_STORE_PEER_IDS: true })),
    SPLIT,
  );
});

describe('remote store on Redis sentinel, cluster and ring', () => {
  let set: SentinelSet;
  let cluster: RedisCluster;
  let ring: RedisRing;
  beforeAll(async () => {
    [set, cluster, ring] = await Promise.all([
      startSentinelSet({ replicas: 1, sentinels: 1 }),
      startCluster({ masters: 3 }),
      startRing(3),
    ]);
  });
  afterAll(async () => {
    await Promise.all([set?.close(), cluster?.close(), ring?.close()]);
  });

  describePeerStoreConformance(
    'remote -> storage-api -> redis sentinel',
    redisRemote(() => ({
      REDIS_MODE: 'sentinel',
      REDIS_SENTINELS: set.sentinelAddresses.map((a) => `${a.host}:${a.port}`),
      REDIS_MASTER_NAME: set.masterName,
      REDIS_SENTINEL_PASSWORD: set.sentinelPassword,
      REDIS_PASSWORD: set.password,
    })),
    { ...SPLIT, keepsPeerIds: false },
  );
  describePeerStoreConformance(
    'remote -> storage-api -> redis cluster',
    redisRemote(() => ({
      REDIS_MODE: 'cluster',
      REDIS_ADDRESSES: cluster.addresses.map((a) => `${a.host}:${a.port}`),
      REDIS_PASSWORD: cluster.password,
    })),
    { ...SPLIT, keepsPeerIds: false },
  );
  describePeerStoreConformance(
    'remote -> storage-api -> redis ring',
    redisRemote(() => ({
      REDIS_MODE: 'ring',
      REDIS_RING_SHARDS: ring.shards.map((s, i) => `s${i}=${s.address}`),
      REDIS_PASSWORD: ring.shards[0]!.password,
    })),
    { ...SPLIT, keepsPeerIds: false },
  );
});
