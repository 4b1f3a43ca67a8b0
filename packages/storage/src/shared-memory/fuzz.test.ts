// Random operations against the shared-memory store and against the simplest
// model of the tracker semantics, compared after every operation; the
// store's own invariants (tables, indexes, counters, heap blocks) are
// audited as it goes.
import { describe, expect, it } from 'vitest';
import { prng } from '@shoal/testing/random';
import { addressOf, announceOf, infoHashOf } from '../../test/conformance.ts';
import type { AnnounceEvent, Family } from '../types.ts';
import { auditSharedMemoryStore, createSharedMemoryStore } from './index.ts';

const START_MS = Date.UTC(2030, 0, 1);
const LIFETIME = 600;

interface ModelPeer {
  role: 'leecher' | 'seeder' | 'partial';
  expiry: number;
  /** The client and key of the entry's latest announce (docs/decisions.md "Peers that move"). */
  keyHash: string | undefined;
}

class Model {
  readonly swarms = new Map<number, Map<string, ModelPeer>>();
  readonly downloads = new Map<number, number>();

  /** Drops the swarm's expired peers; returns how many, and whether the swarm lost its last peer. */
  expire(swarm: number, nowSec: number): { removed: number; emptied: boolean } {
    const peers = this.swarms.get(swarm);
    if (peers === undefined) return { removed: 0, emptied: false };
    let removed = 0;
    for (const [k, p] of peers)
      if (p.expiry <= nowSec) {
        peers.delete(k);
        removed++;
      }
    if (peers.size === 0) this.swarms.delete(swarm);
    return { removed, emptied: removed > 0 && peers.size === 0 };
  }

  counts(swarm: number) {
    const peers = [...(this.swarms.get(swarm)?.values() ?? [])];
    const seeders = peers.filter((p) => p.role === 'seeder').length;
    return {
      seeders,
      leechers: peers.length - seeders,
      downloaded: this.downloads.get(swarm) ?? 0,
      partialSeeds: peers.filter((p) => p.role === 'partial').length,
    };
  }
}

const keyOf = (family: Family, peer: number, port: number): string =>
  `${family}/${Buffer.concat([addressOf(peer, family), Buffer.from([port >> 8, port & 0xff])]).toString('hex')}`;

