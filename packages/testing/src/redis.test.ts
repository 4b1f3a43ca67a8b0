// The harness starts real servers from the production confs and leaves
// nothing behind.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REDIS_CONF, startRedis } from './redis.ts';

describe('redis harness', () => {
  it('runs redis-server from deploy/redis/redis.conf with its production settings and a password', async () => {
    const server = await startRedis();
    try {
      const get = async (name: string): Promise<string | undefined> =>
        (await server.cli('CONFIG', 'GET', name)).split('\n')[1];
      expect(await get('appendonly')).toBe('yes');
      expect(await get('appendfsync')).toBe('everysec');
      expect(await get('aof-use-rdb-preamble')).toBe('yes');
      expect(await get('maxmemory-policy')).toBe('volatile-lru');
      expect(await get('zset-max-listpack-entries')).toBe('1024');
      expect(await get('protected-mode')).toBe('yes');
      expect(await get('requirepass')).toBe(server.password);
    } finally {
      await server.close();
    }
    expect(server.running).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
  });

  it('a killed server starts again on the same port with its AOF data', async () => {
    const server = await startRedis();
    try {
      await server.cli('SET', 'durable', '1');
      // appendfsync everysec: a clean stop flushes the AOF.
      await server.stop();
      await server.start();
      expect(await server.cli('GET', 'durable')).toBe('1');
    } finally {
      await server.close();
    }
  });

  it('never rewrites the production conf (servers run from a copy)', async () => {
    const before = await readFile(REDIS_CONF, 'utf8');
    const server = await startRedis();
    await server.cli('CONFIG', 'REWRITE');
    await server.close();
    expect(await readFile(REDIS_CONF, 'utf8')).toBe(before);
  });
});
