import { describe, expect, it } from 'vitest';
import {
  announceOf,
  describeDataStoreConformance,
  describePeerStoreConformance,
  infoHashOf,
} from '../../test/conformance.ts';
import { isStoreError } from '../errors.ts';
import type { GcResult } from '../types.ts';
import {
  attachSharedMemoryStore,
  auditSharedMemoryStore,
  createSharedMemoryStore,
  type SharedMemoryHandle,
} from './index.ts';

describePeerStoreConformance(
  'shared memory',
  (opts) => Promise.resolve(createSharedMemoryStore(opts).store),
  { keepsPeerIds: false },
);
describePeerStoreConformance('shared memory with peer ids, one shard, attached', (opts) => {
  const { handle, store } = createSharedMemoryStore({ ...opts, shards: 1, peerIds: true });
  void store.close();
  return Promise.resolve(attachSharedMemoryStore(handle, { clock: opts.clock }));
});
describeDataStoreConformance('shared memory', () =>
  Promise.resolve(createSharedMemoryStore({ peerLifetimeSeconds: 60 }).store),
);

function codeOf(fn: () => unknown): unknown {
  try {
    fn();
    return 'returned';
  } catch (err) {
    return isStoreError(err) ? err.code : err;
  }
}

describe('shared-memory store', () => {
  it('refuses bad options and handles with STORE_ERR_CONFIG', () => {
    for (const bad of [
      { peerLifetimeSeconds: 0 },
      { peerLifetimeSeconds: 60, shards: 0 },
      { peerLifetimeSeconds: 60, shards: 5000 },
      { peerLifetimeSeconds: 60, maxMemoryBytes: 2 ** 32 },
      { peerLifetimeSeconds: 60, maxKvBytes: 10 },
      { peerLifetimeSeconds: 60, maxOwners: 0 },
      { peerLifetimeSeconds: 60, maxRateCountBytes: 1000 },
      { peerLifetimeSeconds: 60, lockTimeoutMs: 0 },
      { peerLifetimeSeconds: 60, sweepEveryMs: 0.5 },
    ])
      expect(
        codeOf(() => createSharedMemoryStore(bad)),
        JSON.stringify(bad),
      ).toBe('STORE_ERR_CONFIG');
    const { handle } = createSharedMemoryStore({ peerLifetimeSeconds: 60 });
    for (const bad of [
      null,
      {},
      { ...handle, kind: 'other' },
      { ...handle, version: 99 },
      { ...handle, heap: new ArrayBuffer(8) },
      { ...handle, rate: undefined },
    ])
      expect(codeOf(() => attachSharedMemoryStore(bad as unknown as SharedMemoryHandle))).toBe(
        'STORE_ERR_CONFIG',
      );
    expect(codeOf(() => attachSharedMemoryStore(handle, { peerLifetimeSeconds: -1 }))).toBe(
      'STORE_ERR_CONFIG',
    );
  });

  it('attachments share peers, downloads and KV data; closing one leaves the others working', async () => {
    const { handle, store: a } = createSharedMemoryStore({ peerLifetimeSeconds: 60 });
    const b = attachSharedMemoryStore(handle);
    await a.announce(announceOf({ peer: 1, seeder: true, event: 'completed' }));
    expect(await b.announce(announceOf({ peer: 2 }))).toMatchObject({
      seeders: 1,
      leechers: 1,
      downloaded: 1,
    });
    await b.put('bans', 'k', 'v');
    expect(await a.get('bans', 'k')).toBe('v');
    await a.addRateCounts(7, 10_000, ['4-0a000001'], [2]);
    expect(await b.addRateCounts(7, 10_000, ['4-0a000001'], [1])).toEqual({
      current: [3],
      previous: [0],
    });
    await a.close();
    await expect(a.scrape([infoHashOf(1)])).rejects.toMatchObject({
      code: 'STORE_ERR_UNAVAILABLE',
    });
    expect(await b.scrape([infoHashOf(1)])).toEqual([
      { seeders: 1, leechers: 1, downloaded: 1, partialSeeds: 0 },
    ]);
    expect(await b.list('bans')).toEqual([['k', 'v']]);
    await b.close();
  });

  it('KV data survives compaction of its log, seen from every attachment', async () => {
    const { handle, store: a } = createSharedMemoryStore({ peerLifetimeSeconds: 60 });
    const b = attachSharedMemoryStore(handle);
    const value = 'x'.repeat(1000);
    // 600 overwrites of 10 keys leave ~600 kB of superseded records: compacted several times.
    for (let i = 0; i < 600; i++) await (i % 2 ? a : b).put('ctx', `k${i % 10}`, `${i}${value}`);
    await a.delete('ctx', 'k0');
    const expected = Array.from({ length: 9 }, (_, k) => [`k${k + 1}`, `${590 + k + 1}${value}`]);
    expect(await a.list('ctx')).toEqual(expected);
    expect(await b.list('ctx')).toEqual(expected);
    expect(handle.kv.byteLength).toBeLessThan(1 << 20);
    await a.close();
    await b.close();
  });

  it('sweeps on a timer in the thread given sweepEveryMs', async () => {
    let now = Date.UTC(2030, 0, 1);
    const sweeps: GcResult[] = [];
    const { store } = createSharedMemoryStore({
      peerLifetimeSeconds: 60,
      clock: () => now,
      sweepEveryMs: 5,
      onSweep: (r) => {
        if (r !== undefined) sweeps.push(r);
      },
    });
    await store.announce(announceOf({ peer: 1 }));
    now += 61_000;
    // Bounded poll; the sweep runs every 5 ms.
    for (let i = 0; i < 2000 && !sweeps.some((r) => r.peersRemoved === 1); i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    expect(sweeps).toContainEqual({ peersRemoved: 1, swarmsRemoved: 1 });
    expect(auditSharedMemoryStore(store)).toEqual([]);
    await store.close();
  });

  it('a full heap answers STORE_ERR_UNAVAILABLE and keeps what it holds', async () => {
    const { store } = createSharedMemoryStore({
      peerLifetimeSeconds: 60,
      maxMemoryBytes: 2 << 20,
      shards: 1,
    });
    let full: unknown;
    let stored = 0;
    // 2 MiB at ~100 B per single-peer swarm runs out within 40,000 swarms.
    for (let s = 1; s <= 40_000 && full === undefined; s++) {
      try {
        store.announceSync(announceOf({ swarm: s, peer: s }));
        stored++;
      } catch (err) {
        full = err;
      }
    }
    expect(isStoreError(full) && full.code).toBe('STORE_ERR_UNAVAILABLE');
    expect((await store.stats()).torrents).toBe(stored);
    expect(auditSharedMemoryStore(store)).toEqual([]);
    await store.close();
  });

  it('rate counters keep two windows of many keys, refuse more than maxRateCountBytes, and recover next window', async () => {
    const { handle, store } = createSharedMemoryStore({
      peerLifetimeSeconds: 60,
      maxRateCountBytes: 1 << 20,
    });
    const keys = (w: number, n: number) => Array.from({ length: n }, (_, k) => `4-${w}-${k}`);
    // 40 windows of 2,000 addresses each: the table holds about two windows, never all 80,000.
    for (let w = 100; w < 140; w++) {
      const ks = keys(w % 3, 2000);
      const got = await store.addRateCounts(
        w,
        10_000,
        ks,
        ks.map(() => 1),
      );
      expect(got.current.every((c) => c === 1)).toBe(true);
      // The same keys two windows ago are not the previous window's.
      expect(got.previous.every((c) => c === 0)).toBe(true);
      const again = await store.addRateCounts(w, 10_000, ks.slice(0, 5), [2, 2, 2, 2, 2]);
      expect(again.current).toEqual([3, 3, 3, 3, 3]);
    }
    const next = await store.addRateCounts(140, 10_000, ['4-0-0', '4-1-7'], [1, 1]);
    // Window 139 used keys(139 % 3 = 1): 4-1-7 had 1 there.
    expect(next).toEqual({ current: [1, 1], previous: [0, 1] });
    expect(handle.rate.byteLength).toBeLessThanOrEqual(1 << 20);
    // More addresses in two windows than 1 MiB holds (8,192 entries of 80 B, at most half full): refused, coded.
    let full: unknown;
    for (let k = 0; k < 5 && full === undefined; k++) {
      const ks = keys(10 + k, 4000);
      full = await store
        .addRateCounts(
          141,
          10_000,
          ks,
          ks.map(() => 1),
        )
        .then(
          () => undefined,
          (err: unknown) => err,
        );
    }
    expect(isStoreError(full) && full.code).toBe('STORE_ERR_UNAVAILABLE');
    // Two windows on, the full window is dead and dropped: counting works again.
    expect(await store.addRateCounts(143, 10_000, ['4-x'], [4])).toEqual({
      current: [4],
      previous: [0],
    });
    await store.close();
  });
});
