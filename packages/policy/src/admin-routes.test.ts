// The admin routes on a bare fastify instance, as a gateway's admin port
// mounts them: the caller's hook authenticates, PolicyErrors are answered by
// the routes' own context, anything else reaches the caller's error handler.
// storage-api's src/admin.test.ts covers every route end to end.
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreError } from '@shoal/storage';
import { createMemoryStore } from '@shoal/storage/memory';
import { registerPolicyAdminRoutes } from './admin-routes.ts';
import { createPolicyRepository } from './repository.ts';

const NOW = Date.UTC(2030, 0, 1);
const hash = 'ab'.repeat(20);

function setup(extra: Parameters<typeof registerPolicyAdminRoutes>[1] | object = {}) {
  const data = createMemoryStore({ peerLifetimeSeconds: 60 });
  const repo = createPolicyRepository(data, () => NOW);
  const app = Fastify();
  const seen: string[] = [];
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.authorization !== 'Bearer admin') {
      await reply.code(401).send({ code: 'NO' });
    }
  });
  app.setErrorHandler(async (err: { code?: string }, _request, reply) => {
    seen.push(err.code ?? 'unknown');
    return reply.code(599).send({ code: 'CALLER', message: 'caller handled it' });
  });
  registerPolicyAdminRoutes(app, { repo, clock: () => NOW, ...extra });
  return { app, data, seen };
}

const apps: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

describe('registerPolicyAdminRoutes', () => {
  it("runs behind the caller's authentication hook", async () => {
    const { app } = setup();
    apps.push(app);
    const refused = await app.inject({
      method: 'PUT',
      url: `/v1/admin/approval/torrents/deny/${hash}`,
    });
    expect(refused.statusCode).toBe(401);
    const ok = await app.inject({
      method: 'PUT',
      url: `/v1/admin/approval/torrents/deny/${hash}`,
      headers: { authorization: 'Bearer admin' },
    });
    expect(ok.json()).toEqual({ added: true });
    const list = await app.inject({
      method: 'GET',
      url: '/v1/admin/approval/torrents/deny',
      headers: { authorization: 'Bearer admin' },
    });
    expect(list.json()).toEqual({
      entries: [{ value: hash, addedAt: '2030-01-01T00:00:00.000Z' }],
    });
  });

  it('answers PolicyErrors itself and passes every other error to the caller', async () => {
    const { app, data, seen } = setup({
      stats: () => Promise.reject(new StoreError('STORE_ERR_TIMEOUT')),
    });
    apps.push(app);
    const headers = { authorization: 'Bearer admin' };
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/admin/passkeys',
      headers,
      payload: { ttlSeconds: 0 },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({
      code: 'POLICY_ERR_BAD_EXPIRY',
      message:
        'expiry must be a future time (ISO 8601 or ttlSeconds > 0) or null: ttlSeconds must be an integer in 1..3153600000 or null',
    });
    expect(seen).toEqual([]);
    const stats = await app.inject({ method: 'GET', url: '/v1/admin/stats', headers });
    expect(stats.statusCode).toBe(599);
    expect(seen).toEqual(['STORE_ERR_TIMEOUT']);
    await data.close();
    const closed = await app.inject({ method: 'GET', url: '/v1/admin/passkeys', headers });
    expect(closed.statusCode).toBe(599);
    expect(seen).toEqual(['STORE_ERR_TIMEOUT', 'STORE_ERR_UNAVAILABLE']);
    // fastify's own refusals (an unparseable body) are the caller's to word.
    const garbled = await app.inject({
      method: 'POST',
      url: '/v1/admin/passkeys',
      headers: { ...headers, 'content-type': 'application/json' },
      payload: '{"user":',
    });
    expect(garbled.statusCode).toBe(599);
  });

  it('mounts stats, top and doctor only when given', async () => {
    const { app } = setup();
    apps.push(app);
    const headers = { authorization: 'Bearer admin' };
    for (const url of ['/v1/admin/stats', '/v1/admin/top', '/v1/admin/doctor']) {
      expect((await app.inject({ method: 'GET', url, headers })).statusCode, url).toBe(404);
    }
    const withAll = setup({
      stats: () =>
        Promise.resolve({ torrents: 1, seeders: { v4: 1, v6: 0 }, leechers: { v4: 0, v6: 0 } }),
      top: {
        swarms: (limit: number) =>
          Promise.resolve([{ infoHash: Buffer.from(hash, 'hex'), seeders: limit, leechers: 0 }]),
        downloads: (hashes: Buffer[]) => Promise.resolve(hashes.map(() => 3)),
      },
      doctor: () =>
        Promise.resolve({ checks: [{ name: 'x', status: 'warn' as const, message: 'y' }] }),
    });
    apps.push(withAll.app);
    const get = async (url: string) =>
      (await withAll.app.inject({ method: 'GET', url, headers })).json<unknown>();
    expect(await get('/v1/admin/stats')).toMatchObject({ torrents: 1 });
    expect(await get('/v1/admin/top')).toEqual({
      torrents: [{ infoHash: hash, seeders: 10, leechers: 0, downloaded: 3 }],
    });
    expect(await get('/v1/admin/top?limit=7')).toMatchObject({ torrents: [{ seeders: 7 }] });
    expect(await get('/v1/admin/doctor')).toEqual({
      checks: [{ name: 'x', status: 'warn', message: 'y' }],
      serverTimeMs: NOW,
    });
  });
});
