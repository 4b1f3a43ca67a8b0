// storage-api through inject() and over a real port, on the memory driver:
// what a gateway and a gc-worker see (contract §1-2).
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  encodeBatchRequest,
  STORAGE_RPC_VERSION,
  type RpcAnnounce,
  type RpcOp,
} from '@shoal/protocol/storage-rpc';
import { StoreError, type PeerAnnounce, type PeerStore } from '@shoal/storage';
import { createMemoryLeaseLock } from '@shoal/storage/locks';
import { createCompositeStore } from '@shoal/storage/composite';
import { createMemoryStore, type MemoryStore } from '@shoal/storage/memory';
import { buildStorageApi, type StorageApi } from './app.ts';
import { loadStorageApiConfig } from './config.ts';
import { batchHeaders, injectBatch, postBatch, testConfig } from '../test/support.ts';

const TOKEN = 'test-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const BATCH_HEADERS = batchHeaders(TOKEN);

function config(env: Record<string, string> = {}) {
  return testConfig(TOKEN, env);
}

const hash = (n: number) => Buffer.alloc(20, n);
const peerId = (n: number) => Buffer.from(`-TEST00-${String(n).padStart(12, '0')}`);

function announce(over: Partial<RpcAnnounce> & { n: number }): RpcAnnounce {
  const { n, ...rest } = over;
  return {
    op: 'announce',
    infoHash: hash(1),
    peerId: peerId(n),
    family: 4,
    address: Buffer.from([10, 0, 0, n]),
    port: 6881,
    seeder: false,
    event: 'started',
    numWant: 50,
    withPeerIds: false,
    ...rest,
  };
}

/** A memory store whose backend fails for one swarm, as one broken shard would. */
function failingFor(inner: MemoryStore, broken: Buffer): PeerStore {
  return {
    driver: 'memory',
    announce: (a: PeerAnnounce) =>
      a.infoHash.equals(broken)
        ? Promise.reject(new StoreError('STORE_ERR_UNAVAILABLE', 'shard down'))
        : inner.announce(a),
    scrape: (h) => inner.scrape(h),
    collectGarbage: () => inner.collectGarbage(),
    stats: () => inner.stats(),
    ping: () => inner.ping(),
    close: () => inner.close(),
  };
}

/** Sample values for the path parameters of the route table. */
const PARAMS: Record<string, string> = {
  context: 'ctx',
  key: 'k',
  name: 'lease',
  kind: 'torrents',
  list: 'deny',
  value: '01'.repeat(20),
  passkey: 'abcdefgh12',
};

/**
 * Every (method, url) of fastify's printRoutes({ commonPrefix: false }) tree,
 * parameters filled in from PARAMS; HEAD is left out (GET covers it).
 */
function routeTable(tree: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const parents: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (m === null) continue;
    const depth = (m[1] ?? '').length / 4;
    const path = (parents[depth - 1] ?? '') + (m[2] ?? '');
    parents[depth] = path;
    parents.length = depth + 1;
    const url = path.replace(/:(\w+)/g, (_, p: string) => PARAMS[p] ?? p);
    for (const method of (m[3] ?? '').split(', ').filter((x) => x !== '' && x !== 'HEAD'))
      out.push([method, url]);
  }
  return out;
}

