// How the connections of one backend share the calls while some of them
// reconnect: a call never lands on a connection waiting out its back-off
// while another connection to the same server is ready.
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import { RECONNECT_MAX_DELAY_MS, createBackend, reconnectDelay } from './connection.ts';
import { redisStoreConfig } from './index.ts';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server.close();
});

describe('redis connections of one backend', () => {
  it('the reconnect back-off grows from 50 ms and never exceeds its cap', () => {
    expect(reconnectDelay(1)).toBe(50);
    expect(reconnectDelay(2)).toBe(100);
    for (let times = 1; times < 10_000; times++)
      expect(reconnectDelay(times)).toBeLessThanOrEqual(RECONNECT_MAX_DELAY_MS);
    expect(reconnectDelay(10_000)).toBe(RECONNECT_MAX_DELAY_MS);
  });

  it('calls go to the ready connections while one waits out its back-off, and to all of them once it is back', async () => {
    const config = redisStoreConfig({
      REDIS_ADDRESSES: [server.address],
      REDIS_PASSWORD: server.password,
      REDIS_CONNECTIONS_PER_NODE: 3,
    });
    const backend = createBackend(
      { name: 'standalone', mode: 'standalone', address: { host: server.host, port: server.port } },
      config,
      () => undefined,
    );
    try {
      await backend.ready(config.REDIS_CONNECT_TIMEOUT_MS);
      const all = new Set([backend.next(), backend.next(), backend.next()]);
      expect(all.size).toBe(3);
      const lagging = backend.next();
      // A connection lost on its own (server-side kill, idle timeout, a
      // proxy): it reconnects after its back-off, the others stay up.
      lagging.disconnect(true);
      await once(lagging, 'reconnecting');
      expect(lagging.status).toBe('reconnecting');
      // Taken synchronously, so all of them inside the back-off window.
      const picked = Array.from({ length: 30 }, () => backend.next());
      expect(picked).not.toContain(lagging);
      expect(new Set(picked).size).toBe(2);
      const answers = await Promise.all(picked.map((c) => c.ping()));
      expect(answers.every((a) => a === 'PONG')).toBe(true);
      if (lagging.status !== 'ready') await once(lagging, 'ready');
      expect(new Set(Array.from({ length: 3 }, () => backend.next()))).toEqual(all);
    } finally {
      backend.close();
    }
  });
});
