// The Redis driver against one real redis-server started from
// deploy/redis/redis.conf: the conformance suite, then what an operator sees
// when Redis goes away, hangs, and comes back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import {
  describeDataStoreConformance,
  describePeerStoreConformance,
  announceOf,
  infoHashOf,
} from '../../test/conformance.ts';
import { isStoreError } from '../errors.ts';
import { RECONNECT_MAX_DELAY_MS } from './connection.ts';
import { createRedisStore, redisStoreConfig, type RedisStore } from './index.ts';

let server: RedisServer;
let n = 0;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server.close();
});

function config(extra: Parameters<typeof redisStoreConfig>[0] = {}) {
  // A fresh key prefix per store is an empty store without flushing the server.
  return redisStoreConfig({
    // The conformance suite asks for peer_ids (non-compact answers); the default keeps none.
    REDIS_STORE_PEER_IDS: true,
    REDIS_ADDRESSES: [server.address],
    REDIS_PASSWORD: server.password,
    REDIS_KEY_PREFIX: `standalone-${++n}:`,
    ...extra,
  });
}

// The conformance suite checks answers, not latency: its 500 non-compact announces
// to one swarm can take over the default 1 s on a loaded 2-core machine (seen once
// in a full run). Command timeouts have tests of their own.
const conformanceConfig = () => ({ ...config(), REDIS_COMMAND_TIMEOUT_MS: 10_000 });

describePeerStoreConformance('redis standalone', (o) => createRedisStore(conformanceConfig(), o));
// Regression: with auto-pipelining on, ioredis 6.0.0's callBuffer() threw from a
// setImmediate and no announce was ever answered.
describePeerStoreConformance('redis standalone, auto-pipelining', (o) =>
  createRedisStore({ ...conformanceConfig(), REDIS_AUTO_PIPELINING: true }, o),
);
describeDataStoreConformance('redis standalone', () =>
  createRedisStore(config(), { peerLifetimeSeconds: 60 }),
);

// A store on a Redis server of the test's own, which the test may kill or pause.
function ownStore(
  own: RedisServer,
  extra: Parameters<typeof redisStoreConfig>[0] = {},
  options: Partial<Parameters<typeof createRedisStore>[1]> = {},
): Promise<RedisStore> {
  return createRedisStore(
    redisStoreConfig({ REDIS_ADDRESSES: [own.address], REDIS_PASSWORD: own.password, ...extra }),
    { peerLifetimeSeconds: 60, ...options },
  );
}

const answersPing = (store: RedisStore): Promise<boolean> =>
  store.ping().then(
    () => true,
    () => false,
  );

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) return undefined;
  return isStoreError(err)
    ? err.code
    : `uncoded: ${err instanceof Error ? err.message : typeof err}`;
}

describe('redis standalone: peers that move', () => {
  it('bindings of peers gone without stopping are dropped once they outnumber the live peers', async () => {
    let now = Date.UTC(2030, 0, 1);
    const cfg = config();
    const store = await createRedisStore(cfg, { peerLifetimeSeconds: 60, clock: () => now });
    const bindings = `${cfg.REDIS_KEY_PREFIX}{${infoHashOf(1).toString('base64url')}}b`;
    const fields = async () => Number(await server.cli('HLEN', bindings));
    try {
      for (let p = 1; p <= 100; p++) await store.announce(announceOf({ peer: p, key: p }));
      expect(await fields()).toBe(100);
      now += 61_000;
      for (let p = 101; p <= 104; p++) await store.announce(announceOf({ peer: p, key: p }));
      // docs/redis.md "Peers that move": at most twice the live peers plus 16.
      expect(await fields()).toBeLessThanOrEqual(2 * 4 + 16 + 1);
      expect(await store.announce(announceOf({ peer: 101, key: 101, from: 500 }))).toMatchObject({
        leechers: 4,
      });
    } finally {
      await store.close();
    }
  });
});

