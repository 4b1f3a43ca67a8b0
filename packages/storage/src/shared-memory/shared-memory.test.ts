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

describePeerStoreConformance('shared memory', (opts) =>
  Promise.resolve(createSharedMemoryStore(opts).store),
);
describePeerStoreConformance('shared memory, one shard, attached', (opts) => {
  const { handle, store } = createSharedMemoryStore({ ...opts, shards: 1 });
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
});
