// The composite store on two in-process backends: download counts kept in
// the data backend stay exact across batches, concurrent batches and a data
// backend outage. The real Redis + PostgreSQL pairing is tested in
// services/storage-api/src/split.test.ts.
import { describe, expect, it } from 'vitest';
import { announceOf, infoHashOf } from '../../test/conformance.ts';
import { StoreError } from '../errors.ts';
import { createMemoryStore, type MemoryStore } from '../memory/index.ts';
import type { PeerAnnounce } from '../types.ts';
import type { PingableDataStore } from '../capabilities.ts';
import { createCompositeStore, type BatchOp } from './index.ts';

/** The data backend, with a switch that makes it unreachable. */
function flaky(inner: MemoryStore): PingableDataStore & {
  down: boolean;
  addDownloads: MemoryStore['addDownloads'];
  downloads: MemoryStore['downloads'];
} {
  const gate = <T>(f: () => Promise<T>): Promise<T> =>
    wrapper.down ? Promise.reject(new StoreError('STORE_ERR_UNAVAILABLE', 'down')) : f();
  const wrapper = {
    down: false,
    get: (c: string, k: string) => gate(() => inner.get(c, k)),
    put: (c: string, k: string, v: string) => gate(() => inner.put(c, k, v)),
    delete: (c: string, k: string) => gate(() => inner.delete(c, k)),
    list: (c: string) => gate(() => inner.list(c)),
    ping: () => gate(() => inner.ping()),
    close: () => inner.close(),
    addDownloads: (i: Parameters<MemoryStore['addDownloads']>[0]) =>
      gate(() => inner.addDownloads(i)),
    downloads: (h: readonly Buffer[]) => gate(() => inner.downloads(h)),
  };
  return wrapper;
}

const op = (a: PeerAnnounce): BatchOp => ({ ...a, op: 'announce' });

function setup() {
  const peers = createMemoryStore({ peerLifetimeSeconds: 1860 });
  const dataInner = createMemoryStore({ peerLifetimeSeconds: 1860 });
  const data = flaky(dataInner);
  const errors: string[] = [];
  const store = createCompositeStore({
    peers,
    data,
    dataDriver: 'memory',
    onError: (_err, what) => errors.push(what),
  });
  return { peers, data, dataInner, store, errors };
}

describe('composite store, downloads in the data backend', () => {
  it('adds each counted download to the data backend once, and answers with its count', async () => {
    const { store, dataInner } = setup();
    expect(store.downloadsApart).toBe(true);
    const [first] = await store.batch([
      op(announceOf({ peer: 1, seeder: true, event: 'completed' })),
    ]);
    expect(first).toMatchObject({ ok: true, result: { downloaded: 1, downloadCounted: true } });
    // A stored seeder repeating completed, and a plain re-announce, add nothing.
    await store.batch([
      op(announceOf({ peer: 1, seeder: true, event: 'completed' })),
      op(announceOf({ peer: 1, seeder: true })),
    ]);
    expect(await dataInner.downloads([infoHashOf(1)])).toEqual([1]);
    // The data backend's count is what clients see, even where the peer backend's differs.
    await dataInner.addDownloads([[infoHashOf(1), 10]]);
    expect(await store.scrape([infoHashOf(1)])).toEqual([
      { seeders: 1, leechers: 0, downloaded: 11, partialSeeds: 0 },
    ]);
    expect(await store.downloads([infoHashOf(1), infoHashOf(2)])).toEqual([11, 0]);
  });

  it('concurrent batches each send only their own downloads', async () => {
    const { store, dataInner } = setup();
    await Promise.all(
      Array.from({ length: 10 }, (_, b) =>
        store.batch(
          Array.from({ length: 5 }, (_, i) =>
            op(announceOf({ peer: b * 5 + i + 1, seeder: true, event: 'completed' })),
          ),
        ),
      ),
    );
    expect(await dataInner.downloads([infoHashOf(1)])).toEqual([50]);
  });

  it('keeps downloads counted during a data-backend outage and delivers them once after', async () => {
    const { store, data, dataInner, errors } = setup();
    data.down = true;
    const [r] = await store.batch([op(announceOf({ peer: 1, seeder: true, event: 'completed' }))]);
    // Peers still answer; the count falls back to the peer backend's own.
    expect(r).toMatchObject({ ok: true, result: { seeders: 1, downloaded: 1 } });
    expect(errors).toEqual(['add_downloads', 'read_downloads']);
    expect(store.pendingDownloads()).toBe(1);
    expect((await store.health()).data).toEqual({
      driver: 'memory',
      ok: false,
      code: 'STORE_ERR_UNAVAILABLE',
    });
    data.down = false;
    await store.batch([{ op: 'scrape', infoHashes: [infoHashOf(1)] }]);
    expect(store.pendingDownloads()).toBe(0);
    expect(await dataInner.downloads([infoHashOf(1)])).toEqual([1]);
    await store.batch([{ op: 'scrape', infoHashes: [infoHashOf(1)] }]);
    expect(await dataInner.downloads([infoHashOf(1)])).toEqual([1]);
  });

  it('one store in both roles counts with its own counters and closes once', async () => {
    const one = createMemoryStore({ peerLifetimeSeconds: 1860 });
    const store = createCompositeStore({ peers: one, data: one, dataDriver: 'memory' });
    expect(store.downloadsApart).toBe(false);
    await store.announce(announceOf({ peer: 1, seeder: true, event: 'completed' }));
    expect(await one.downloads([infoHashOf(1)])).toEqual([1]);
    await store.put('c', 'k', 'v');
    expect(await one.get('c', 'k')).toBe('v');
    await store.close();
    await expect(one.ping()).rejects.toMatchObject({ code: 'STORE_ERR_UNAVAILABLE' });
  });
});