// The announce script asks once whether the other family's key and the
// receipt hash exist (docs/redis.md "CPU per announce"): every combination
// of the two, with a receipt pruned along with its expired peer.
describe('redis standalone: receipts and the other family', () => {
  it('counts both families and keeps or prunes receipts whichever of the two keys exist', async () => {
    let now = Date.UTC(2030, 0, 1);
    const cfg = config();
    const store = await createRedisStore(cfg, { peerLifetimeSeconds: 60, clock: () => now });
    const receipts = (swarm: number) =>
      `${cfg.REDIS_KEY_PREFIX}{${infoHashOf(swarm).toString('base64url')}}r`;
    try {
      // Neither key: a plain first announce.
      expect(await store.announce(announceOf({ swarm: 1, peer: 1 }))).toMatchObject({
        seeders: 0,
        leechers: 1,
      });
      // Receipts only.
      const done = await store.announce(
        announceOf({ swarm: 1, peer: 2, seeder: true, event: 'completed' }),
      );
      expect(done).toMatchObject({ seeders: 1, leechers: 1, downloaded: 1, downloadCounted: true });
      // Other family only (swarm 2), then both (swarm 1).
      await store.announce(announceOf({ swarm: 2, peer: 1, family: 6, seeder: true }));
      expect(await store.announce(announceOf({ swarm: 2, peer: 2 }))).toMatchObject({
        seeders: 1,
        leechers: 1,
      });
      await store.announce(announceOf({ swarm: 1, peer: 3, family: 6 }));
      const again = await store.announce(
        announceOf({ swarm: 1, peer: 2, seeder: true, event: 'completed' }),
      );
      expect(again).toMatchObject({
        seeders: 1,
        leechers: 2,
        downloaded: 1,
        downloadCounted: false,
      });
      expect(again.downloadReceipt).toBe(done.downloadReceipt);
      // A second receipt outlives the first; its peer expires, and the next
      // announce of its family prunes it with its receipt, the other family's leaves it.
      const held = async () => Number(await server.cli('HLEN', receipts(1)));
      now += 30_000;
      await store.announce(announceOf({ swarm: 1, peer: 4, seeder: true, event: 'completed' }));
      expect(await held()).toBe(2);
      now += 31_000;
      await store.announce(announceOf({ swarm: 1, peer: 3, family: 6 }));
      expect(await held()).toBe(2);
      expect(await store.announce(announceOf({ swarm: 1, peer: 1 }))).toMatchObject({
        seeders: 1,
        leechers: 2,
        downloaded: 2,
      });
      expect(await held()).toBe(1);
    } finally {
      await store.close();
    }
  });
});

