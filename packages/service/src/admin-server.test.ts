import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { buildAdminServer, type AdminServer, type Readiness } from './admin-server.ts';

describe('buildAdminServer', () => {
  let admin: AdminServer | undefined;
  afterEach(async () => {
    await admin?.close();
    admin = undefined;
  });

  async function readyz(): Promise<{ status: number; body: unknown }> {
    const res = await admin!.app.inject({ method: 'GET', url: '/readyz' });
    return { status: res.statusCode, body: res.json() };
  }

  it('answers /readyz in one format through the life cycle, asking the service only while it serves', async () => {
    let answer: Readiness = { status: 'ready', checks: { store: { ok: true, driver: 'memory' } } };
    let asked = 0;
    admin = buildAdminServer({
      registry: new Registry(),
      ready: () => {
        asked++;
        return Promise.resolve(answer);
      },
    });
    expect(await readyz()).toEqual({
      status: 503,
      body: {
        status: 'not ready',
        code: 'SERVICE_ERR_NOT_LISTENING',
        message: 'not listening yet',
      },
    });
    const port = await admin.listen('127.0.0.1', 0);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    admin.serving();
    expect(await readyz()).toEqual({ status: 200, body: answer });
    answer = { status: 'degraded', code: 'STORE_ERR_UNAVAILABLE', message: 'store down' };
    expect(await readyz()).toEqual({ status: 200, body: answer });
    answer = { status: 'not ready', code: 'STORE_ERR_TIMEOUT', message: 'store slow' };
    expect(await readyz()).toEqual({ status: 503, body: answer });
    admin.stopping();
    expect(await readyz()).toEqual({
      status: 503,
      body: { status: 'not ready', code: 'SERVICE_ERR_SHUTTING_DOWN', message: 'shutting down' },
    });
    expect(asked).toBe(3);
    const metrics = await admin.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
  });
});
