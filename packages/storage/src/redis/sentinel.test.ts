// The Redis driver against a Sentinel set (1 primary, 2 replicas, 3
// sentinels) started from deploy/redis/*.conf: the conformance suite, then
// the failover drill of docs/redis.md at the driver level.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectRecovered,
  killPrimaryUnderLoad,
  sentinelRecoveryBoundMs,
} from '@shoal/testing/sentinel-drill';
import { startSentinelSet, type SentinelSet } from '@shoal/testing/redis';
import {
  announceOf,
  decodePeers,
  describeDataStoreConformance,
  describePeerStoreConformance,
  infoHashOf,
} from '../../test/conformance.ts';
import { createRedisStore, redisStoreConfig } from './index.ts';

let set: SentinelSet;
let n = 0;
beforeAll(async () => {
  set = await startSentinelSet({ replicas: 2, sentinels: 3 });
});
afterAll(async () => {
  await set.close();
});

function config(extra: Parameters<typeof redisStoreConfig>[0] = {}) {
  return redisStoreConfig({
    // The conformance suite asks for peer_ids (non-compact answers); the default keeps none.
    REDIS_STORE_PEER_IDS: true,
    REDIS_MODE: 'sentinel',
    REDIS_SENTINELS: set.sentinelAddresses.map((a) => `${a.host}:${a.port}`),
    REDIS_MASTER_NAME: set.masterName,
    REDIS_SENTINEL_PASSWORD: set.sentinelPassword,
    REDIS_PASSWORD: set.password,
    REDIS_KEY_PREFIX: `sentinel-${++n}:`,
    ...extra,
  });
}

// The conformance suite checks answers, not latency: its 500 non-compact announces
// to one swarm can take over the default 1 s on a loaded 2-core machine (seen once
// in a full run). Command timeouts have tests of their own.
const conformanceConfig = () => ({ ...config(), REDIS_COMMAND_TIMEOUT_MS: 10_000 });

describePeerStoreConformance('redis sentinel', (o) => createRedisStore(conformanceConfig(), o));
describeDataStoreConformance('redis sentinel', () =>
  createRedisStore(config(), { peerLifetimeSeconds: 60 }),
);

describe('redis sentinel: failover', () => {
  it('killing the primary under load: announces resume within the failover time plus a few seconds, replicated peers are still served', async () => {
    const store = await createRedisStore(config(), { peerLifetimeSeconds: 1860 });
    try {
      // Peers written (and replicated) before the failover.
      for (let p = 1; p <= 20; p++)
        await store.announce(
          announceOf({
            swarm: 1,
            peer: p,
            seeder: p <= 5,
            event: p <= 5 ? 'completed' : 'started',
          }),
        );
      await store.put('passkeys', 'alice', 'secret');
      const primary = await set.primary();
      expect(Number(await primary.cli('WAIT', '2', '2000'))).toBe(2);

      const report = await killPrimaryUnderLoad(
        set,
        (i) => store.announce(announceOf({ swarm: 2 + (i % 20), peer: 1000 + (i % 400) })),
        'driver level',
      );
      // down-after-milliseconds is 1000 in the harness; election and promotion
      // take ~1-2 s more, and the other sentinels' switch up to 2 s after that
      // (~3.5 s unloaded). Under load an election can fail and be retried.
      expectRecovered(report, {
        recoveredWithinMs: sentinelRecoveryBoundMs(set),
        maxLatencyMs: 3000,
      });
      expect(report.ok).toBeGreaterThan(0);

      const r = await store.announce(announceOf({ swarm: 1, peer: 999, numWant: 50 }));
      expect(r).toMatchObject({ seeders: 5, leechers: 16, downloaded: 5 });
      expect(decodePeers(r.peers, 4)).toHaveLength(20);
      expect(await store.get('passkeys', 'alice')).toBe('secret');
      expect(await store.scrape([infoHashOf(1)])).toEqual([
        { seeders: 5, leechers: 16, downloaded: 5, partialSeeds: 0 },
      ]);
    } finally {
      await store.close();
    }
  }, 240_000);

  it('the old primary rejoins as a replica of the new one', async () => {
    const old = set.servers.find((s) => !s.running);
    expect(old).toBeDefined();
    await old!.start();
    await expect
      .poll(async () => /role:slave/.test(await old!.cli('INFO', 'replication')), {
        timeout: 15_000,
        interval: 200,
      })
      .toBe(true);
  }, 30_000);
});