describe('redis standalone: outages', () => {
  it('a wrong password is STORE_ERR_UNAVAILABLE, not a crash or a hang', async () => {
    const store = await createRedisStore(
      config({ REDIS_PASSWORD: 'wrong', REDIS_CONNECT_TIMEOUT_MS: 300 }),
      { peerLifetimeSeconds: 60 },
    );
    try {
      expect(await codeOf(store.ping())).toBe('STORE_ERR_UNAVAILABLE');
      expect(await codeOf(store.announce(announceOf({ peer: 1 })))).toBe('STORE_ERR_UNAVAILABLE');
    } finally {
      await store.close();
    }
  });

  it('Redis down: announces fail fast with STORE_ERR_UNAVAILABLE and recover by themselves when it is back', async () => {
    const own = await startRedis();
    const store = await ownStore(own);
    try {
      await expect.poll(() => answersPing(store)).toBe(true);
      await store.announce(announceOf({ peer: 1, seeder: true, event: 'completed' }));
      await own.kill();
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        expect(await codeOf(store.announce(announceOf({ peer: 2 })))).toBe('STORE_ERR_UNAVAILABLE');
        // Fail fast: nothing waits for a reconnect or a timeout.
        // Well under the 1000 ms command timeout it would otherwise wait for; not
        // tighter, as 2 shared cores under the full suite delay a callback by 100 ms.
        expect(performance.now() - started).toBeLessThan(500);
      }
      expect(await codeOf(store.ping())).toBe('STORE_ERR_UNAVAILABLE');
      await own.start();
      await expect.poll(() => answersPing(store), { timeout: 5000 }).toBe(true);
      // AOF (appendfsync everysec) kept the download count across the crash only if it was flushed;
      // the peer data is ephemeral. The announce itself must work again.
      const r = await store.announce(announceOf({ peer: 2 }));
      expect(r.leechers).toBe(1);
    } finally {
      await store.close();
      await own.close();
    }
  });

  it('Redis back after a long outage: every connection serves again within the capped back-off', async () => {
    const own = await startRedis();
    const connections = 4;
    let refused = 0;
    const store = await ownStore(
      own,
      { REDIS_CONNECTIONS_PER_NODE: connections },
      { onError: () => refused++ },
    );
    const shoalConnections = async (): Promise<number> =>
      (await own.cli('CLIENT', 'LIST')).split('\n').filter((l) => / name=shoal /.test(l)).length;
    try {
      expect(await shoalConnections()).toBe(connections);
      await own.kill();
      // Long enough for every connection's back-off to reach its cap
      // (50 + 100 + ... + 500 ms: 10 refused attempts each, ~2.75 s).
      await expect
        .poll(() => refused, { timeout: 15_000, interval: 100 })
        .toBeGreaterThanOrEqual(connections * 11);
      await own.start();
      const back = performance.now();
      // One capped back-off plus a handshake; the margin is for 2 shared
      // cores. Polled beside the announces below, so their time does not
      // count against it.
      const bound = RECONNECT_MAX_DELAY_MS + 2000;
      const allBack = expect
        .poll(shoalConnections, { timeout: bound, interval: 20 })
        .toBe(connections)
        .then(() => performance.now() - back);
      allBack.catch(() => undefined);
      await expect
        .poll(() => codeOf(store.announce(announceOf({ peer: 1 }))), {
          timeout: bound,
          interval: 20,
        })
        .toBeUndefined();
      // From the first answer on, every call is answered: none lands on a
      // connection still waiting out its back-off.
      for (let i = 0; i < 4 * connections; i++)
        expect(await codeOf(store.announce(announceOf({ peer: 2 + i })))).toBeUndefined();
      expect(await allBack).toBeLessThan(bound);
    } finally {
      await store.close();
      await own.close();
    }
  }, 30_000);

  it('a store created while Redis is down serves once Redis starts', async () => {
    const own = await startRedis();
    await own.kill();
    const store = await ownStore(own);
    try {
      expect(await codeOf(store.announce(announceOf({ peer: 1 })))).toBe('STORE_ERR_UNAVAILABLE');
      await own.start();
      await expect.poll(() => answersPing(store), { timeout: 5000 }).toBe(true);
      expect((await store.announce(announceOf({ peer: 1 }))).leechers).toBe(1);
    } finally {
      await store.close();
      await own.close();
    }
  });

  it('a hung Redis (SIGSTOP) gives STORE_ERR_TIMEOUT within the command timeout, then recovers', async () => {
    const own = await startRedis();
    const store = await ownStore(own, { REDIS_COMMAND_TIMEOUT_MS: 200 });
    try {
      await expect.poll(() => answersPing(store)).toBe(true);
      own.pause();
      const started = performance.now();
      expect(await codeOf(store.announce(announceOf({ peer: 1 })))).toBe('STORE_ERR_TIMEOUT');
      // The code says the 200 ms command timeout fired (a socket timeout, at 1 s,
      // would be STORE_ERR_UNAVAILABLE, and it is due later whatever the load);
      // the bound only says it did not hang.
      expect(performance.now() - started).toBeLessThan(10_000);
      own.resume();
      await expect
        .poll(
          () =>
            store.announce(announceOf({ peer: 1 })).then(
              (r) => r.leechers,
              () => -1,
            ),
          { timeout: 5000 },
        )
        .toBe(1);
    } finally {
      own.resume();
      await store.close();
      await own.close();
    }
  });
});

