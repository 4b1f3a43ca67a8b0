import { describe, expect, it } from 'vitest';
import { createSharedRateLimiter, type RateCountsSync } from './shared-rate-limit.ts';

const A = Buffer.from([192, 0, 2, 1]);
const B = Buffer.from([192, 0, 2, 2]);
const W = 10_000;
/** The start of a window. */
const T = 1000 * W;

/** The store side, as a driver keeps it: counts per window and key. */
function counters(): { send: RateCountsSync; count(window: number, key: string): number } {
  const windows = new Map<number, Map<string, number>>();
  const at = (w: number) => windows.get(w) ?? new Map<string, number>();
  return {
    send: (window, _windowMs, keys, deltas) => {
      const current = at(window);
      windows.set(window, current);
      keys.forEach((k, i) => current.set(k, (current.get(k) ?? 0) + deltas[i]!));
      return Promise.resolve({
        current: keys.map((k) => current.get(k) ?? 0),
        previous: keys.map((k) => at(window - 1).get(k) ?? 0),
      });
    },
    count: (w, k) => at(w).get(k) ?? 0,
  };
}

const limiter = (limit: number) =>
  createSharedRateLimiter({ limit, windowMs: W, maxAddresses: 100, maxKeysPerSync: 1000 });

function drain(take: () => boolean, max = 1000): number {
  let n = 0;
  while (n < max && take()) n++;
  return n;
}

describe('createSharedRateLimiter', () => {
  it('admits the limit in a window, then weighs the previous window as it slides away', () => {
    const rl = limiter(10);
    expect(drain(() => rl.take(4, A, T))).toBe(10);
    expect(rl.take(4, B, T)).toBe(true);
    // Half the next window gone: 10 * 0.5 of the previous still counts.
    expect(drain(() => rl.take(4, A, T + W + W / 2))).toBe(5);
    // Two windows later nothing of it is left.
    expect(drain(() => rl.take(4, A, T + 3 * W))).toBe(10);
  });

  it('two gateways syncing their counts keep one address near the limit together', async () => {
    const store = counters();
    const [g1, g2] = [limiter(20), limiter(20)];
    let admitted = 0;
    // Each gateway admits at most 3 between two syncs (its own share of a sync period).
    for (let round = 0; round < 20; round++) {
      const now = T + round * 100;
      for (const g of [g1, g2]) for (let k = 0; k < 3; k++) if (g.take(4, A, now)) admitted++;
      await g1.sync(now, store.send);
      await g2.sync(now, store.send);
    }
    // The documented bound: limit + (replicas - 1) * admits per sync period.
    expect(admitted).toBeGreaterThanOrEqual(20);
    expect(admitted).toBeLessThanOrEqual(20 + 3);
    expect(store.count(T / W, '4-c0000201')).toBe(admitted);
    // Alone, each would have admitted 20.
    const alone = limiter(20);
    expect(drain(() => alone.take(4, A, T))).toBe(20);
  });

  it('learns the other gateways counts of an address from its first sync of it', async () => {
    const store = counters();
    const [g1, g2] = [limiter(10), limiter(10)];
    expect(drain(() => g1.take(4, A, T))).toBe(10);
    await g1.sync(T, store.send);
    expect(g2.take(4, A, T + 1)).toBe(true);
    await g2.sync(T + 1, store.send);
    expect(g2.take(4, A, T + 2)).toBe(false);
    expect(store.count(T / W, '4-c0000201')).toBe(11);
  });

  it('keeps the counts of a failed sync for the next one and never refuses beyond its own counts', async () => {
    const store = counters();
    const rl = limiter(10);
    const down: RateCountsSync = () => Promise.reject(new Error('store down'));
    expect(drain(() => rl.take(4, A, T), 4)).toBe(4);
    await expect(rl.sync(T, down)).rejects.toThrow('store down');
    expect(drain(() => rl.take(4, A, T + 1))).toBe(6);
    expect(await rl.sync(T + 2, store.send)).toEqual({ keys: 1 });
    expect(store.count(T / W, '4-c0000201')).toBe(10);
    // A store down for windows on end: the gateway goes on with its own counts.
    expect(drain(() => rl.take(4, A, T + 2 * W))).toBe(10);
    await expect(rl.sync(T + 2 * W, down)).rejects.toThrow('store down');
    expect(drain(() => rl.take(4, A, T + 4 * W))).toBe(10);
  });

  it('applies an answer that arrives after its window ended as the previous window', async () => {
    const rl = limiter(10);
    let release: (v: { current: number[]; previous: number[] }) => void = () => undefined;
    const slow: RateCountsSync = () => new Promise((resolve) => (release = resolve));
    expect(drain(() => rl.take(4, A, T), 2)).toBe(2);
    const pending = rl.sync(T, slow);
    // The window ends; meanwhile other gateways brought the address to 10.
    expect(rl.take(4, A, T + W)).toBe(true);
    release({ current: [10], previous: [0] });
    await pending;
    // 10 * (1 - 0.5) + 1 taken: 4 more fit.
    expect(drain(() => rl.take(4, A, T + W + W / 2))).toBe(4);
  });

  it('forgets the least recently seen address beyond maxAddresses', () => {
    const rl = createSharedRateLimiter({
      limit: 1,
      windowMs: W,
      maxAddresses: 1,
      maxKeysPerSync: 10,
    });
    expect(rl.take(4, A, T)).toBe(true);
    expect(rl.take(4, B, T)).toBe(true);
    expect(rl.size).toBe(1);
    expect(rl.take(4, A, T)).toBe(true);
  });

  it('sends at most maxKeysPerSync keys per sync and the rest at the next', async () => {
    const store = counters();
    const rl = createSharedRateLimiter({
      limit: 5,
      windowMs: W,
      maxAddresses: 100,
      maxKeysPerSync: 1,
    });
    rl.take(4, A, T);
    rl.take(4, B, T);
    expect(await rl.sync(T, store.send)).toEqual({ keys: 1 });
    expect(await rl.sync(T, store.send)).toEqual({ keys: 1 });
    expect(await rl.sync(T, store.send)).toEqual({ keys: 0 });
  });

  it('refuses nonsense options', () => {
    expect(() => limiter(0)).toThrow(RangeError);
  });
});
