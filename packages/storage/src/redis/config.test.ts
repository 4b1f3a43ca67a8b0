// Settings an operator gets wrong get one STORE_ERR_CONFIG listing every
// problem; ring placement is a fixed function every gateway replica agrees on.
import { describe, expect, it } from 'vitest';
import { isStoreError } from '../errors.ts';
import { ownerIndex, parseShard, redisStoreConfig } from './index.ts';

function problemOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isStoreError(err) && err.code).toBe('STORE_ERR_CONFIG');
    return (err as Error).message;
  }
  throw new Error('expected STORE_ERR_CONFIG');
}

describe('redis config', () => {
  it('defaults describe a local standalone server', () => {
    expect(redisStoreConfig()).toMatchObject({
      REDIS_MODE: 'standalone',
      REDIS_ADDRESSES: ['127.0.0.1:6379'],
      REDIS_DB: 0,
      REDIS_KEY_PREFIX: '',
      REDIS_CONNECTIONS_PER_NODE: 2,
      REDIS_STORE_PEER_IDS: false,
    });
  });

  it('lists every problem at once, by variable name', () => {
    const message = problemOf(() =>
      redisStoreConfig({
        REDIS_MODE: 'cluster',
        REDIS_DB: 3,
        REDIS_ADDRESSES: ['nohost'],
        REDIS_KEY_PREFIX: '{x}',
      }),
    );
    expect(message).toContain('REDIS_ADDRESSES');
    expect(message).toContain('REDIS_KEY_PREFIX');
  });

  it('mode-specific requirements are checked', () => {
    expect(problemOf(() => redisStoreConfig({ REDIS_MODE: 'sentinel' }))).toContain(
      'REDIS_SENTINELS',
    );
    expect(problemOf(() => redisStoreConfig({ REDIS_MODE: 'cluster', REDIS_DB: 2 }))).toContain(
      'REDIS_DB',
    );
    expect(problemOf(() => redisStoreConfig({ REDIS_MODE: 'ring' }))).toContain(
      'REDIS_RING_SHARDS',
    );
    expect(
      problemOf(() =>
        redisStoreConfig({ REDIS_MODE: 'ring', REDIS_RING_SHARDS: ['a=h:1', 'a=h:2'] }),
      ),
    ).toContain('duplicate');
  });

  it('ring shards are standalone servers or Sentinel sets', () => {
    expect(parseShard('a=10.0.0.1:6379')).toEqual({
      name: 'a',
      mode: 'standalone',
      address: { host: '10.0.0.1', port: 6379 },
    });
    expect(parseShard('b=sentinel:shoal-b@s1:26379|[::1]:26380')).toEqual({
      name: 'b',
      mode: 'sentinel',
      masterName: 'shoal-b',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
    });
  });

  it('ring placement: adding a shard only moves swarms to it, removing one only moves its own', () => {
    const hashes = Array.from({ length: 2000 }, (_, i) =>
      Buffer.alloc(20, i % 251).fill(i >> 8, 0, 1),
    );
    const three = ['a', 'b', 'c'];
    const four = ['a', 'b', 'c', 'd'];
    let moved = 0;
    for (const h of hashes) {
      const before = three[ownerIndex(three, h)];
      const after = four[ownerIndex(four, h)];
      if (before !== after) {
        moved++;
        expect(after).toBe('d');
      }
      const without = ['a', 'c'];
      if (before !== 'b') expect(without[ownerIndex(without, h)]).toBe(before);
    }
    // About a quarter of the swarms move to the new fourth shard.
    expect(moved / hashes.length).toBeGreaterThan(0.15);
    expect(moved / hashes.length).toBeLessThan(0.35);
  });
});