function run(
  seed: number,
  swarmCount: number,
  peerCount: number,
  ops: number,
  shards: number,
  peerIds: boolean,
) {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  let now = START_MS;
  const nowSec = () => Math.floor((now - START_MS) / 1000);
  const { store } = createSharedMemoryStore({
    peerLifetimeSeconds: LIFETIME,
    clock: () => now,
    shards,
    peerIds,
  });
  const model = new Model();
  const audit = () => expect(auditSharedMemoryStore(store)).toEqual([]);
  for (let op = 0; op < ops; op++) {
    const r = rand();
    if (r < 0.8) {
      const swarm = 1 + Math.floor(rand() * swarmCount);
      const peer = 1 + Math.floor(rand() * peerCount);
      const family: Family = rand() < 0.2 ? 6 : 4;
      const port = pick([6881, 6882]);
      const event: AnnounceEvent = pick([
        'none',
        'none',
        'none',
        'started',
        'completed',
        'stopped',
        'stopped',
      ]);
      const kind = rand();
      const seeder = event === 'completed' || kind < 0.3;
      const partialSeed = !seeder && kind < 0.4;
      const numWant = Math.floor(rand() * 120);
      const lifetimeSeconds = rand() < 0.1 ? 1 + Math.floor(rand() * 3 * LIFETIME) : undefined;
      const withPeerIds = rand() < 0.1;
      // Clients move: a keyed announce from another client's address or port replaces
      // the entry of the client's latest keyed announce.
      const k = rand();
      const keyName = k < 0.4 ? undefined : k < 0.9 ? 1 : 2;
      const from = rand() < 0.3 ? 1 + Math.floor(rand() * peerCount) : peer;
      const keyHash = keyName === undefined ? undefined : `${peer}:${keyName}`;
      const a = {
        ...announceOf({
          swarm,
          peer,
          from,
          ...(keyName === undefined ? {} : { key: keyName }),
          family,
          port,
          seeder,
          partialSeed,
          event,
          numWant,
          withPeerIds,
          ...(lifetimeSeconds === undefined ? {} : { lifetimeSeconds }),
        }),
      };
      const got = store.announceSync(a);
      model.expire(swarm, nowSec());
      const key = keyOf(family, from, port);
      const peers = model.swarms.get(swarm) ?? new Map<string, ModelPeer>();
      const stored = peers.get(key);
      const bound =
        keyHash === undefined
          ? undefined
          : [...peers].find(([k, p]) => k.startsWith(`${family}/`) && p.keyHash === keyHash)?.[0];
      let counted = false;
      if (event === 'stopped') {
        peers.delete(key);
        if (bound !== undefined) peers.delete(bound);
      } else {
        let movedSeeder = false;
        if (bound !== undefined && bound !== key) {
          movedSeeder = peers.get(bound)!.role === 'seeder';
          peers.delete(bound);
        }
        if (event === 'completed' && stored?.role !== 'seeder' && !movedSeeder) {
          counted = true;
          model.downloads.set(swarm, (model.downloads.get(swarm) ?? 0) + 1);
        }
        peers.set(key, {
          role: seeder ? 'seeder' : partialSeed ? 'partial' : 'leecher',
          expiry: nowSec() + (lifetimeSeconds ?? LIFETIME),
          keyHash,
        });
      }
      if (peers.size > 0) model.swarms.set(swarm, peers);
      else model.swarms.delete(swarm);
      const where = `op ${op} (seed ${seed})`;
      expect(got, where).toMatchObject({ ...model.counts(swarm), downloadCounted: counted });
      // Peers: distinct, of the family, never the announcer, never one a seeder must not get.
      const size = family === 4 ? 6 : 18;
      const returned = new Set<string>();
      for (let o = 0; o < got.peers.length; o += size)
        returned.add(`${family}/${got.peers.subarray(o, o + size).toString('hex')}`);
      expect(returned.size * size, where).toBe(got.peers.length);
      expect(returned.has(key), where).toBe(false);
      const wantsNothing = event !== 'stopped' && (seeder || partialSeed);
      const eligible = [...peers]
        .filter(([k]) => k !== key && k.startsWith(`${family}/`))
        .filter(([, p]) => !wantsNothing || p.role === 'leecher');
      for (const k of returned)
        expect(
          eligible.some(([e]) => e === k),
          where,
        ).toBe(true);
      expect(returned.size, where).toBe(
        event === 'stopped' ? 0 : Math.min(numWant, eligible.length),
      );
      if (withPeerIds && peerIds) expect(got.peerIds, where).toHaveLength(returned.size);
      else expect(got.peerIds, where).toBeUndefined();
    } else if (r < 0.86) {
      const hashes = Array.from({ length: 3 }, () => 1 + Math.floor(rand() * swarmCount));
      const got = store.scrapeSync(hashes.map(infoHashOf));
      for (const h of hashes) model.expire(h, nowSec());
      expect(got).toEqual(hashes.map((h) => model.counts(h)));
    } else if (r < 0.93) {
      now += Math.floor(rand() * (LIFETIME / 20)) * 1000;
    } else if (r < 0.96) {
      const swarm = 1 + Math.floor(rand() * swarmCount);
      const n = 1 + Math.floor(rand() * 3);
      void store.addDownloads([[infoHashOf(swarm), n]]);
      model.downloads.set(swarm, (model.downloads.get(swarm) ?? 0) + n);
    } else if (rand() < 0.2) {
      audit();
    }
  }
  return { store, model, nowSec, audit };
}

describe('shared-memory store against a model', () => {
  const cases = [
    { seed: 1, swarms: 4, peers: 90, ops: 6000, shards: 1, peerIds: false },
    { seed: 2, swarms: 3, peers: 200, ops: 6000, shards: 2, peerIds: true },
    { seed: 3, swarms: 600, peers: 6, ops: 8000, shards: 1, peerIds: true },
    { seed: 4, swarms: 300, peers: 20, ops: 8000, shards: 8, peerIds: false },
  ];
  for (const c of cases) {
    it(`seed ${c.seed}: ${c.swarms} swarms of up to ${c.peers * 4} peers, ${c.ops} operations, ${c.shards} shard(s)${c.peerIds ? ', peer ids kept' : ''}`, async () => {
      const { store, model, nowSec, audit } = run(
        c.seed,
        c.swarms,
        c.peers,
        c.ops,
        c.shards,
        c.peerIds,
      );
      audit();
      // Collection removes exactly the peers the model says have expired.
      let expired = 0;
      let emptied = 0;
      for (const swarm of [...model.swarms.keys()]) {
        const { removed, emptied: e } = model.expire(swarm, nowSec());
        expired += removed;
        if (e) emptied++;
      }
      expect(await store.collectGarbage()).toEqual({
        peersRemoved: expired,
        swarmsRemoved: emptied,
      });
      const stats = await store.stats();
      let peers = 0;
      for (const m of model.swarms.values()) peers += m.size;
      expect(stats.seeders.v4 + stats.seeders.v6 + stats.leechers.v4 + stats.leechers.v6).toBe(
        peers,
      );
      expect(stats.torrents).toBe(model.swarms.size);
      const counts = await store.downloads(
        Array.from({ length: c.swarms }, (_, i) => infoHashOf(i + 1)),
      );
      expect(counts).toEqual(
        Array.from({ length: c.swarms }, (_, i) => model.downloads.get(i + 1) ?? 0),
      );
      audit();
      await store.close();
    }, 120_000);
  }
});
