// The policy admin API (docs/policy.md "Admin API") and GET /v1/policy on
// storage-api, through inject() on the memory driver: what shoalctl and a
// gateway see. Tokens: the gateways' STORAGE_API_TOKEN never opens /v1/admin.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  STORAGE_RPC_CONTENT_TYPE,
  STORAGE_RPC_VERSION,
  encodeBatchRequest,
  type RpcAnnounce,
} from '@shoal/protocol/storage-rpc';
import { StoreError } from '@shoal/storage';
import { createCompositeStore } from '@shoal/storage/composite';
import type { PingableDataStore } from '@shoal/storage';
import { createMemoryStore, type MemoryStore } from '@shoal/storage/memory';
import type { PolicySnapshot } from '@shoal/policy';
import { buildStorageApi, type StorageApi } from './app.ts';
import { testConfig } from '../test/support.ts';

const TOKEN = 'gateway-token-0123456789abcdef';
const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
const GATEWAY = { authorization: `Bearer ${TOKEN}` };
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };
const START = Date.UTC(2030, 0, 1);

function config(env: Record<string, string> = {}) {
  return testConfig(TOKEN, env);
}

/** The KV backend, counting list() calls and with a switch that makes it unreachable. */
function watched(inner: MemoryStore): PingableDataStore & { lists: number; down: boolean } {
  const gate = <T>(f: () => Promise<T>): Promise<T> =>
    w.down ? Promise.reject(new StoreError('STORE_ERR_UNAVAILABLE', 'down')) : f();
  const w = {
    lists: 0,
    down: false,
    get: (c: string, k: string) => gate(() => inner.get(c, k)),
    put: (c: string, k: string, v: string) => gate(() => inner.put(c, k, v)),
    delete: (c: string, k: string) => gate(() => inner.delete(c, k)),
    list: (c: string) => {
      w.lists++;
      return gate(() => inner.list(c));
    },
    ping: () => gate(() => inner.ping()),
    close: () => Promise.resolve(),
  };
  return w;
}

const hex = (n: number): string => n.toString(16).padStart(40, '0');

function announce(n: number, swarm: number, over: Partial<RpcAnnounce> = {}): RpcAnnounce {
  return {
    op: 'announce',
    infoHash: Buffer.from(hex(swarm), 'hex'),
    peerId: Buffer.from(`-TEST00-${String(n).padStart(12, '0')}`),
    family: 4,
    address: Buffer.from([10, 0, (n >> 8) & 0xff, n & 0xff]),
    port: 6881,
    seeder: false,
    event: 'started',
    numWant: 0,
    withPeerIds: false,
    ...over,
  };
}

