// POST /v1/batch answers every op on its own (docs/storage-api.md "Errors
// per op"): a store answer without peer ids travels as "no ids", and a store
// answer the batch format cannot carry fails its own op with a coded error
// while its neighbours are answered. Regression: a compact=0 announce on a
// Redis store keeping no peer_ids (the default) once made the whole batch a
// 500, failing every announce that shared it.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RpcAnnounce, RpcOp } from '@shoal/protocol/storage-rpc';
import type { PeerAnnounce, PeerStore } from '@shoal/storage';
import { createCompositeStore } from '@shoal/storage/composite';
import { createMemoryStore } from '@shoal/storage/memory';
import { createRedisStore, redisStoreConfig, type RedisStore } from '@shoal/storage/redis';
import { captureLogs } from '@shoal/testing/logs';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import { buildStorageApi, type StorageApi } from './app.ts';
import { injectBatch, testConfig } from '../test/support.ts';

const TOKEN = 'batch-per-op-token-0123456789';

function config(driver: 'memory' | 'redis') {
  return testConfig(TOKEN, { PEER_STORE_DRIVER: driver, DATA_STORE_DRIVER: driver });
}

const hash = (n: number) => Buffer.alloc(20, n);

function announce(swarm: number, n: number, over: Partial<RpcAnnounce> = {}): RpcAnnounce {
  return {
    op: 'announce',
    infoHash: hash(swarm),
    peerId: Buffer.from(`-TEST00-${String(n).padStart(12, '0')}`),
    family: 4,
    address: Buffer.from([10, 1, (n >> 8) & 0xff, n & 0xff]),
    port: 6881,
    seeder: true,
    event: 'started',
    numWant: 50,
    withPeerIds: false,
    ...over,
  };
}

const batch = (app: StorageApi, ops: RpcOp[]) => injectBatch(app, TOKEN, ops);

describe('a store that keeps no peer ids (Redis, REDIS_STORE_PEER_IDS=false, the default)', () => {
  let redis: RedisServer;
  let app: StorageApi;
  let store: RedisStore;
  beforeAll(async () => {
    redis = await startRedis();
    store = await createRedisStore(
      redisStoreConfig({
        REDIS_ADDRESSES: [redis.address],
        REDIS_PASSWORD: redis.password,
        REDIS_KEY_PREFIX: 'batch-per-op:',
      }),
      { peerLifetimeSeconds: 1860 },
    );
    app = buildStorageApi({
      config: config('redis'),
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
      store: createCompositeStore({ peers: store, data: store, dataDriver: 'redis' }),
    });
  });
  afterAll(async () => {
    await app?.close();
    await store?.close();
    await redis?.close();
  });

  it('answers a withPeerIds announce with its peers and "no ids", beside the other ops of its batch', async () => {
    await batch(
      app,
      [1, 2, 3].map((n) => announce(7, n)),
    );
    const ops: RpcOp[] = [
      announce(8, 10),
      announce(7, 20, { seeder: false, withPeerIds: true }),
      announce(8, 11, { seeder: false }),
      { op: 'scrape', infoHashes: [hash(7), hash(8)] },
    ];
    const [other, asked, neighbour, scrape] = await batch(app, ops);
    expect(asked).toMatchObject({ ok: true, op: 'announce', seeders: 3, leechers: 1 });
    expect(asked?.ok === true && asked.op === 'announce' && asked.peers.length).toBe(18);
    expect(asked?.ok === true && asked.op === 'announce' && asked.peerIds).toBeUndefined();
    expect(other).toMatchObject({ ok: true, seeders: 1, leechers: 0 });
    expect(neighbour).toMatchObject({ ok: true, seeders: 1, leechers: 1 });
    expect(scrape).toMatchObject({ ok: true, op: 'scrape' });
  });
});

describe('a store answer the batch format cannot carry', () => {
  const POISONED = hash(66);
  const inner = createMemoryStore({ peerLifetimeSeconds: 1860 });
  /** A driver (or a custom query) answering one swarm with a peer list of a broken size. */
  const poisoning: PeerStore = {
    driver: 'memory',
    announce: async (a: PeerAnnounce) => {
      const r = await inner.announce(a);
      return a.infoHash.equals(POISONED) ? { ...r, peers: Buffer.concat([r.peers, hash(1)]) } : r;
    },
    scrape: (h) => inner.scrape(h),
    collectGarbage: () => inner.collectGarbage(),
    stats: () => inner.stats(),
    ping: () => inner.ping(),
    close: () => inner.close(),
  };
  const { lines, stream } = captureLogs();
  const registry = new Registry();
  const app = buildStorageApi({
    config: config('memory'),
    logger: pino({ level: 'info' }, stream),
    registry,
    store: createCompositeStore({
      peers: poisoning,
      data: inner,
      dataDriver: 'memory',
      downloadsApart: false,
    }),
  });
  afterAll(async () => {
    await app.close();
    await inner.close();
  });

  it('fails that op alone with its coded error: one poisoned op and 40 good ones give 40 answers', async () => {
    const N = 40;
    const ops: RpcOp[] = Array.from({ length: N }, (_, i) => announce(9, 100 + i));
    ops.splice(17, 0, announce(66, 1));
    const results = await batch(app, ops);
    expect(results[17]).toEqual({ ok: false, code: 'PROTO_ERR_RPC_BAD_FIELD' });
    const good = results.filter((_, i) => i !== 17);
    expect(good).toHaveLength(N);
    for (const r of good) expect(r).toMatchObject({ ok: true, op: 'announce' });
    expect(good.map((r) => r.ok && r.op === 'announce' && r.seeders).sort()).toContain(N);
    // Counted and logged as the bug it is, with the code the gateway received.
    const errors = await registry.getSingleMetric('shoal_storage_operation_errors_total')?.get();
    expect(errors?.values.find((v) => v.labels.code === 'PROTO_ERR_RPC_BAD_FIELD')?.value).toBe(1);
    expect(lines.some((l) => l.level === 50 && l.code === 'PROTO_ERR_RPC_BAD_FIELD')).toBe(true);
  });
});