describe('redis standalone: storage layout', () => {
  let store: RedisStore;
  beforeAll(async () => {
    store = await createRedisStore(config(), { peerLifetimeSeconds: 60 });
  });
  afterAll(async () => {
    await store.close();
  });

  it('swarm keys carry a TTL, download counts do not (durable), and all share the {infohash} tag', async () => {
    await store.announce(announceOf({ peer: 1, seeder: true, event: 'completed', swarm: 77 }));
    const keys = (await server.cli('--scan', '--pattern', `standalone-${n}:*`)).split('\n').sort();
    const tag = `{${announceOf({ peer: 1, swarm: 77 }).infoHash.toString('base64url')}}`;
    expect(keys).toEqual([
      `standalone-${n}:${tag}d`,
      `standalone-${n}:${tag}i`,
      `standalone-${n}:${tag}p4`,
      `standalone-${n}:${tag}r`,
    ]);
    for (const suffix of ['p4', 'r']) {
      const ttl = Number(await server.cli('PTTL', `standalone-${n}:${tag}${suffix}`));
      expect(ttl).toBeGreaterThan(55_000);
      expect(ttl).toBeLessThanOrEqual(60_000);
    }
    expect(await server.cli('PTTL', `standalone-${n}:${tag}d`)).toBe('-1');
    expect(await server.cli('OBJECT', 'ENCODING', `standalone-${n}:${tag}p4`)).toBe('listpack');
  });

  it('the announce is one round trip: a single EVALSHA per announce', async () => {
    const before = await server.cli('INFO', 'commandstats');
    const count = (info: string, cmd: string): number =>
      Number(
        /calls=(\d+)/.exec(
          info.split('\n').find((l) => l.startsWith(`cmdstat_${cmd}:`)) ?? '',
        )?.[1] ?? 0,
      );
    for (let i = 0; i < 10; i++) await store.announce(announceOf({ peer: i, swarm: 78 }));
    const after = await server.cli('INFO', 'commandstats');
    expect(count(after, 'evalsha') - count(before, 'evalsha')).toBe(10);
    expect(count(after, 'eval') - count(before, 'eval')).toBe(0);
  });
});

// docs/redis.md "CPU per announce": ioredis writes each command with its own
// system call; the store corks a connection for the rest of the turn.
describe('redis standalone: one write per turn', () => {
  it('the announces of one event-loop turn reach Redis in one read per connection', async () => {
    const own = await startRedis();
    const store = await ownStore(own, { REDIS_CONNECTIONS_PER_NODE: 2 });
    try {
      // The first announce loads the script (EVAL after NOSCRIPT).
      await store.announce(announceOf({ peer: 0 }));
      await own.cli('CONFIG', 'RESETSTAT');
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) => store.announce(announceOf({ peer: i + 1 }))),
      );
      expect(answers.map((a) => a.seeders + a.leechers).sort((a, b) => b - a)[0]).toBe(41);
      const stats = await own.cli('INFO', 'stats');
      const reads = Number(/total_reads_processed:(\d+)/.exec(stats)?.[1]);
      // 40 EVALSHAs: one read per connection, the rest is redis-cli's own (AUTH, INFO).
      expect(reads).toBeGreaterThan(0);
      expect(reads).toBeLessThanOrEqual(2 + 3);
    } finally {
      await store.close();
      await own.close();
    }
  });
});

describe('redis standalone: peer_ids not stored (the default)', () => {
  it('keeps no peer_id, answers compact peers and reports peerIds undefined even when asked', async () => {
    const store = await createRedisStore(config({ REDIS_STORE_PEER_IDS: false }), {
      peerLifetimeSeconds: 60,
    });
    try {
      await store.announce(announceOf({ peer: 1, seeder: true }));
      const r = await store.announce(announceOf({ peer: 2, withPeerIds: true }));
      expect(r.seeders).toBe(1);
      expect(r.leechers).toBe(1);
      expect(r.peers.length).toBe(6);
      expect(r.peerIds).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});
