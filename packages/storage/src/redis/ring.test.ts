// The Redis driver over a client-side ring of three independent shards:
// the conformance suite, a dead shard losing only its own swarms, and a
// runtime shard change moving only the swarms of the shards that changed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, startRing, type RedisRing } from '@shoal/testing/redis';
import {
  announceOf,
  describeDataStoreConformance,
  describePeerStoreConformance,
  infoHashOf,
} from '../../test/conformance.ts';
import { isStoreError } from '../errors.ts';
import { RECONNECT_MAX_DELAY_MS } from './connection.ts';
import { createRedisStore, ownerIndex, redisStoreConfig, type RedisStore } from './index.ts';

let ring: RedisRing;
let n = 0;
beforeAll(async () => {
  ring = await startRing(3);
});
afterAll(async () => {
  await ring.close();
});

const NAMES = ['a', 'b', 'c'];
function shards(): string[] {
  return ring.shards.map((s, i) => `${NAMES[i]}=${s.address}`);
}
function config(list = shards(), prefix = `ring-${++n}:`) {
  return redisStoreConfig({
    // The conformance suite asks for peer_ids (non-compact answers); the default keeps none.
    REDIS_STORE_PEER_IDS: true,
    REDIS_MODE: 'ring',
    REDIS_RING_SHARDS: list,
    REDIS_PASSWORD: ring.shards[0]!.password,
    REDIS_KEY_PREFIX: prefix,
    REDIS_CONNECT_TIMEOUT_MS: 500,
  });
}

// The conformance suite checks answers, not latency: its 500 non-compact announces
// to one swarm can take over the default 1 s on a loaded 2-core machine (seen once
// in a full run). Command timeouts have tests of their own.
const conformanceConfig = () => ({ ...config(), REDIS_COMMAND_TIMEOUT_MS: 10_000 });

describePeerStoreConformance('redis ring', (o) => createRedisStore(conformanceConfig(), o));
describeDataStoreConformance('redis ring', () =>
  createRedisStore(config(), { peerLifetimeSeconds: 60 }),
);

async function outcome(store: RedisStore, swarm: number): Promise<string> {
  return store.announce(announceOf({ swarm, peer: 1 })).then(
    () => 'ok',
    (e: unknown) => (isStoreError(e) ? e.code : 'uncoded'),
  );
}

