// The Redis driver against a 3-master Redis Cluster created by the harness
// (redis-server --cluster-enabled yes + redis-cli --cluster create).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type RedisCluster } from '@shoal/testing/redis';
import {
  announceOf,
  describeDataStoreConformance,
  describePeerStoreConformance,
  infoHashOf,
} from '../../test/conformance.ts';
import { createRedisStore, redisStoreConfig } from './index.ts';

let cluster: RedisCluster;
let n = 0;
beforeAll(async () => {
  cluster = await startCluster({ masters: 3 });
});
afterAll(async () => {
  await cluster.close();
});

function config() {
  return redisStoreConfig({
    // The conformance suite asks for peer_ids (non-compact answers); the default keeps none.
    REDIS_STORE_PEER_IDS: true,
    REDIS_MODE: 'cluster',
    REDIS_ADDRESSES: cluster.addresses.map((a) => `${a.host}:${a.port}`),
    REDIS_PASSWORD: cluster.password,
    REDIS_KEY_PREFIX: `cluster-${++n}:`,
  });
}

// The conformance suite checks answers, not latency: its 500 non-compact announces
// to one swarm can take over the default 1 s on a loaded 2-core machine (seen once
// in a full run). Command timeouts have tests of their own.
const conformanceConfig = () => ({ ...config(), REDIS_COMMAND_TIMEOUT_MS: 10_000 });

describePeerStoreConformance('redis cluster', (o) => createRedisStore(conformanceConfig(), o));
describeDataStoreConformance('redis cluster', () =>
  createRedisStore(config(), { peerLifetimeSeconds: 60 }),
);

describe('redis cluster: placement', () => {
  it('swarms spread over every master, and stats and garbage collection see all of them', async () => {
    const prefix = `cluster-${n + 1}:`;
    const store = await createRedisStore(config(), { peerLifetimeSeconds: 60 });
    try {
      for (let s = 1; s <= 30; s++) await store.announce(announceOf({ swarm: s, peer: s }));
      const perNode = await Promise.all(
        cluster.nodes.map(async (node) =>
          Number(await node.cli('EVAL', `return #redis.call('KEYS', ARGV[1])`, '0', `${prefix}*`)),
        ),
      );
      for (const count of perNode) expect(count).toBeGreaterThan(0);
      expect(perNode.reduce((a, b) => a + b, 0)).toBe(60); // :p4 and :i per swarm
      expect(await store.stats()).toEqual({
        torrents: 30,
        seeders: { v4: 0, v6: 0 },
        leechers: { v4: 30, v6: 0 },
      });
      expect(await store.scrape([infoHashOf(1), infoHashOf(30)])).toEqual([
        { seeders: 0, leechers: 1, downloaded: 0, partialSeeds: 0 },
        { seeders: 0, leechers: 1, downloaded: 0, partialSeeds: 0 },
      ]);
    } finally {
      await store.close();
    }
  });
});
