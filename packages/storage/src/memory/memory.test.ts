import { describe, expect, it } from 'vitest';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { prng } from '@shoal/testing/random';
import {
  addressOf,
  announceOf,
  decodePeers,
  describeDataStoreConformance,
  describePeerStoreConformance,
  infoHashOf,
} from '../../test/conformance.ts';
import { isStoreError } from '../errors.ts';
import type { Family } from '../types.ts';
import { createMemoryStore } from './index.ts';
import { INDEX_FROM } from './peer-table.ts';

describePeerStoreConformance('memory', (opts) => Promise.resolve(createMemoryStore(opts)));
describePeerStoreConformance('memory, one shard', (opts) =>
  Promise.resolve(createMemoryStore({ ...opts, shards: 1 })),
);
describeDataStoreConformance('memory', () =>
  Promise.resolve(createMemoryStore({ peerLifetimeSeconds: 60 })),
);

const START_MS = Date.UTC(2030, 0, 1);

/** "ip:port" of a peer announced by announceOf() with the default port 6881. */
function endpointOf(peer: number, family: Family): string {
  return decodePeers(
    Buffer.concat([addressOf(peer, family), Buffer.from([0x1a, 0xe1])]),
    family,
  )[0]!;
}

function rejectionCode(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'resolved',
    (err: unknown) => (isStoreError(err) ? err.code : err),
  );
}

interface ModelPeer {
  peer: number;
  seeder: boolean;
  expiry: number;
  family: Family;
}

/** The truth, kept the simplest possible way, to check the packed driver against. */
class Model {
  readonly swarms = new Map<number, Map<string, ModelPeer>>();
  readonly downloads = new Map<number, number>();
  readonly lifetime: number;
  constructor(lifetime: number) {
    this.lifetime = lifetime;
  }

  live(swarm: number, nowSec: number): Map<string, ModelPeer> {
    const peers = this.swarms.get(swarm) ?? new Map<string, ModelPeer>();
    for (const [k, p] of peers) if (p.expiry <= nowSec) peers.delete(k);
    return peers;
  }

  announce(
    swarm: number,
    peer: number,
    family: Family,
    seeder: boolean,
    event: 'none' | 'completed' | 'stopped',
    nowSec: number,
  ) {
    const peers = this.live(swarm, nowSec);
    this.swarms.set(swarm, peers);
    const id = `${family}/${peer}`;
    const stored = peers.get(id);
    if (event === 'stopped') peers.delete(id);
    else {
      const s = seeder || event === 'completed';
      if (event === 'completed' && !stored?.seeder)
        this.downloads.set(swarm, (this.downloads.get(swarm) ?? 0) + 1);
      peers.set(id, { peer, seeder: s, expiry: nowSec + this.lifetime, family });
    }
    return this.counts(swarm, nowSec);
  }

  counts(swarm: number, nowSec: number) {
    let seeders = 0;
    let leechers = 0;
    for (const p of this.live(swarm, nowSec).values()) {
      if (p.seeder) seeders++;
      else leechers++;
    }
    return { seeders, leechers, downloaded: this.downloads.get(swarm) ?? 0, partialSeeds: 0 };
  }

  stats(nowSec: number) {
    const out = { torrents: 0, seeders: { v4: 0, v6: 0 }, leechers: { v4: 0, v6: 0 } };
    for (const swarm of this.swarms.keys()) {
      const peers = this.live(swarm, nowSec);
      if (peers.size > 0) out.torrents++;
      for (const p of peers.values()) {
        const fam = p.family === 4 ? 'v4' : 'v6';
        if (p.seeder) out.seeders[fam]++;
        else out.leechers[fam]++;
      }
    }
    return out;
  }
}

