// Split backends against real servers: peers in Redis, downloads,
// KV and leases in PostgreSQL, as the chart deploys it (with CockroachDB).
// Reads go straight to PostgreSQL through a second driver handle, so the
// assertions see what is durable, not what storage-api remembers.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RpcAnnounce, RpcOp } from '@shoal/protocol/storage-rpc';
import { createPostgresStore, type PostgresStore } from '@shoal/storage/postgres';
import { startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import { buildStorageApi, type StorageApi } from './app.ts';
import { openStores, type Stores } from './storage.ts';
import { postBatch, testConfig } from '../test/support.ts';

const run = promisify(execFile);
const TOKEN = 'split-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const hash = (n: number) => Buffer.alloc(20, n);

function announce(peer: number, infoHash: Buffer, over: Partial<RpcAnnounce> = {}): RpcAnnounce {
  return {
    op: 'announce',
    infoHash,
    peerId: Buffer.from(`-SPLIT0-${String(peer).padStart(12, '0')}`),
    family: 4,
    address: Buffer.from([10, 1, 0, peer]),
    port: 6881,
    seeder: false,
    event: 'started',
    numWant: 50,
    withPeerIds: false,
    ...over,
  };
}

describe('storage-api with peers in Redis and durable data in PostgreSQL', () => {
  let redis: RedisServer;
  let postgres: PostgresServer;
  let stores: Stores;
  let direct: PostgresStore;
  let app: StorageApi;
  let base = '';
  let admin = '';

  beforeAll(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
    const databaseUrl = await postgres.createDatabase();
    const config = testConfig(TOKEN, {
      PEER_STORE_DRIVER: 'redis',
      DATA_STORE_DRIVER: 'postgres',
      REDIS_ADDRESSES: redis.address,
      REDIS_PASSWORD: redis.password ?? '',
      DATABASE_URL: databaseUrl,
      PG_RETRY_MAX_ATTEMPTS: '1',
    });
    const logger = pino({ level: 'silent' });
    stores = await openStores(config, logger);
    app = buildStorageApi({ config, logger, registry: new Registry(), ...stores });
    const { port, adminPort } = await app.listen();
    base = `http://127.0.0.1:${port}`;
    admin = `http://127.0.0.1:${adminPort}`;
    direct = await createPostgresStore(
      { DATABASE_URL: databaseUrl },
      { peerLifetimeSeconds: 1860 },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await stores?.close();
    await direct?.close();
    await redis?.close();
    await postgres?.stop();
  });

  const batch = (ops: RpcOp[]) => postBatch(base, TOKEN, ops);

  it('counts a completed download once in PostgreSQL; re-announcing adds nothing', async () => {
    const h = hash(1);
    await batch([announce(1, h)]);
    const [done] = await batch([announce(1, h, { event: 'completed', seeder: true })]);
    expect(done).toMatchObject({ ok: true, seeders: 1, leechers: 0, downloaded: 1 });
    expect(await direct.downloads([h])).toEqual([1]);

    const again = await batch([
      announce(1, h, { event: 'completed', seeder: true }),
      announce(1, h, { seeder: true, event: 'none' }),
    ]);
    expect(again).toMatchObject([{ downloaded: 1 }, { downloaded: 1 }]);
    expect(await direct.downloads([h])).toEqual([1]);

    // Two more peers completing in one batch: two more, and the batch's answers agree.
    const two = await batch([
      announce(2, h, { event: 'completed', seeder: true }),
      announce(3, h, { event: 'completed', seeder: true }),
      { op: 'scrape', infoHashes: [h] },
    ]);
    expect(await direct.downloads([h])).toEqual([3]);
    expect(two[0]).toMatchObject({ downloaded: 3 });
    expect(two[1]).toMatchObject({ downloaded: 3 });
  });

  it('keeps download counts when Redis loses every peer', async () => {
    const h = hash(2);
    await batch([announce(4, h, { event: 'completed', seeder: true })]);
    await run('redis-cli', [
      '-h',
      redis.host,
      '-p',
      String(redis.port),
      '--no-auth-warning',
      '-a',
      redis.password ?? '',
      'FLUSHALL',
    ]);
    const [scrape] = await batch([{ op: 'scrape', infoHashes: [h] }]);
    expect(scrape).toEqual({
      ok: true,
      op: 'scrape',
      counts: [{ seeders: 0, leechers: 0, downloaded: 1, partialSeeds: 0 }],
    });
    const res = await fetch(`${base}/v1/downloads?info_hash=${h.toString('hex')}`, {
      headers: AUTH,
    });
    expect(await res.json()).toEqual({ downloads: { [h.toString('hex')]: 1 } });
  });

  it('writes KV entries and leases to PostgreSQL', async () => {
    const put = await fetch(`${base}/v1/kv/passkeys/alice`, {
      method: 'PUT',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ value: 'secret-passkey' }),
    });
    expect(put.status).toBe(200);
    expect(await direct.get('passkeys', 'alice')).toBe('secret-passkey');
    const lease = await fetch(`${base}/v1/leases/gc-worker`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ holder: 'pod-a', ttlMs: 30_000 }),
    });
    expect(await lease.json()).toMatchObject({ held: true, holder: 'pod-a' });
  });

  it('reports not ready while PostgreSQL is down, keeps serving peers, and catches up after', async () => {
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    await postgres.stopServer();
    try {
      const down = await fetch(`${admin}/readyz`);
      expect(down.status).toBe(503);
      expect(await down.json()).toMatchObject({
        status: 'not ready',
        checks: { peers: { driver: 'redis', ok: true }, data: { driver: 'postgres', ok: false } },
      });
      // Peers live in Redis: announces still work, and the download they count waits.
      const h = hash(3);
      const [r] = await batch([announce(5, h, { event: 'completed', seeder: true })]);
      expect(r).toMatchObject({ ok: true, seeders: 1 });
      const kv = await fetch(`${base}/v1/kv/passkeys/alice`, { headers: AUTH });
      expect(kv.status).toBe(503);
      expect(await kv.json()).toMatchObject({ code: 'STORE_ERR_UNAVAILABLE' });
    } finally {
      await postgres.start();
    }
    await vi.waitFor(async () => expect((await fetch(`${admin}/readyz`)).status).toBe(200), {
      timeout: 20_000,
      interval: 200,
    });
    // The next batch delivers the download counted during the outage, once.
    const [scrape] = await batch([{ op: 'scrape', infoHashes: [hash(3)] }]);
    expect(scrape).toMatchObject({ counts: [{ seeders: 1, downloaded: 1 }] });
    expect(await direct.downloads([hash(3)])).toEqual([1]);
  }, 60_000);
});