describe('redis ring: shards', () => {
  it('placement is stable, spread over every shard, and the same in every process', async () => {
    const store = await createRedisStore(config(), { peerLifetimeSeconds: 60 });
    try {
      const owners = Array.from({ length: 300 }, (_, i) => store.shardOf(infoHashOf(i)));
      for (const name of NAMES) expect(owners.filter((o) => o === name).length).toBeGreaterThan(60);
      // The rule is a pure function of (shard names, infohash): any replica agrees.
      owners.forEach((o, i) => expect(o).toBe(NAMES[ownerIndex(NAMES, infoHashOf(i))]));
    } finally {
      await store.close();
    }
  });

  it('one shard down: swarms on the other two keep working, its own swarms fail fast, and every connection serves again when it is back', async () => {
    const connections = 4;
    const commandTimeoutMs = 4000;
    let refusedOnB = 0;
    const store = await createRedisStore(
      {
        ...config(),
        REDIS_CONNECTIONS_PER_NODE: connections,
        REDIS_COMMAND_TIMEOUT_MS: commandTimeoutMs,
        // Tells this store's connections apart in CLIENT LIST (the others use db 0).
        REDIS_DB: 1,
      },
      {
        peerLifetimeSeconds: 60,
        onError: (_err, backend) => {
          if (backend === 'b') refusedOnB++;
        },
      },
    );
    const victim = ring.shards[1]!;
    try {
      const swarms = Array.from({ length: 60 }, (_, i) => i + 1);
      const onB = swarms.filter((s) => store.shardOf(infoHashOf(s)) === 'b');
      for (const s of swarms) expect(await outcome(store, s)).toBe('ok');
      await victim.kill();
      for (const s of swarms) {
        const started = performance.now();
        const got = await outcome(store, s);
        expect(got).toBe(onB.includes(s) ? 'STORE_ERR_UNAVAILABLE' : 'ok');
        // Fails fast: rejected at once, not after the command timeout (which
        // would be STORE_ERR_TIMEOUT). Half the timeout leaves the margin 2
        // shared cores need; the typical time is under a millisecond.
        expect(performance.now() - started).toBeLessThan(commandTimeoutMs / 2);
      }
      // Still ready: the other shards serve their swarms.
      await expect(store.ping()).resolves.toBeUndefined();
      // Down long enough for every connection's back-off to reach its cap
      // (50 + 100 + ... + 500 ms: 10 refused attempts each, ~2.75 s).
      await expect
        .poll(() => refusedOnB, { timeout: 15_000, interval: 100 })
        .toBeGreaterThanOrEqual(connections * 11);
      await victim.start();
      const back = performance.now();
      // Every connection is back within one capped back-off plus a handshake;
      // the margin is for 2 shared cores. Polled beside the announces below,
      // so their time does not count against it.
      const bound = RECONNECT_MAX_DELAY_MS + 2000;
      const allBack = expect
        .poll(
          async () =>
            (await victim.cli('CLIENT', 'LIST'))
              .split('\n')
              .filter((line) => / name=shoal .* db=1 /.test(line)).length,
          { timeout: bound, interval: 20 },
        )
        .toBe(connections)
        .then(() => performance.now() - back);
      allBack.catch(() => undefined);
      await expect.poll(() => outcome(store, onB[0]!), { timeout: bound, interval: 20 }).toBe('ok');
      // From the first answered announce on, the shard answers every one: no
      // call lands on a connection still waiting out its back-off.
      for (let round = 0; round < connections; round++)
        for (const s of onB) expect(await outcome(store, s)).toBe('ok');
      expect(await allBack).toBeLessThan(bound);
      for (let round = 0; round < connections; round++)
        for (const s of swarms) expect(await outcome(store, s)).toBe('ok');
    } finally {
      await victim.start();
      await store.close();
    }
  }, 30_000);

  it('adding and removing a shard at run time moves only the swarms of the changed shard, download counts included', async () => {
    const extra = await startRedis();
    const prefix = `ring-reconf-${++n}:`;
    const store = await createRedisStore(config(shards(), prefix), { peerLifetimeSeconds: 60 });
    try {
      const swarms = Array.from({ length: 120 }, (_, i) => 5000 + i);
      for (const s of swarms)
        await store.announce(announceOf({ swarm: s, peer: 1, seeder: true, event: 'completed' }));
      const before = new Map(swarms.map((s) => [s, store.shardOf(infoHashOf(s))]));

      const grown = await store.reconfigure(config([...shards(), `d=${extra.address}`], prefix));
      expect(grown).toMatchObject({
        added: ['d'],
        removed: [],
        kept: ['a', 'b', 'c'],
        unreachable: [],
      });
      const movedToD = swarms.filter((s) => store.shardOf(infoHashOf(s)) !== before.get(s));
      for (const s of movedToD) expect(store.shardOf(infoHashOf(s))).toBe('d');
      expect(movedToD.length).toBeGreaterThan(10);
      expect(grown.downloadCountersMoved).toBe(movedToD.length);
      const scraped = await store.scrape(swarms.map(infoHashOf));
      // Peers of moved swarms re-announce within one interval; download counts moved with them.
      for (const c of scraped) expect(c.downloaded).toBe(1);

      const afterGrow = new Map(swarms.map((s) => [s, store.shardOf(infoHashOf(s))]));
      const shrunk = await store.reconfigure(
        config([shards()[0]!, shards()[2]!, `d=${extra.address}`], prefix),
      );
      expect(shrunk).toMatchObject({ added: [], removed: ['b'], kept: ['a', 'c', 'd'] });
      for (const s of swarms) {
        if (afterGrow.get(s) !== 'b') expect(store.shardOf(infoHashOf(s))).toBe(afterGrow.get(s));
      }
      for (const c of await store.scrape(swarms.map(infoHashOf))) expect(c.downloaded).toBe(1);
    } finally {
      await store.close();
      await extra.close();
    }
  });
});