describe('memory store', () => {
  it('stats and scrape stay equal to a recount through random churn, expiry and GC', async () => {
    const lifetime = 1000;
    let now = START_MS;
    const store = createMemoryStore({ peerLifetimeSeconds: lifetime, clock: () => now, shards: 4 });
    const model = new Model(lifetime);
    const rand = prng(42);
    const swarmIds = Array.from({ length: 12 }, (_, i) => i + 1);
    for (let round = 0; round < 40; round++) {
      for (let op = 0; op < 150; op++) {
        // Swarm 1 is big enough to carry an index; the rest stay small.
        const swarm = rand() < 0.5 ? 1 : swarmIds[Math.floor(rand() * swarmIds.length)]!;
        const peer = Math.floor(rand() * (swarm === 1 ? 120 : 8));
        const family: Family = rand() < 0.3 ? 6 : 4;
        const r = rand();
        const event = r < 0.1 ? 'stopped' : r < 0.2 ? 'completed' : 'none';
        const seeder = rand() < 0.4;
        const nowSec = Math.floor(now / 1000);
        const expected = model.announce(swarm, peer, family, seeder, event, nowSec);
        const got = await store.announce(
          announceOf({ swarm, peer, family, seeder, event, numWant: 200 }),
        );
        expect({
          seeders: got.seeders,
          leechers: got.leechers,
          downloaded: got.downloaded,
          partialSeeds: got.partialSeeds,
        }).toEqual(expected);
        // The sample is everyone eligible of the announcer's family when numWant allows.
        const own = [...model.live(swarm, nowSec)].filter(
          ([k, p]) => p.family === family && k !== `${family}/${peer}`,
        );
        const eligible =
          event === 'stopped'
            ? []
            : own.filter(([, p]) => !(seeder || event === 'completed') || !p.seeder);
        expect(decodePeers(got.peers, family).sort()).toEqual(
          eligible.map(([, p]) => endpointOf(p.peer, family)).sort(),
        );
        now += Math.floor(rand() * 3000);
      }
      const nowSec = Math.floor(now / 1000);
      if (round % 3 === 0) await store.collectGarbage();
      expect(await store.stats()).toEqual(model.stats(nowSec));
      const hashes = swarmIds.map(infoHashOf);
      expect(await store.scrape(hashes)).toEqual(swarmIds.map((s) => model.counts(s, nowSec)));
    }
    await store.close();
  });

  it('collectGarbage yields to the event loop between shards', async () => {
    let now = START_MS;
    const shards = 8;
    const store = createMemoryStore({ peerLifetimeSeconds: 60, clock: () => now, shards });
    for (let s = 0; s < 400; s++) store.announceSync(announceOf({ swarm: s, peer: s }));
    now += 61_000;
    let turns = 0;
    let done = false;
    const spin = (): void => {
      turns++;
      if (!done) setImmediate(spin);
    };
    setImmediate(spin);
    // An announce that lands between two shards of a running GC is served and kept.
    const during = (async () => {
      await nextTurn();
      return store.announce(announceOf({ swarm: 1000, peer: 1 }));
    })();
    const gc = await store.collectGarbage();
    done = true;
    expect(gc).toEqual({ peersRemoved: 400, swarmsRemoved: 400 });
    expect(turns).toBeGreaterThanOrEqual(shards - 1);
    expect(await during).toMatchObject({ leechers: 1 });
    expect(await store.stats()).toEqual({
      torrents: 1,
      seeders: { v4: 0, v6: 0 },
      leechers: { v4: 1, v6: 0 },
    });
    await store.close();
  });

  for (const family of [4, 6] as const) {
    it(`a big IPv${family} swarm crossing the index threshold both ways keeps every peer exactly once`, async () => {
      const store = createMemoryStore({ peerLifetimeSeconds: 600, clock: () => START_MS });
      const n = INDEX_FROM * 40;
      for (let p = 0; p < n; p++)
        store.announceSync(announceOf({ peer: p, family, seeder: p % 4 === 0 }));
      // Re-announces through the index find the stored record instead of adding one.
      for (let p = 0; p < n; p += 3)
        store.announceSync(announceOf({ peer: p, family, seeder: p % 4 === 0 }));
      expect(await store.scrape([infoHashOf(1)])).toEqual([
        { seeders: n / 4, leechers: (3 * n) / 4, downloaded: 0, partialSeeds: 0 },
      ]);

      // Stop peers in a scattered order: exercises deletion and relabelling in the index.
      const rand = prng(7);
      const alive = new Set(Array.from({ length: n }, (_, p) => p));
      const order = [...alive].sort(() => rand() - 0.5);
      for (const p of order.slice(0, n - 10)) {
        const r = store.announceSync(announceOf({ peer: p, family, event: 'stopped' }));
        alive.delete(p);
        expect(r.seeders + r.leechers).toBe(alive.size);
        if (alive.size % 97 === 0) {
          const probe = store.announceSync(announceOf({ peer: 1_000_000, family, numWant: n }));
          expect(decodePeers(probe.peers, family).sort()).toEqual(
            [...alive].map((q) => endpointOf(q, family)).sort(),
          );
          store.announceSync(announceOf({ peer: 1_000_000, family, event: 'stopped' }));
        }
      }
      const probe = store.announceSync(announceOf({ peer: 1_000_000, family, numWant: n }));
      expect(decodePeers(probe.peers, family).sort()).toEqual(
        [...alive].map((q) => endpointOf(q, family)).sort(),
      );
      await store.close();
    });
  }

  it('a big swarm expiring in part keeps its survivors findable', async () => {
    let now = START_MS;
    const store = createMemoryStore({ peerLifetimeSeconds: 100, clock: () => now });
    for (let p = 0; p < 500; p++) store.announceSync(announceOf({ peer: p }));
    now += 50_000;
    for (let p = 500; p < 1000; p++) store.announceSync(announceOf({ peer: p }));
    now += 51_000;
    // The first 500 expired; a re-announce of a survivor must not add a record.
    expect(store.announceSync(announceOf({ peer: 750 }))).toMatchObject({ leechers: 500 });
    for (let p = 500; p < 1000; p++)
      expect(store.announceSync(announceOf({ peer: p, numWant: 0 })).leechers).toBe(500);
    expect(store.announceSync(announceOf({ peer: 3 }))).toMatchObject({ leechers: 501 });
    await store.close();
  });

  it('download counts of many swarms survive their peers leaving', async () => {
    const store = createMemoryStore({ peerLifetimeSeconds: 60 });
    for (let s = 0; s < 100; s++) {
      store.announceSync(announceOf({ swarm: s, peer: 1, seeder: true, event: 'completed' }));
      store.announceSync(announceOf({ swarm: s, peer: 1, event: 'stopped' }));
    }
    expect(await store.stats()).toMatchObject({ torrents: 0 });
    const counts = store.scrapeSync(Array.from({ length: 100 }, (_, s) => infoHashOf(s)));
    expect(counts.every((c) => c.downloaded === 1 && c.seeders === 0 && c.leechers === 0)).toBe(
      true,
    );
    await store.close();
  });

  it('rejects a bad configuration with STORE_ERR_CONFIG listing every problem', () => {
    let caught: unknown;
    try {
      createMemoryStore({ peerLifetimeSeconds: 0, shards: 0 });
    } catch (err) {
      caught = err;
    }
    expect(isStoreError(caught) && caught.code).toBe('STORE_ERR_CONFIG');
    expect((caught as Error).message).toMatch(/peerLifetimeSeconds[\s\S]*shards/);
  });

  it('after close, calls fail with STORE_ERR_UNAVAILABLE and close stays idempotent', async () => {
    const store = createMemoryStore({ peerLifetimeSeconds: 60 });
    await store.put('c', 'k', 'v');
    await store.close();
    await store.close();
    expect(await rejectionCode(store.ping())).toBe('STORE_ERR_UNAVAILABLE');
    expect(await rejectionCode(store.announce(announceOf({ peer: 1 })))).toBe(
      'STORE_ERR_UNAVAILABLE',
    );
    expect(await rejectionCode(store.get('c', 'k'))).toBe('STORE_ERR_UNAVAILABLE');
    expect(await rejectionCode(store.stats())).toBe('STORE_ERR_UNAVAILABLE');
  });
});