describe('storage-api admin API', () => {
  let now = START;
  const peers = createMemoryStore({ peerLifetimeSeconds: 1860, clock: () => now });
  const kv = createMemoryStore({ peerLifetimeSeconds: 1860 });
  const data = watched(kv);
  const registry = new Registry();
  let app: StorageApi;

  beforeAll(() => {
    app = buildStorageApi({
      config: config({ STORAGE_API_ADMIN_TOKEN: ADMIN_TOKEN }),
      logger: pino({ level: 'silent' }),
      registry,
      // Two memory stores as one backend: download counts stay with the peers.
      store: createCompositeStore({ peers, data, dataDriver: 'memory', downloadsApart: false }),
      clock: () => now,
      doctor: () =>
        Promise.resolve({
          checks: [{ name: 'memory: reachable', status: 'ok' as const, message: 'answers' }],
        }),
    });
  });
  afterAll(async () => {
    await app.close();
    await peers.close();
    await kv.close();
  });
  beforeEach(() => {
    data.down = false;
  });

  async function call(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    url: string,
    payload?: object,
    headers: Record<string, string> = ADMIN,
  ) {
    const res = await app.api.inject({
      method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload }),
    });
    return {
      status: res.statusCode,
      body: res.body === '' ? undefined : res.json<unknown>(),
      headers: res.headers,
    };
  }

  describe('auth', () => {
    const routes = [
      ['GET', '/v1/admin/approval/torrents/deny'],
      ['PUT', `/v1/admin/approval/torrents/deny/${hex(1)}`],
      ['DELETE', `/v1/admin/approval/torrents/deny/${hex(1)}`],
      ['POST', '/v1/admin/approval/torrents/deny/import'],
      ['GET', '/v1/admin/passkeys'],
      ['POST', '/v1/admin/passkeys'],
      ['DELETE', '/v1/admin/passkeys/abcdefgh12'],
      ['POST', '/v1/admin/passkeys/import'],
      ['GET', '/v1/admin/stats'],
      ['GET', '/v1/admin/top'],
      ['GET', '/v1/admin/doctor'],
    ] as const;

    it('refuses every admin route without a token, with a wrong one and with the gateways token', async () => {
      for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, GATEWAY]) {
        for (const [method, url] of routes) {
          const res = await call(method, url, undefined, headers);
          expect(res.status, `${method} ${url}`).toBe(401);
          expect(res.body).toMatchObject({ code: 'RPC_ERR_UNAUTHORIZED' });
        }
      }
      // Nothing was written by the refused calls.
      expect((await call('GET', '/v1/admin/approval/torrents/deny')).body).toEqual({ entries: [] });
    });

    it('an unknown admin path is a 404 for the admin token, a 401 for any other', async () => {
      let res = await call('GET', '/v1/admin/nothing-here');
      expect(res).toMatchObject({ status: 404, body: { code: 'RPC_ERR_NOT_FOUND' } });
      res = await call('GET', '/v1/admin/nothing-here', undefined, GATEWAY);
      expect(res).toMatchObject({ status: 401, body: { code: 'RPC_ERR_UNAUTHORIZED' } });
    });

    it('the admin token does not open the gateways endpoints', async () => {
      for (const [method, url] of [
        ['GET', '/v1/stats'],
        ['GET', '/v1/kv/policy.passkeys'],
        ['POST', '/v1/gc'],
      ] as const) {
        expect((await call(method, url)).status).toBe(401);
      }
    });

    it('GET /v1/policy takes either token and nothing else', async () => {
      expect((await call('GET', '/v1/policy', undefined, GATEWAY)).status).toBe(200);
      expect((await call('GET', '/v1/policy', undefined, ADMIN)).status).toBe(200);
      const res = await call('GET', '/v1/policy', undefined, {});
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ code: 'RPC_ERR_UNAUTHORIZED' });
    });

    it('answers 403 RPC_ERR_ADMIN_DISABLED on every admin route when no admin token is set', async () => {
      const disabled = buildStorageApi({
        config: config(),
        logger: pino({ level: 'silent' }),
        registry: new Registry(),
      });
      try {
        for (const headers of [{}, GATEWAY, ADMIN]) {
          for (const [method, url] of routes) {
            const res = await disabled.api.inject({ method, url, headers });
            expect(res.statusCode, `${method} ${url}`).toBe(403);
            expect(res.json()).toEqual({
              code: 'RPC_ERR_ADMIN_DISABLED',
              message: 'admin API disabled: STORAGE_API_ADMIN_TOKEN is not set',
            });
          }
        }
        // The gateways still read the (empty) policy.
        const policy = await disabled.api.inject({
          method: 'GET',
          url: '/v1/policy',
          headers: GATEWAY,
        });
        expect(policy.statusCode).toBe(200);
        expect(policy.json()).toEqual({
          revision: '',
          torrents: { allow: [], deny: [] },
          clients: { allow: [], deny: [] },
          passkeys: [],
          links: [],
          bans: [],
        });
      } finally {
        await disabled.close();
      }
    });
  });

  describe('approval lists', () => {
    it('adds, lists, updates, removes torrents; hashes are stored lowercase', async () => {
      const upper = 'AB'.repeat(20);
      now = START + 1000;
      let res = await call('PUT', `/v1/admin/approval/torrents/deny/${upper}`, { note: 'dmca' });
      expect(res).toMatchObject({ status: 200, body: { added: true } });
      now = START + 5000;
      res = await call('PUT', `/v1/admin/approval/torrents/deny/${upper.toLowerCase()}`, {
        note: 'dmca 2',
      });
      expect(res.body).toEqual({ added: false });
      res = await call('PUT', `/v1/admin/approval/torrents/deny/${hex(7)}`);
      expect(res.body).toEqual({ added: true });
      res = await call('GET', '/v1/admin/approval/torrents/deny');
      expect(res.body).toEqual({
        entries: [
          { value: hex(7), addedAt: new Date(START + 5000).toISOString() },
          // addedAt is the first addition's; the note is the latest.
          { value: 'ab'.repeat(20), note: 'dmca 2', addedAt: new Date(START + 1000).toISOString() },
        ],
      });
      expect((await call('GET', '/v1/admin/approval/torrents/allow')).body).toEqual({
        entries: [],
      });
      expect((await call('DELETE', `/v1/admin/approval/torrents/deny/${upper}`)).body).toEqual({
        existed: true,
      });
      expect((await call('DELETE', `/v1/admin/approval/torrents/deny/${upper}`)).body).toEqual({
        existed: false,
      });
      await call('DELETE', `/v1/admin/approval/torrents/deny/${hex(7)}`);
      expect((await call('GET', '/v1/admin/approval/torrents/deny')).body).toEqual({ entries: [] });
    });

    it('takes client prefixes percent-encoded in the path, whatever characters they hold', async () => {
      const prefixes = ['-TR', 'M7-2-2--', 'S58B~', 'a/b%c?d#e', '-qB4'];
      for (const p of prefixes) {
        const res = await call('PUT', `/v1/admin/approval/clients/allow/${encodeURIComponent(p)}`);
        expect(res, p).toMatchObject({ status: 200, body: { added: true } });
      }
      const res = await call('GET', '/v1/admin/approval/clients/allow');
      expect(
        (res.body as { entries: Array<{ value: string }> }).entries.map((e) => e.value).sort(),
      ).toEqual([...prefixes].sort());
      const snapshot = (await call('GET', '/v1/policy')).body as PolicySnapshot;
      expect([...snapshot.clients.allow].sort()).toEqual([...prefixes].sort());
      for (const p of prefixes) {
        expect(
          (await call('DELETE', `/v1/admin/approval/clients/allow/${encodeURIComponent(p)}`)).body,
        ).toEqual({
          existed: true,
        });
      }
    });

    it('answers bad input with the policy error code and its status, writing nothing', async () => {
      const revision = (await call('GET', '/v1/policy')).headers.etag;
      const cases: Array<[string, string, string, object | undefined, string]> = [
        ['bad kind', 'GET', '/v1/admin/approval/peers/deny', undefined, 'POLICY_ERR_BAD_LIST'],
        [
          'bad list',
          'PUT',
          `/v1/admin/approval/torrents/maybe/${hex(1)}`,
          undefined,
          'POLICY_ERR_BAD_LIST',
        ],
        [
          'short hash',
          'PUT',
          '/v1/admin/approval/torrents/deny/abcd',
          undefined,
          'POLICY_ERR_BAD_INFO_HASH',
        ],
        [
          'non-hex hash',
          'DELETE',
          `/v1/admin/approval/torrents/deny/${'zz'.repeat(20)}`,
          undefined,
          'POLICY_ERR_BAD_INFO_HASH',
        ],
        [
          'long prefix',
          'PUT',
          `/v1/admin/approval/clients/deny/${'x'.repeat(21)}`,
          undefined,
          'POLICY_ERR_BAD_CLIENT_PREFIX',
        ],
        [
          'space in prefix',
          'PUT',
          '/v1/admin/approval/clients/deny/a%20b',
          undefined,
          'POLICY_ERR_BAD_CLIENT_PREFIX',
        ],
        [
          'long note',
          'PUT',
          `/v1/admin/approval/torrents/deny/${hex(1)}`,
          { note: 'n'.repeat(257) },
          'POLICY_ERR_BAD_ENTRY',
        ],
        [
          'note not text',
          'PUT',
          `/v1/admin/approval/torrents/deny/${hex(1)}`,
          { note: 5 },
          'POLICY_ERR_BAD_ENTRY',
        ],
        [
          'unknown field',
          'PUT',
          `/v1/admin/approval/torrents/deny/${hex(1)}`,
          { reason: 'x' },
          'POLICY_ERR_BAD_ENTRY',
        ],
        [
          'entries missing',
          'POST',
          '/v1/admin/approval/torrents/deny/import',
          {},
          'POLICY_ERR_BAD_ENTRY',
        ],
        [
          'replace not boolean',
          'POST',
          '/v1/admin/approval/torrents/deny/import',
          { entries: [], replace: 'yes' },
          'POLICY_ERR_BAD_ENTRY',
        ],
      ];
      for (const [what, method, url, payload, code] of cases) {
        const res = await call(method as 'GET', url, payload);
        expect(res.status, what).toBe(400);
        expect(res.body, what).toMatchObject({ code, message: expect.any(String) as string });
      }
      expect((await call('GET', '/v1/policy')).headers.etag).toBe(revision);
    });

    it('imports 10,000 hashes in one request; replace removes the rest; a bad entry fails the whole import', async () => {
      const hashes = Array.from({ length: 10_000 }, (_, i) => hex(0x100000 + i));
      let res = await call('POST', '/v1/admin/approval/torrents/allow/import', {
        entries: hashes.map((value, i) =>
          i % 1000 === 0 ? { value, note: `batch ${i}` } : { value },
        ),
      });
      expect(res).toMatchObject({ status: 200, body: { added: 10_000, updated: 0, removed: 0 } });
      let snapshot = (await call('GET', '/v1/policy', undefined, GATEWAY)).body as PolicySnapshot;
      expect(snapshot.torrents.allow).toHaveLength(10_000);
      expect(new Set(snapshot.torrents.allow)).toEqual(new Set(hashes));

      // Three bad entries among good ones: 400 with each problem, nothing written.
      const before = (await call('GET', '/v1/policy')).headers.etag;
      res = await call('POST', '/v1/admin/approval/torrents/allow/import', {
        entries: [
          { value: hex(1) },
          { value: 'nope' },
          { value: hex(2), note: 'x'.repeat(300) },
          { value: hex(3), extra: 1 },
        ],
        replace: true,
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        code: 'POLICY_ERR_BAD_INFO_HASH',
        problems: [
          { index: 1, code: 'POLICY_ERR_BAD_INFO_HASH', value: 'nope' },
          { index: 2, code: 'POLICY_ERR_BAD_ENTRY' },
          { index: 3, code: 'POLICY_ERR_BAD_ENTRY' },
        ],
      });
      expect((await call('GET', '/v1/policy')).headers.etag).toBe(before);
      expect(
        ((await call('GET', '/v1/policy')).body as PolicySnapshot).torrents.allow,
      ).toHaveLength(10_000);

      // Half of them again plus 10 new ones, replacing: the other half goes.
      res = await call('POST', '/v1/admin/approval/torrents/allow/import', {
        entries: [
          ...hashes.slice(0, 5000),
          ...Array.from({ length: 10 }, (_, i) => hex(i + 1)),
        ].map((value) => ({
          value,
        })),
        replace: true,
      });
      expect(res.body).toEqual({ added: 10, updated: 5000, removed: 5000 });
      snapshot = (await call('GET', '/v1/policy')).body as PolicySnapshot;
      expect(snapshot.torrents.allow).toHaveLength(5010);
      res = await call('POST', '/v1/admin/approval/torrents/allow/import', {
        entries: [],
        replace: true,
      });
      expect(res.body).toEqual({ added: 0, updated: 0, removed: 5010 });
    });
  });

  describe('passkeys', () => {
    it('creates with ttlSeconds, expiresAt or no expiry; lists and removes', async () => {
      now = START;
      let res = await call('POST', '/v1/admin/passkeys', { user: 'alice', ttlSeconds: 86_400 });
      expect(res.status).toBe(201);
      const alice = res.body as { passkey: string };
      expect(alice).toEqual({
        passkey: expect.stringMatching(/^[0-9a-f]{32}$/) as string,
        user: 'alice',
        createdAt: new Date(START).toISOString(),
        expiresAt: new Date(START + 86_400_000).toISOString(),
      });
      res = await call('POST', '/v1/admin/passkeys', {
        passkey: 'bob-key-0001',
        expiresAt: '2031-06-01T12:00:00+02:00',
      });
      expect(res).toMatchObject({
        status: 201,
        body: { passkey: 'bob-key-0001', expiresAt: '2031-06-01T10:00:00.000Z' },
      });
      res = await call('POST', '/v1/admin/passkeys', { passkey: 'carol-forever', expiresAt: null });
      expect(res.body).toMatchObject({ passkey: 'carol-forever', expiresAt: null });
      res = await call('POST', '/v1/admin/passkeys', {});
      expect(res).toMatchObject({ status: 201, body: { expiresAt: null } });
      const anonymous = (res.body as { passkey: string }).passkey;

      res = await call('GET', '/v1/admin/passkeys');
      const list = (res.body as { passkeys: Array<{ passkey: string }> }).passkeys;
      expect(list.map((p) => p.passkey).sort()).toEqual(
        [alice.passkey, 'bob-key-0001', 'carol-forever', anonymous].sort(),
      );
      expect(list.find((p) => p.passkey === 'carol-forever')).toEqual({
        passkey: 'carol-forever',
        createdAt: new Date(START).toISOString(),
        expiresAt: null,
      });
      const snapshot = (await call('GET', '/v1/policy')).body as PolicySnapshot;
      expect(snapshot.passkeys).toContainEqual([alice.passkey, START + 86_400_000]);
      expect(snapshot.passkeys).toContainEqual(['carol-forever', null]);

      for (const p of [alice.passkey, 'bob-key-0001', 'carol-forever', anonymous]) {
        expect((await call('DELETE', `/v1/admin/passkeys/${p}`)).body).toEqual({ existed: true });
      }
      expect((await call('DELETE', '/v1/admin/passkeys/carol-forever')).body).toEqual({
        existed: false,
      });
      expect((await call('GET', '/v1/admin/passkeys')).body).toEqual({ passkeys: [] });
    });

    it('refuses bad passkeys, users and expiries with coded 400s', async () => {
      now = START;
      const cases: Array<[object, string]> = [
        [{ passkey: 'short' }, 'POLICY_ERR_BAD_PASSKEY'],
        [{ passkey: 'has space in it' }, 'POLICY_ERR_BAD_PASSKEY'],
        [{ passkey: 12345678 }, 'POLICY_ERR_BAD_PASSKEY'],
        [{ user: 'u'.repeat(257) }, 'POLICY_ERR_BAD_ENTRY'],
        [{ ttlSeconds: 0 }, 'POLICY_ERR_BAD_EXPIRY'],
        [{ ttlSeconds: -5 }, 'POLICY_ERR_BAD_EXPIRY'],
        [{ ttlSeconds: 1.5 }, 'POLICY_ERR_BAD_EXPIRY'],
        [{ ttlSeconds: '60' }, 'POLICY_ERR_BAD_EXPIRY'],
        [{ expiresAt: '2029-12-31T23:59:59Z' }, 'POLICY_ERR_BAD_EXPIRY'],
        [{ expiresAt: 'next tuesday' }, 'POLICY_ERR_BAD_EXPIRY'],
        [{ expiresAt: '2031-01-01T00:00:00' }, 'POLICY_ERR_BAD_EXPIRY'],
        [{ expiresAt: 1_900_000_000_000 }, 'POLICY_ERR_BAD_EXPIRY'],
        [{ ttlSeconds: 60, expiresAt: '2031-01-01T00:00:00Z' }, 'POLICY_ERR_BAD_EXPIRY'],
        [{ role: 'admin' }, 'POLICY_ERR_BAD_ENTRY'],
      ];
      for (const [payload, code] of cases) {
        const res = await call('POST', '/v1/admin/passkeys', payload);
        expect(res.status, JSON.stringify(payload)).toBe(400);
        expect(res.body, JSON.stringify(payload)).toMatchObject({ code });
      }
      const res = await call('DELETE', '/v1/admin/passkeys/no');
      expect(res).toMatchObject({ status: 400, body: { code: 'POLICY_ERR_BAD_PASSKEY' } });
      expect((await call('GET', '/v1/admin/passkeys')).body).toEqual({ passkeys: [] });
    });

    it('imports passkeys with ISO expiries; replace removes the others; bad rows fail it whole', async () => {
      now = START;
      await call('POST', '/v1/admin/passkeys', { passkey: 'old-key-0001' });
      let res = await call('POST', '/v1/admin/passkeys/import', {
        passkeys: [
          { passkey: 'user-key-0001', user: 'dave', expiresAt: '2030-02-01T00:00:00Z' },
          { passkey: 'user-key-0002' },
          { passkey: 'old-key-0001', expiresAt: null },
        ],
      });
      expect(res.body).toEqual({ added: 2, updated: 1, removed: 0 });
      res = await call('POST', '/v1/admin/passkeys/import', {
        passkeys: [
          { passkey: 'user-key-0003' },
          { passkey: 'bad' },
          { passkey: 'user-key-0004', expiresAt: '2001-01-01T00:00:00Z' },
        ],
        replace: true,
      });
      expect(res).toMatchObject({
        status: 400,
        body: {
          problems: [
            { index: 1, code: 'POLICY_ERR_BAD_PASSKEY', value: 'bad' },
            { index: 2, code: 'POLICY_ERR_BAD_EXPIRY', value: 'user-key-0004' },
          ],
        },
      });
      res = await call('POST', '/v1/admin/passkeys/import', {
        passkeys: [{ passkey: 'user-key-0001', user: 'dave', expiresAt: '2030-03-01T00:00:00Z' }],
        replace: true,
      });
      expect(res.body).toEqual({ added: 0, updated: 1, removed: 2 });
      expect((await call('GET', '/v1/admin/passkeys')).body).toEqual({
        passkeys: [
          {
            passkey: 'user-key-0001',
            user: 'dave',
            createdAt: new Date(START).toISOString(),
            expiresAt: '2030-03-01T00:00:00.000Z',
          },
        ],
      });
      await call('POST', '/v1/admin/passkeys/import', { passkeys: [], replace: true });
    });
  });

  describe('GET /v1/policy', () => {
    it('answers the snapshot with ETag "<revision>", and 304 without reading the lists while it holds', async () => {
      let res = await call('GET', '/v1/policy', undefined, GATEWAY);
      expect(res.status).toBe(200);
      const first = res.body as PolicySnapshot;
      expect(res.headers.etag).toBe(`"${first.revision}"`);

      const lists = data.lists;
      res = await call('GET', '/v1/policy', undefined, {
        ...GATEWAY,
        'if-none-match': `"${first.revision}"`,
      });
      expect(res.status).toBe(304);
      expect(res.body).toBeUndefined();
      expect(res.headers.etag).toBe(`"${first.revision}"`);
      // The cheap path: one revision read, no list of any context.
      expect(data.lists).toBe(lists);
      // Weak and listed tags match too (RFC 9110).
      for (const tag of [`W/"${first.revision}"`, `"other", "${first.revision}"`, '*']) {
        res = await call('GET', '/v1/policy', undefined, { ...GATEWAY, 'if-none-match': tag });
        expect(res.status, tag).toBe(304);
      }

      await call('PUT', `/v1/admin/approval/torrents/deny/${hex(99)}`);
      res = await call('GET', '/v1/policy', undefined, {
        ...GATEWAY,
        'if-none-match': `"${first.revision}"`,
      });
      expect(res.status).toBe(200);
      const second = res.body as PolicySnapshot;
      expect(second.revision).not.toBe(first.revision);
      expect(res.headers.etag).toBe(`"${second.revision}"`);
      expect(second.torrents.deny).toContain(hex(99));
      await call('DELETE', `/v1/admin/approval/torrents/deny/${hex(99)}`);
    });

    it('a data backend outage is a coded 503, not a stale or empty policy', async () => {
      data.down = true;
      let res = await call('GET', '/v1/policy', undefined, GATEWAY);
      expect(res).toMatchObject({ status: 503, body: { code: 'STORE_ERR_UNAVAILABLE' } });
      res = await call('PUT', `/v1/admin/approval/torrents/deny/${hex(5)}`);
      expect(res).toMatchObject({ status: 503, body: { code: 'STORE_ERR_UNAVAILABLE' } });
      res = await call('GET', '/v1/admin/passkeys');
      expect(res).toMatchObject({ status: 503, body: { code: 'STORE_ERR_UNAVAILABLE' } });
    });
  });

  describe('stats, top, doctor', () => {
    it('stats and top count live peers; top adds download counts and sorts by peers', async () => {
      now = START;
      const ops: RpcAnnounce[] = [];
      // swarm 1: 5 peers (2 completed), swarm 2: 3 peers (1 v6), swarm 3: 1 peer.
      for (let n = 1; n <= 5; n++)
        ops.push(announce(n, 1, n <= 2 ? { event: 'completed', seeder: true } : {}));
      for (let n = 6; n <= 7; n++) ops.push(announce(n, 2));
      ops.push(announce(8, 2, { family: 6, address: Buffer.alloc(16, 8), seeder: true }));
      ops.push(announce(9, 3));
      const batch = await app.api.inject({
        method: 'POST',
        url: '/v1/batch',
        headers: {
          ...GATEWAY,
          'content-type': STORAGE_RPC_CONTENT_TYPE,
          'x-shoal-rpc-version': String(STORAGE_RPC_VERSION),
        },
        payload: encodeBatchRequest(ops),
      });
      expect(batch.statusCode, batch.body).toBe(200);

      expect((await call('GET', '/v1/admin/stats')).body).toEqual({
        torrents: 3,
        seeders: { v4: 2, v6: 1 },
        leechers: { v4: 6, v6: 0 },
      });
      let res = await call('GET', '/v1/admin/top');
      expect(res.body).toEqual({
        torrents: [
          { infoHash: hex(1), seeders: 2, leechers: 3, downloaded: 2 },
          { infoHash: hex(2), seeders: 1, leechers: 2, downloaded: 0 },
          { infoHash: hex(3), seeders: 0, leechers: 1, downloaded: 0 },
        ],
      });
      res = await call('GET', '/v1/admin/top?limit=2');
      expect((res.body as { torrents: unknown[] }).torrents).toHaveLength(2);
      for (const bad of ['0', '1001', 'ten', '-1', '2.5', '']) {
        res = await call('GET', `/v1/admin/top?limit=${bad}`);
        expect(res.status, bad).toBe(400);
        expect(res.body, bad).toMatchObject({ code: 'POLICY_ERR_BAD_ENTRY' });
      }
      res = await call('GET', '/v1/admin/top?limit=1000');
      expect((res.body as { torrents: unknown[] }).torrents).toHaveLength(3);
    });

    it('doctor answers the checks and the server time', async () => {
      now = START + 42;
      expect((await call('GET', '/v1/admin/doctor')).body).toEqual({
        checks: [{ name: 'memory: reachable', status: 'ok', message: 'answers' }],
        serverTimeMs: START + 42,
      });
    });

    it('counts admin and policy requests under their own endpoint labels', async () => {
      const text = await registry.metrics();
      expect(text).toMatch(
        /shoal_storage_rpc_requests_total\{endpoint="admin",outcome="ok"\} [1-9]/,
      );
      expect(text).toMatch(
        /shoal_storage_rpc_requests_total\{endpoint="admin",outcome="rejected"\} [1-9]/,
      );
      expect(text).toMatch(
        /shoal_storage_rpc_requests_total\{endpoint="policy",outcome="ok"\} [1-9]/,
      );
    });
  });
});

describe('storage-api admin API, default doctor', () => {
  it('runs @shoal/storage/doctor on the configured backends', async () => {
    const app = buildStorageApi({
      config: config({ STORAGE_API_ADMIN_TOKEN: ADMIN_TOKEN }),
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
    });
    try {
      const res = await app.api.inject({ method: 'GET', url: '/v1/admin/doctor', headers: ADMIN });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json<{
        checks: Array<{ name: string; status: string; message: string }>;
        serverTimeMs: number;
      }>();
      expect(body.checks.length).toBeGreaterThan(0);
      for (const c of body.checks) {
        expect(['ok', 'warn', 'fail']).toContain(c.status);
        expect(typeof c.name).toBe('string');
        expect(typeof c.message).toBe('string');
      }
      expect(Math.abs(body.serverTimeMs - Date.now())).toBeLessThan(60_000);
    } finally {
      await app.close();
    }
  });
});
