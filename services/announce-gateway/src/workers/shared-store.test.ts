// What the gateway checks of the shared-memory store before it runs workers
// on it (docs/workers.md "Stores"): the probe for peer moves, tried against
// the memory driver (which moves peers) and a store that does not, and what
// RATE_LIMIT_SHARED and MOVE_PEERS_BY_KEY then make of a real shared store;
// SHARED_MEMORY_MAX_BYTES checked at boot and made the heap's ceiling.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createSharedMemoryStore,
  hasRateCounters,
  hasSyncAnnounce,
  isStoreError,
  type SharedMemoryStore,
} from '@shoal/storage';
import { createMemoryStore } from '@shoal/storage/memory';
import { loadGatewayConfig } from '../config.ts';
import { attachSharedStorage, createSharedStorage } from '../storage.ts';
import { movesPeers, sharedStoreFit, sharedStoreMovesPeers } from './shared-store.ts';

const opened: SharedMemoryStore[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

function shared(): SharedMemoryStore {
  const { store } = createSharedMemoryStore({ peerLifetimeSeconds: 120 });
  opened.push(store);
  return store;
}

describe('the peer-move probe', () => {
  it('finds one peer on the memory driver, which moves a client by its key', async () => {
    const store = createMemoryStore({ peerLifetimeSeconds: 120 });
    expect(movesPeers(store)).toBe(true);
    expect((await store.stats()).leechers.v4).toBe(1);
    await store.close();
  });

  it('finds two peers on a store that keeps the old entry, and reads what the shared store does', async () => {
    const store = shared();
    const moves = movesPeers(store);
    const stats = await store.stats();
    expect(stats.leechers.v4).toBe(moves ? 1 : 2);
    expect(sharedStoreMovesPeers()).toBe(moves);
  });
});

describe('sharedStoreFit', () => {
  it('keeps workers on the shared store, warning about moves only when it cannot move peers', () => {
    const fit = sharedStoreFit({ RATE_LIMIT_SHARED: false, MOVE_PEERS_BY_KEY: true }, shared());
    expect(fit.oneWorker).toBeUndefined();
    expect(fit.warnings.some((w) => w.startsWith('MOVE_PEERS_BY_KEY'))).toBe(
      !sharedStoreMovesPeers(),
    );
    expect(
      sharedStoreFit({ RATE_LIMIT_SHARED: false, MOVE_PEERS_BY_KEY: false }, shared()).warnings,
    ).toEqual([]);
  });

  it('runs one worker on the memory driver for RATE_LIMIT_SHARED while the shared store has no rate counters', () => {
    const store = shared();
    const fit = sharedStoreFit({ RATE_LIMIT_SHARED: true, MOVE_PEERS_BY_KEY: false }, store);
    if (hasRateCounters(store)) expect(fit.oneWorker).toBeUndefined();
    else expect(fit.oneWorker).toContain('RATE_LIMIT_SHARED');
  });
});

describe('SHARED_MEMORY_MAX_BYTES', () => {
  const load = (value: string) => () =>
    loadGatewayConfig({ env: { SHARED_MEMORY_MAX_BYTES: value }, argv: [] });

  it('is refused at boot outside what the store takes', () => {
    expect(load('1000')).toThrow(/SHARED_MEMORY_MAX_BYTES/);
    expect(load(String(2 ** 31))).toThrow(/SHARED_MEMORY_MAX_BYTES/);
    expect(load('lots')).toThrow(/SHARED_MEMORY_MAX_BYTES/);
    expect(loadGatewayConfig({ env: {}, argv: [] }).SHARED_MEMORY_MAX_BYTES).toBe(
      2 ** 31 - (1 << 20),
    );
  });

  it("is the heap's ceiling: a worker's announce past it is answered STORE_ERR_UNAVAILABLE, and the store still serves", async () => {
    const config = loadGatewayConfig({
      env: { SHARED_MEMORY_MAX_BYTES: String(4 << 20) },
      argv: [],
    });
    const main = createSharedStorage(config, pino({ level: 'silent' }));
    const worker = attachSharedStorage(main.handle, config);
    expect(main.handle.heap.maxByteLength).toBe(4 << 20);
    const store = worker.store;
    if (!hasSyncAnnounce(store)) throw new Error('the attachment answers synchronously');
    const a = {
      infoHash: Buffer.alloc(20),
      peerId: Buffer.alloc(20, 7),
      family: 4 as const,
      address: Buffer.alloc(4),
      port: 6881,
      seeder: false,
      event: 'started' as const,
      numWant: 0,
      withPeerIds: false,
    };
    let stored = 0;
    let refusal: unknown;
    // 4 MiB holds far fewer than a million 32-byte records.
    for (let p = 0; p < 1_000_000 && refusal === undefined; p++) {
      a.infoHash.writeUInt32BE(p % 5000, 0);
      a.address.writeUInt32BE(0x0a000000 + p, 0);
      try {
        store.announceSync(a);
        stored++;
      } catch (err) {
        refusal = err;
      }
    }
    expect(isStoreError(refusal) && refusal.code).toBe('STORE_ERR_UNAVAILABLE');
    expect(stored).toBeGreaterThan(10_000);
    const stats = await main.store.stats();
    expect(stats.leechers.v4).toBe(stored);
    // A peer already stored re-announces without needing more heap.
    a.infoHash.writeUInt32BE(0, 0);
    a.address.writeUInt32BE(0x0a000000, 0);
    expect(store.announceSync({ ...a, event: 'none' }).leechers).toBeGreaterThan(0);
    await worker.close();
    await main.close();
  });
});
