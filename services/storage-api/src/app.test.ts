import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { buildStorageApi } from './app.ts';
import { loadStorageApiConfig } from './config.ts';

describe('storage-api skeleton', () => {
  const config = loadStorageApiConfig({
    env: { ADMIN_HOST: '127.0.0.1', ADMIN_PORT: '0' },
    argv: [],
  });
  const app = buildStorageApi({
    config,
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
  });
  afterAll(() => app.close());

  it('answers /healthz, /readyz once listening, and /metrics with process metrics', async () => {
    const notYet = await app.admin.inject({ method: 'GET', url: '/readyz' });
    expect(notYet.statusCode).toBe(503);

    const { adminPort } = await app.listen();
    const base = `http://127.0.0.1:${adminPort}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(await metrics.text()).toContain('process_cpu_user_seconds_total');
  });

  it('refuses a config with an invalid admin port, naming the variable', () => {
    expect(() => loadStorageApiConfig({ env: { ADMIN_PORT: 'eighty' }, argv: [] })).toThrow(
      /ADMIN_PORT/,
    );
  });
});