describe('storage-api', () => {
  let now = Date.now();
  const memory = createMemoryStore({ peerLifetimeSeconds: 1860, clock: () => now });
  const registry = new Registry();
  let app: StorageApi;

  beforeAll(() => {
    app = buildStorageApi({
      config: config({ BATCH_MAX_OPS: '8', MAX_BODY_BYTES: '4096', STATS_INTERVAL_SECONDS: '1' }),
      logger: pino({ level: 'silent' }),
      registry,
      store: createCompositeStore({
        peers: failingFor(memory, hash(0xee)),
        data: memory,
        dataDriver: 'memory',
        downloadsApart: false,
      }),
      locks: createMemoryLeaseLock(),
    });
  });
  afterAll(async () => {
    await app.close();
    await memory.close();
  });

  const batch = (ops: RpcOp[]) => injectBatch(app, TOKEN, ops);

  describe('auth', () => {
    it('refuses requests without or with a wrong token, on every route it serves', async () => {
      await app.api.ready();
      const table = routeTable(app.api.printRoutes({ commonPrefix: false }));
      const api = table.filter(([, url]) => !url.startsWith('/v1/admin/'));
      // The table is read from the server, so a route added later is covered too.
      expect(api.map(([method, url]) => `${method} ${url}`)).toEqual(
        expect.arrayContaining(['POST /v1/batch', 'GET /v1/policy', 'DELETE /v1/leases/lease']),
      );
      for (const headers of [
        {},
        { authorization: 'Bearer wrong-token-0123456789' },
        { authorization: TOKEN },
        { authorization: `Basic ${TOKEN}` },
      ]) {
        for (const [method, url] of api) {
          const res = await app.api.inject({ method, url, headers, payload: '{}' });
          expect(res.statusCode, `${method} ${url}`).toBe(401);
          expect(res.json()).toMatchObject({ code: 'RPC_ERR_UNAUTHORIZED' });
        }
        // Without STORAGE_API_ADMIN_TOKEN the admin routes are off for everyone, coded.
        for (const [method, url] of table.filter(([, u]) => u.startsWith('/v1/admin/'))) {
          const res = await app.api.inject({ method, url, headers });
          expect(res.statusCode, `${method} ${url}`).toBe(403);
          expect(res.json()).toMatchObject({ code: 'RPC_ERR_ADMIN_DISABLED' });
        }
      }
    });
  });

  describe('POST /v1/batch', () => {
    it('announces: counts include the announcer, peers exclude it, seeders get leechers only', async () => {
      const [seed] = await batch([announce({ n: 1, seeder: true })]);
      expect(seed).toMatchObject({
        ok: true,
        op: 'announce',
        seeders: 1,
        leechers: 0,
        downloaded: 0,
      });
      expect(seed?.ok && seed.op === 'announce' && seed.peers.length).toBe(0);

      const [leech] = await batch([announce({ n: 2, withPeerIds: true })]);
      expect(leech).toEqual({
        ok: true,
        op: 'announce',
        seeders: 1,
        leechers: 1,
        downloaded: 0,
        partialSeeds: 0,
        peers: Buffer.from([10, 0, 0, 1, 0x1a, 0xe1]),
        peerIds: [peerId(1)],
      });
      const [seedAgain] = await batch([announce({ n: 1, seeder: true, event: 'none' })]);
      expect(seedAgain).toMatchObject({
        seeders: 1,
        leechers: 1,
        peers: Buffer.from([10, 0, 0, 2, 0x1a, 0xe1]),
      });
    });

    it('counts a completed download once per peer, and scrapes in the same batch', async () => {
      const h = hash(2);
      const results = await batch([
        announce({ n: 3, infoHash: h }),
        announce({ n: 3, infoHash: h, event: 'completed', seeder: true }),
      ]);
      expect(results.every((r) => r.ok)).toBe(true);
      await batch([announce({ n: 3, infoHash: h, event: 'completed', seeder: true })]);
      const [scrape] = await batch([{ op: 'scrape', infoHashes: [h, hash(99)] }]);
      expect(scrape).toEqual({
        ok: true,
        op: 'scrape',
        counts: [
          { seeders: 1, leechers: 0, downloaded: 1, partialSeeds: 0 },
          { seeders: 0, leechers: 0, downloaded: 0, partialSeeds: 0 },
        ],
      });
      const [stopped] = await batch([announce({ n: 3, infoHash: h, event: 'stopped' })]);
      expect(stopped).toMatchObject({ ok: true, seeders: 0, leechers: 0, downloaded: 1 });
    });

    it('answers IPv6 announces with IPv6 peers only', async () => {
      const h = hash(3);
      const v6 = (n: number) =>
        Buffer.from(`20010db8000000000000000000000${n.toString(16).padStart(3, '0')}`, 'hex');
      await batch([announce({ n: 4, infoHash: h, family: 6, address: v6(4), seeder: true })]);
      await batch([announce({ n: 5, infoHash: h, seeder: true })]);
      const [r] = await batch([announce({ n: 6, infoHash: h, family: 6, address: v6(6) })]);
      expect(r).toMatchObject({ ok: true, seeders: 2, leechers: 1 });
      expect(r?.ok && r.op === 'announce' && r.peers).toEqual(
        Buffer.concat([v6(4), Buffer.from([0x1a, 0xe1])]),
      );
    });

    it('fails one op with its store code and answers the others', async () => {
      const results = await batch([
        announce({ n: 7, infoHash: hash(0xee) }),
        announce({ n: 7, infoHash: hash(4), seeder: true }),
        { op: 'scrape', infoHashes: [hash(4)] },
      ]);
      expect(results[0]).toEqual({ ok: false, code: 'STORE_ERR_UNAVAILABLE' });
      expect(results[1]).toMatchObject({ ok: true, seeders: 1 });
      expect(results[2]).toMatchObject({
        ok: true,
        counts: [{ seeders: 1, leechers: 0, downloaded: 0, partialSeeds: 0 }],
      });
    });

    it('refuses another wire version with the versions it speaks', async () => {
      const body = encodeBatchRequest([announce({ n: 8 })]);
      const viaHeader = await app.api.inject({
        method: 'POST',
        url: '/v1/batch',
        headers: { ...BATCH_HEADERS, 'x-shoal-rpc-version': String(STORAGE_RPC_VERSION + 1) },
        payload: body,
      });
      expect(viaHeader.statusCode).toBe(400);
      expect(viaHeader.json()).toMatchObject({
        code: 'RPC_ERR_VERSION',
        supported: [STORAGE_RPC_VERSION],
      });
      const v2 = Buffer.from(body);
      v2[3] = STORAGE_RPC_VERSION + 1;
      const { 'x-shoal-rpc-version': _, ...noVersionHeader } = BATCH_HEADERS;
      const viaBody = await app.api.inject({
        method: 'POST',
        url: '/v1/batch',
        headers: noVersionHeader,
        payload: v2,
      });
      expect(viaBody.statusCode).toBe(400);
      expect(viaBody.json()).toMatchObject({
        code: 'RPC_ERR_VERSION',
        supported: [STORAGE_RPC_VERSION],
      });
    });

    it('answers bad bodies with coded 4xx and leaves the store untouched', async () => {
      const post = (payload: Buffer | string, headers: Record<string, string> = BATCH_HEADERS) =>
        app.api.inject({ method: 'POST', url: '/v1/batch', headers, payload });
      const garbage = await post(
        Buffer.from(`SHB${String.fromCharCode(STORAGE_RPC_VERSION)}\x00\x01\x07`),
      );
      expect(garbage.statusCode).toBe(400);
      expect(garbage.json()).toMatchObject({ code: 'RPC_ERR_BAD_BODY' });
      const truncated = await post(encodeBatchRequest([announce({ n: 9 })]).subarray(0, 30));
      expect(truncated.json()).toMatchObject({ code: 'RPC_ERR_BAD_BODY' });

      const tooMany = await post(
        encodeBatchRequest(Array.from({ length: 9 }, (_, i) => announce({ n: 10 + i }))),
      );
      expect(tooMany.statusCode).toBe(413);
      expect(tooMany.json()).toMatchObject({ code: 'RPC_ERR_TOO_LARGE' });
      const tooBig = await post(Buffer.alloc(5000));
      expect(tooBig.statusCode).toBe(413);
      expect(tooBig.json()).toMatchObject({ code: 'RPC_ERR_TOO_LARGE' });

      const json = await post('{}', { ...AUTH, 'content-type': 'application/json' });
      expect(json.statusCode).toBe(415);
      expect(json.json()).toMatchObject({ code: 'RPC_ERR_BAD_CONTENT_TYPE' });
      const textPlain = await post('x', { ...AUTH, 'content-type': 'text/plain' });
      expect(textPlain.statusCode).toBe(415);

      const [scrape] = await batch([{ op: 'scrape', infoHashes: [hash(1)] }]);
      // Only the swarm of the first test: none of the refused announces landed.
      expect(scrape).toMatchObject({ counts: [{ seeders: 1, leechers: 1 }] });
    });
  });

  describe('KV', () => {
    const req = (method: 'GET' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
      app.api.inject({
        method,
        url,
        headers: AUTH,
        ...(payload === undefined ? {} : { payload: payload as object }),
      });

    it('puts, gets, lists in key order and deletes', async () => {
      expect((await req('PUT', '/v1/kv/approved/b', { value: 'two' })).statusCode).toBe(200);
      expect((await req('PUT', '/v1/kv/approved/a', { value: 'one' })).statusCode).toBe(200);
      expect((await req('GET', '/v1/kv/approved/a')).json()).toEqual({ value: 'one' });
      expect((await req('GET', '/v1/kv/approved')).json()).toEqual({
        entries: [
          ['a', 'one'],
          ['b', 'two'],
        ],
      });
      expect((await req('DELETE', '/v1/kv/approved/a')).json()).toEqual({ existed: true });
      expect((await req('DELETE', '/v1/kv/approved/a')).json()).toEqual({ existed: false });
      const missing = await req('GET', '/v1/kv/approved/a');
      expect(missing.statusCode).toBe(404);
      expect(missing.json()).toMatchObject({ code: 'KV_ERR_NOT_FOUND' });
      expect((await req('GET', '/v1/kv/empty')).json()).toEqual({ entries: [] });
    });

    it('refuses values that are not strings and malformed JSON', async () => {
      for (const payload of [{ value: 3 }, { nope: 'x' }, [1]]) {
        const res = await req('PUT', '/v1/kv/ctx/k', payload);
        expect(res.statusCode).toBe(400);
        expect(res.json()).toMatchObject({ code: 'RPC_ERR_BAD_BODY' });
      }
      const broken = await app.api.inject({
        method: 'PUT',
        url: '/v1/kv/ctx/k',
        headers: { ...AUTH, 'content-type': 'application/json' },
        payload: '{"value":',
      });
      expect(broken.statusCode).toBe(400);
      expect(broken.json()).toMatchObject({ code: 'RPC_ERR_BAD_BODY' });
      expect((await req('GET', '/v1/kv/ctx/k')).statusCode).toBe(404);
    });
  });

  describe('downloads, stats, gc, leases', () => {
    it('reports download counts by hex info_hash', async () => {
      const res = await app.api.inject({
        method: 'GET',
        url: `/v1/downloads?info_hash=${hash(2).toString('hex')}&info_hash=${hash(98).toString('hex').toUpperCase()}`,
        headers: AUTH,
      });
      expect(res.json()).toEqual({
        downloads: { [hash(2).toString('hex')]: 1, [hash(98).toString('hex')]: 0 },
      });
      for (const url of ['/v1/downloads', '/v1/downloads?info_hash=abc']) {
        const bad = await app.api.inject({ method: 'GET', url, headers: AUTH });
        expect(bad.statusCode).toBe(400);
        expect(bad.json()).toMatchObject({ code: 'RPC_ERR_BAD_BODY' });
      }
    });

    it('reports live peers by family and removes expired ones on POST /v1/gc', async () => {
      const stats: unknown = (
        await app.api.inject({ method: 'GET', url: '/v1/stats', headers: AUTH })
      ).json();
      expect(stats).toEqual({ torrents: 3, seeders: { v4: 3, v6: 1 }, leechers: { v4: 1, v6: 1 } });
      now += 1861 * 1000;
      const gc = await app.api.inject({ method: 'POST', url: '/v1/gc', headers: AUTH });
      expect(gc.statusCode).toBe(200);
      const body = gc.json<{ peersRemoved: number; swarmsRemoved: number; durationMs: number }>();
      expect(body).toMatchObject({ peersRemoved: 6, swarmsRemoved: 3 });
      expect(body.durationMs).toBeGreaterThanOrEqual(0);
      const after: unknown = (
        await app.api.inject({ method: 'GET', url: '/v1/stats', headers: AUTH })
      ).json();
      expect(after).toEqual({ torrents: 0, seeders: { v4: 0, v6: 0 }, leechers: { v4: 0, v6: 0 } });
    });

    it('gives a lease to one holder, renews it, releases it', async () => {
      const acquire = (holder: string) =>
        app.api.inject({
          method: 'POST',
          url: '/v1/leases/gc',
          headers: AUTH,
          payload: { holder, ttlMs: 60_000 },
        });
      const a = (await acquire('worker-a')).json<{
        held: boolean;
        holder: string;
        expiresAt: number;
      }>();
      expect(a).toMatchObject({ held: true, holder: 'worker-a' });
      expect(a.expiresAt).toBeGreaterThan(Date.now());
      expect((await acquire('worker-b')).json()).toMatchObject({ held: false, holder: 'worker-a' });
      expect((await acquire('worker-a')).json()).toMatchObject({ held: true });
      const release = (holder: string) =>
        app.api.inject({
          method: 'DELETE',
          url: '/v1/leases/gc',
          headers: AUTH,
          payload: { holder },
        });
      expect((await release('worker-b')).json()).toEqual({ released: false });
      expect((await release('worker-a')).json()).toEqual({ released: true });
      expect((await acquire('worker-b')).json()).toMatchObject({ held: true, holder: 'worker-b' });
      const bad = await app.api.inject({
        method: 'POST',
        url: '/v1/leases/gc',
        headers: AUTH,
        payload: { holder: 'x', ttlMs: 0 },
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({ code: 'STORE_ERR_BAD_INPUT' });
    });

    it('answers unknown endpoints with a coded 404', async () => {
      const res = await app.api.inject({ method: 'GET', url: '/v1/nothing', headers: AUTH });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ code: 'RPC_ERR_NOT_FOUND' });
    });
  });

  describe('over a real port', () => {
    let port = 0;
    let adminPort = 0;
    it('serves the batch, readiness and the metrics the contract names', async () => {
      const notYet = await app.admin.inject({ method: 'GET', url: '/readyz' });
      expect(notYet.statusCode).toBe(503);
      ({ port, adminPort } = await app.listen());
      const ops: RpcOp[] = [announce({ n: 20, infoHash: hash(5), seeder: true })];
      expect(await postBatch(`http://127.0.0.1:${port}`, TOKEN, ops)).toMatchObject([
        { ok: true, seeders: 1, leechers: 0 },
      ]);
      const admin = `http://127.0.0.1:${adminPort}`;
      expect((await fetch(`${admin}/healthz`)).status).toBe(200);
      const ready = await fetch(`${admin}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({
        status: 'ready',
        checks: { peers: { ok: true }, data: { ok: true } },
      });
      // The swarm gauges follow the store on the STATS_INTERVAL_SECONDS timer.
      await vi.waitFor(
        async () =>
          expect(await (await fetch(`${admin}/metrics`)).text()).toContain(
            'shoal_swarm_torrents 1',
          ),
        { timeout: 3000, interval: 100 },
      );
      const text = await (await fetch(`${admin}/metrics`)).text();
      for (const name of [
        'shoal_storage_operation_duration_seconds_bucket{le="0.0001",driver="memory",operation="announce"}',
        'shoal_storage_operation_errors_total{driver="memory",operation="announce",code="STORE_ERR_UNAVAILABLE"} 1',
        'shoal_storage_batch_ops_count',
        'shoal_storage_rpc_requests_total{endpoint="batch",outcome="ok"}',
        'shoal_storage_rpc_requests_total{endpoint="batch",outcome="rejected"}',
        'shoal_swarm_torrents 1',
        'shoal_swarm_peers{kind="seeders",family="v4"} 1',
        'process_cpu_user_seconds_total',
      ]) {
        expect(text).toContain(name);
      }
    });

    it('stops listening on both ports once closed', async () => {
      await app.close();
      await expect(fetch(`http://127.0.0.1:${port}/v1/stats`, { headers: AUTH })).rejects.toThrow();
      await expect(fetch(`http://127.0.0.1:${adminPort}/healthz`)).rejects.toThrow();
    });
  });
});

describe('storage-api config', () => {
  it('requires a token of at least 16 characters and names every bad variable at once', () => {
    expect(() =>
      loadStorageApiConfig({ env: { ADMIN_PORT: 'eighty', STORAGE_API_TOKEN: 'short' }, argv: [] }),
    ).toThrow(/ADMIN_PORT[\s\S]*STORAGE_API_TOKEN|STORAGE_API_TOKEN[\s\S]*ADMIN_PORT/);
  });

  it('bounds slow clients on the API port by default, and refuses 0 for any bound', () => {
    const c = config();
    expect([
      c.HTTP_REQUEST_TIMEOUT_MS,
      c.HTTP_KEEPALIVE_TIMEOUT_SECONDS,
      c.HTTP_MAX_HEADER_BYTES,
      c.HTTP_MAX_CONNECTIONS,
    ]).toEqual([30_000, 60, 65_536, 4096]);
    for (const key of [
      'HTTP_REQUEST_TIMEOUT_MS',
      'HTTP_KEEPALIVE_TIMEOUT_SECONDS',
      'HTTP_MAX_HEADER_BYTES',
      'HTTP_MAX_CONNECTIONS',
    ])
      expect(() => config({ [key]: '0' })).toThrow(key);
  });

  it('asks for the settings of the backends it is told to use', () => {
    expect(() =>
      loadStorageApiConfig({
        env: {
          STORAGE_API_TOKEN: TOKEN,
          PEER_STORE_DRIVER: 'redis',
          DATA_STORE_DRIVER: 'postgres',
        },
        argv: [],
      }),
    ).toThrow(/DATABASE_URL/);
    expect(() =>
      loadStorageApiConfig({
        env: { STORAGE_API_TOKEN: TOKEN, PEER_STORE_DRIVER: 'redis' },
        argv: [],
      }),
    ).toThrow(/DATA_STORE_DRIVER/);
    // Each chosen backend's own cross-field checks run: sentinel mode with no sentinels.
    expect(() =>
      loadStorageApiConfig({
        env: {
          STORAGE_API_TOKEN: TOKEN,
          PEER_STORE_DRIVER: 'redis',
          DATA_STORE_DRIVER: 'redis',
          REDIS_MODE: 'sentinel',
        },
        argv: [],
      }),
    ).toThrow(/REDIS_SENTINELS/);
  });
});
