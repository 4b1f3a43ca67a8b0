// The gateway's admin port over a real socket: the policy admin API refuses
// anyone without ADMIN_API_TOKEN with a coded 401 on every route it mounts,
// the probes stay open, and the port carries the fixed admin limits of
// docs/limits.md.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_HTTP_LIMITS } from '@shoal/service/http-limits';
import { makeGateway, type TestGateway } from '../test/support.ts';

const TOKEN = 'gateway-admin-token-0123';
const HOST = '127.0.0.1';

/** Sample values for the admin routes' path parameters. */
const PARAMS: Record<string, string> = {
  kind: 'torrents',
  list: 'deny',
  value: '01'.repeat(20),
  passkey: 'abcdefgh12',
};

describe('gateway admin port', () => {
  let t: TestGateway;
  let port: number;
  const routes: Array<[string, string]> = [];

  beforeAll(async () => {
    t = makeGateway({ ADMIN_API_TOKEN: TOKEN, UDP_ENABLED: 'false' });
    // The policy admin routes are mounted in a plugin, at ready(): this hook sees each one.
    t.gateway.admin.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const url = route.url.replace(/:(\w+)/g, (_, p: string) => PARAMS[p] ?? p);
      for (const method of methods) if (method !== 'HEAD') routes.push([method, url]);
    });
    port = (await t.gateway.listen()).adminPort;
  });
  afterAll(() => t.close());

  it('refuses every policy admin route without the token, or with a wrong one, with a coded 401', async () => {
    expect(routes.map(([m, u]) => `${m} ${u}`)).toEqual(
      expect.arrayContaining([
        'GET /v1/admin/approval/torrents/deny',
        'POST /v1/admin/passkeys',
        'GET /v1/admin/stats',
        'GET /v1/admin/doctor',
      ]),
    );
    for (const authorization of [
      undefined,
      'Bearer wrong-token-0123456789',
      TOKEN,
      `Basic ${TOKEN}`,
    ]) {
      for (const [method, url] of routes) {
        const res = await fetch(`http://${HOST}:${port}${url}`, {
          method,
          headers: {
            ...(authorization === undefined ? {} : { authorization }),
            ...(method === 'GET' || method === 'DELETE'
              ? {}
              : { 'content-type': 'application/json' }),
          },
          body: method === 'GET' || method === 'DELETE' ? null : '{}',
          signal: AbortSignal.timeout(10_000),
        });
        expect(res.status, `${method} ${url} with ${authorization}`).toBe(401);
        expect(await res.json()).toMatchObject({ code: 'GATEWAY_ERR_UNAUTHORIZED' });
      }
    }
    // The probes and metrics need no token.
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const res = await fetch(`http://${HOST}:${port}${path}`, {
        signal: AbortSignal.timeout(10_000),
      });
      expect(res.status, path).toBe(200);
    }
  });

  it('carries the fixed admin limits, and answers an oversize header with 431', async () => {
    const server = t.gateway.admin.server;
    expect({
      requestTimeout: server.requestTimeout,
      headersTimeout: server.headersTimeout,
      keepAliveTimeout: server.keepAliveTimeout,
      maxConnections: server.maxConnections,
    }).toEqual({
      requestTimeout: ADMIN_HTTP_LIMITS.requestTimeoutMs,
      headersTimeout: ADMIN_HTTP_LIMITS.requestTimeoutMs,
      keepAliveTimeout: ADMIN_HTTP_LIMITS.keepAliveTimeoutMs,
      maxConnections: ADMIN_HTTP_LIMITS.maxConnections,
    });
    const answer = await new Promise<string>((resolve, reject) => {
      let data = '';
      const socket = connect(port, HOST, () =>
        socket.write(
          `GET /healthz HTTP/1.1\r\nHost: admin\r\nX-Filler: ${'a'.repeat(ADMIN_HTTP_LIMITS.maxHeaderBytes)}\r\n\r\n`,
        ),
      );
      socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
      socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', () => resolve(data));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    const health = await fetch(`http://${HOST}:${port}/healthz`, {
      signal: AbortSignal.timeout(10_000),
    });
    expect(health.status).toBe(200);
  });
});
