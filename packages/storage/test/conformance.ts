// The conformance suite every storage driver runs against itself
// (docs/decisions.md "Storage": a driver is done when this passes against the
// real server). Each rule of "Tracker semantics" and "Storage" is one named
// test.
//
// API (import from '@shoal/storage/conformance' inside a vitest test file):
//
//   describePeerStoreConformance(
//     name: string,
//     factory: (opts: { peerLifetimeSeconds: number; clock: () => number }) => Promise<PeerStore>,
//     options?: { downloadCounter?: boolean (true: the store reports downloadCounted and
//       implements DownloadCounter); keepsPeerIds?: boolean (true: withPeerIds
//       answers carry the peers' ids; false for a store configured to keep none, such as
//       Redis with REDIS_STORE_PEER_IDS=false) },
//   ): void
//
//   describeDataStoreConformance(name: string, factory: () => Promise<DataStore>): void
//
// Helpers, exported for drivers' own tests (announceOf and friends are
// deterministic, so a test can name peers and swarms by number):
//   announceOf(p: PeerSpec): PeerAnnounce   PeerSpec = { peer: number; swarm?: number (default 1);
//       family?: 4 | 6 (4); port?: number (6881); seeder?: boolean (false); event?: AnnounceEvent
//       ('none'); numWant?: number (50); withPeerIds?: boolean (false); generation?: number (0,
//       changes the peer_id only) }
//       key?: number (the client's `key`: the announce carries keyHashOf(peer_id, key));
//       from?: number (announce from addressOf(from) instead of addressOf(peer): a client that moved)
//   infoHashOf(n), peerIdOf(n, generation?), addressOf(n, family), keyHashOf(peerId, key): Buffer
//   decodePeers(peers: Buffer, family): string[]   "a.b.c.d:port" / "[x:x:...]:port"
//
// Contract for the factory:
// - It is called once per test and must return an EMPTY store (flush the
//   Redis db / truncate the tables). The suite calls close() after each test.
// - `clock` is the suite's fake clock (milliseconds since the epoch, starting
//   at 2030-01-01T00:00:00Z on a whole second); the suite moves it forward to
//   expire peers. A driver must take every notion of "now" from it (pass it
//   to Lua / SQL as an argument); server time is never consulted. Tests keep
//   one second of margin on each side of peer_lifetime.
// - Nothing here relies on synchronous behaviour: every call is awaited, and
//   concurrent calls go through Promise.all.
// - Server set-up belongs in the caller's beforeAll/afterAll (see
//   @shoal/testing); this module only declares describe/it blocks.
// - Data store ordering is checked with lowercase ASCII keys only, whose
//   order is the same in UTF-16, bytewise and common collations.
//
// Example (packages/storage/src/memory/memory.test.ts):
//   describePeerStoreConformance('memory', async (o) => createMemoryStore(o));
//   describeDataStoreConformance('memory', async () => createMemoryStore({ peerLifetimeSeconds: 60 }));
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasRateCounters, hasTopSwarms } from '../src/capabilities.ts';
import { FULL_SCRAPE_MAX, fullScrapeOf, type FullScrapeResult } from '../src/full-scrape.ts';
import { isStoreError } from '../src/errors.ts';
import type {
  AnnounceEvent,
  DataStore,
  DownloadCounter,
  Family,
  PeerAnnounce,
  PeerStore,
  TopSwarm,
} from '../src/types.ts';

export type PeerStoreFactory = (opts: {
  peerLifetimeSeconds: number;
  clock: () => number;
}) => Promise<PeerStore>;
export type DataStoreFactory = () => Promise<DataStore>;

/** 2030-01-01T00:00:00Z: a whole second, far from uint32-second limits. */
const START_MS = Date.UTC(2030, 0, 1);
const LIFETIME_SECONDS = 1860;

/** A distinct 20-byte info hash per number. */
export function infoHashOf(n: number): Buffer {
  const b = Buffer.alloc(20, 0xa5);
  b.writeUInt32BE(n >>> 0, 0);
  b.writeUInt32BE(Math.imul(n, 0x9e3779b1) >>> 0, 16);
  return b;
}

/** A distinct 20-byte peer_id per number, Azureus-style. */
export function peerIdOf(n: number, generation = 0): Buffer {
  const b = Buffer.from('-SH0001-000000000000', 'latin1');
  b.writeUInt32BE(n >>> 0, 12);
  b.writeUInt32BE(generation >>> 0, 16);
  return b;
}

/** 10.x.y.z for IPv4, 2001:db8::x:y for IPv6: distinct per number. */
export function addressOf(n: number, family: Family): Buffer {
  if (family === 4) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(((10 << 24) | (n & 0xffffff)) >>> 0, 0);
    return b;
  }
  const b = Buffer.alloc(16);
  b.writeUInt32BE(0x20010db8, 0);
  b.writeUInt32BE(n >>> 0, 12);
  return b;
}

/**
 * A stand-in for the gateway's key hash: PEER_KEY_HASH_SIZE bytes that
 * differ per (peer_id, key). Stores only ever compare these bytes.
 */
export function keyHashOf(peerId: Buffer, key: number): Buffer {
  return createHash('sha256').update(peerId).update(String(key)).digest().subarray(0, 8);
}

export interface PeerSpec {
  swarm?: number;
  peer: number;
  family?: Family;
  port?: number;
  seeder?: boolean;
  /** BEP 21 partial seed (HTTP event=paused from a peer that is not a seeder). */
  partialSeed?: boolean;
  event?: AnnounceEvent;
  numWant?: number;
  withPeerIds?: boolean;
  /** Changes the peer_id while (family, IP, port) stays. */
  generation?: number;
  /** The lifetime promised with this announce (PeerAnnounce.lifetimeSeconds). */
  lifetimeSeconds?: number;
  /** The client's `key`; absent: an announce without one. */
  key?: number;
  /** Announce from addressOf(from) instead of addressOf(peer): the client moved. */
  from?: number;
}

export function announceOf(p: PeerSpec): PeerAnnounce {
  const family = p.family ?? 4;
  const peerId = peerIdOf(p.peer, p.generation ?? 0);
  return {
    infoHash: infoHashOf(p.swarm ?? 1),
    peerId,
    family,
    address: addressOf(p.from ?? p.peer, family),
    port: p.port ?? 6881,
    seeder: p.seeder ?? false,
    ...(p.partialSeed === undefined ? {} : { partialSeed: p.partialSeed }),
    event: p.event ?? 'none',
    numWant: p.numWant ?? 50,
    withPeerIds: p.withPeerIds ?? false,
    ...(p.lifetimeSeconds === undefined ? {} : { lifetimeSeconds: p.lifetimeSeconds }),
    ...(p.key === undefined ? {} : { keyHash: keyHashOf(peerId, p.key) }),
  };
}

/** "ip:port" per compact peer (6 bytes IPv4, 18 bytes IPv6). */
export function decodePeers(peers: Buffer, family: Family): string[] {
  const size = family === 4 ? 6 : 18;
  expect(peers.length % size).toBe(0);
  const out: string[] = [];
  for (let o = 0; o < peers.length; o += size)
    out.push(endpoint(peers.subarray(o, o + size - 2), peers.readUInt16BE(o + size - 2)));
  return out;
}

function endpoint(address: Buffer, port: number): string {
  if (address.length === 4) return `${address.join('.')}:${port}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(address.readUInt16BE(i).toString(16));
  return `[${groups.join(':')}]:${port}`;
}

function endpointOf(p: PeerSpec): string {
  return endpoint(addressOf(p.from ?? p.peer, p.family ?? 4), p.port ?? 6881);
}

export interface PeerStoreConformanceOptions {
  /**
   * The store reports `downloadCounted` and implements DownloadCounter on the
   * counters its announces use (what storage-api's split backends need,
   * docs/storage-api.md). Default true; false only for a configuration that documents
   * it cannot (custom PostgreSQL queries without a `counted` column).
   */
  downloadCounter?: boolean;
  /**
   * A withPeerIds announce answers the sampled peers' ids. Default true;
   * false for a store configured to keep no peer ids (Redis with
   * REDIS_STORE_PEER_IDS=false, its default), which answers the peers with
   * `peerIds` undefined: non-compact answers then omit `peer id` (BEP 3
   * allows it), but they still list every peer.
   */
  keepsPeerIds?: boolean;
  /**
   * Each peer is kept for the lifetime its announce promised
   * (docs/load.md "Peer expiry follows the promise"). Default true; false
   * only for a custom PostgreSQL schema of last-seen times, which docs/load.md
   * says cannot.
   */
  promisedLifetimes?: boolean;
  /**
   * Counts carry `partialSeeds` (BEP 21). Default true; false only for a
   * configuration that documents it cannot (custom PostgreSQL queries
   * without a `partial_seeds` column).
   */
  partialSeeds?: boolean;
  /**
   * A client re-announcing with the same peer_id and key from a new address
   * replaces its entry (docs/decisions.md "Peers that move"). Default true;
   * false only for custom PostgreSQL queries given without a move query.
   */
  moves?: boolean;
}

export function describePeerStoreConformance(
  name: string,
  factory: PeerStoreFactory,
  options: PeerStoreConformanceOptions = {},
): void {
  const splitIt = options.downloadCounter === false ? it.skip : it;
  const keepsPeerIds = options.keepsPeerIds !== false;
  const idsIt = keepsPeerIds ? it : it.skip;
  const promiseIt = options.promisedLifetimes === false ? it.skip : it;
  const partialIt = options.partialSeeds === false ? it.skip : it;
  const describeMoves = options.moves === false ? describe.skip : describe;
  /** A scrape line as this store answers it. */
  const counts = (seeders: number, leechers: number, downloaded: number, partialSeeds = 0) =>
    options.partialSeeds === false
      ? { seeders, leechers, downloaded }
      : { seeders, leechers, downloaded, partialSeeds };
  describe(`PeerStore conformance: ${name}`, () => {
    let now = START_MS;
    let store: PeerStore;
    const advanceSeconds = (s: number): void => {
      now += s * 1000;
    };
    const announce = (p: PeerSpec) => store.announce(announceOf(p));

    beforeEach(async () => {
      now = START_MS;
      store = await factory({ peerLifetimeSeconds: LIFETIME_SECONDS, clock: () => now });
    });
    afterEach(async () => {
      await store.close();
    });

    it('ping resolves on a reachable store', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    describe('announce', () => {
      it('an empty swarm returns no peers, never the announcer itself', async () => {
        const r = await announce({ peer: 1 });
        expect(r.peers.length).toBe(0);
        const s = await announce({ peer: 2, swarm: 2, seeder: true });
        expect(s.peers.length).toBe(0);
      });

      it('counts include the announcer', async () => {
        expect(await announce({ peer: 1 })).toMatchObject({
          seeders: 0,
          leechers: 1,
          downloaded: 0,
        });
        expect(await announce({ peer: 2, seeder: true })).toMatchObject({
          seeders: 1,
          leechers: 1,
          downloaded: 0,
        });
        expect(await announce({ peer: 3 })).toMatchObject({ seeders: 1, leechers: 2 });
      });

      it('left=0 stores a seeder', async () => {
        await announce({ peer: 1, seeder: true });
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(1, 0, 0)]);
      });

      it('leechers receive seeders and leechers, never themselves', async () => {
        await announce({ peer: 1, seeder: true });
        await announce({ peer: 2 });
        await announce({ peer: 3 });
        const r = await announce({ peer: 4, numWant: 50 });
        expect(decodePeers(r.peers, 4).sort()).toEqual(
          [endpointOf({ peer: 1 }), endpointOf({ peer: 2 }), endpointOf({ peer: 3 })].sort(),
        );
      });

      it('seeders receive only leechers', async () => {
        await announce({ peer: 1, seeder: true });
        await announce({ peer: 2, seeder: true });
        await announce({ peer: 3 });
        await announce({ peer: 4 });
        const r = await announce({ peer: 5, seeder: true, numWant: 50 });
        expect(decodePeers(r.peers, 4).sort()).toEqual(
          [endpointOf({ peer: 3 }), endpointOf({ peer: 4 })].sort(),
        );
        expect(r).toMatchObject({ seeders: 3, leechers: 2 });
      });

      it('a seeder among seeders only gets an empty list', async () => {
        await announce({ peer: 1, seeder: true });
        const r = await announce({ peer: 2, seeder: true });
        expect(r.peers.length).toBe(0);
        expect(r).toMatchObject({ seeders: 2, leechers: 0 });
      });

      it('a peer never receives itself, also when re-announcing', async () => {
        await announce({ peer: 1 });
        await announce({ peer: 2 });
        for (let i = 0; i < 5; i++) {
          const r = await announce({ peer: 1 });
          expect(decodePeers(r.peers, 4)).toEqual([endpointOf({ peer: 2 })]);
        }
      });

      it('compact peers are the address followed by the big-endian port', async () => {
        await announce({ peer: 0x010203, port: 0xabcd });
        const r4 = await announce({ peer: 9 });
        expect(r4.peers).toEqual(Buffer.from([10, 1, 2, 3, 0xab, 0xcd]));
        await announce({ peer: 0x0a0b, family: 6, port: 443 });
        const r6 = await announce({ peer: 9, family: 6 });
        expect(r6.peers).toEqual(Buffer.concat([addressOf(0x0a0b, 6), Buffer.from([0x01, 0xbb])]));
      });

      it('a peer is identified by (family, IP, port): same IP on another port is another peer', async () => {
        await announce({ peer: 1, port: 1000 });
        const r = await announce({ peer: 1, port: 1001 });
        expect(r).toMatchObject({ leechers: 2 });
        expect(decodePeers(r.peers, 4)).toEqual([endpointOf({ peer: 1, port: 1000 })]);
      });

      it('a new peer_id from the same (IP, port) replaces the peer, not adds one', async () => {
        await announce({ peer: 1 });
        const r = await announce({ peer: 1, generation: 7 });
        expect(r).toMatchObject({ seeders: 0, leechers: 1 });
        const other = await announce({ peer: 2, withPeerIds: true });
        expect(decodePeers(other.peers, 4)).toEqual([endpointOf({ peer: 1 })]);
        if (keepsPeerIds) expect(other.peerIds).toEqual([peerIdOf(1, 7)]);
      });

      it('re-announcing changes no count', async () => {
        await announce({ peer: 1, seeder: true, event: 'completed' });
        await announce({ peer: 2, event: 'started' });
        const first = await announce({ peer: 3, event: 'started' });
        for (let i = 0; i < 3; i++) {
          for (const p of [1, 2, 3]) await announce({ peer: p, seeder: p === 1 });
          advanceSeconds(60);
        }
        const last = await announce({ peer: 3 });
        expect(last).toMatchObject({
          seeders: first.seeders,
          leechers: first.leechers,
          downloaded: first.downloaded,
        });
        expect(first).toMatchObject({ seeders: 1, leechers: 2, downloaded: 1 });
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(1, 2, 1)]);
      });

      it('swarms are independent', async () => {
        await announce({ swarm: 1, peer: 1 });
        await announce({ swarm: 2, peer: 2, seeder: true });
        const r = await announce({ swarm: 1, peer: 3 });
        expect(r).toMatchObject({ seeders: 0, leechers: 2 });
        expect(decodePeers(r.peers, 4)).toEqual([endpointOf({ peer: 1 })]);
      });
    });

    describe('events', () => {
      it('stopped removes the peer and returns no peers; counts are after the removal', async () => {
        await announce({ peer: 1, seeder: true });
        await announce({ peer: 2 });
        await announce({ peer: 3 });
        const r = await announce({ peer: 3, event: 'stopped' });
        expect(r.peers.length).toBe(0);
        expect(r).toMatchObject({ seeders: 1, leechers: 1 });
        const after = await announce({ peer: 4, numWant: 50 });
        expect(decodePeers(after.peers, 4).sort()).toEqual(
          [endpointOf({ peer: 1 }), endpointOf({ peer: 2 })].sort(),
        );
      });

      it('stopped from a peer the swarm does not know changes nothing', async () => {
        await announce({ peer: 1 });
        const r = await announce({ peer: 2, event: 'stopped' });
        expect(r).toMatchObject({ seeders: 0, leechers: 1, downloaded: 0 });
        expect(r.peers.length).toBe(0);
        const unknown = await announce({ swarm: 9, peer: 2, event: 'stopped' });
        expect(unknown).toMatchObject({ seeders: 0, leechers: 0, downloaded: 0 });
        expect(await store.scrape([infoHashOf(9)])).toEqual([counts(0, 0, 0)]);
      });

      it('completed turns a leecher into a seeder and counts one download', async () => {
        await announce({ peer: 1, event: 'started' });
        await announce({ peer: 2 });
        const r = await announce({ peer: 1, seeder: true, event: 'completed' });
        expect(r).toMatchObject({ seeders: 1, leechers: 1, downloaded: 1 });
        expect(decodePeers(r.peers, 4)).toEqual([endpointOf({ peer: 2 })]);
      });

      it('completed counts once per peer: a stored seeder repeating it adds nothing', async () => {
        await announce({ peer: 1 });
        await announce({ peer: 1, seeder: true, event: 'completed' });
        const again = await announce({ peer: 1, seeder: true, event: 'completed' });
        expect(again).toMatchObject({ seeders: 1, leechers: 0, downloaded: 1 });
        await announce({ peer: 1, seeder: true });
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(1, 0, 1)]);
      });

      splitIt(
        'downloadCounted is true on exactly the announces that added a download',
        async () => {
          expect((await announce({ peer: 1, event: 'started' })).downloadCounted).toBe(false);
          expect(
            (await announce({ peer: 1, seeder: true, event: 'completed' })).downloadCounted,
          ).toBe(true);
          expect(
            (await announce({ peer: 1, seeder: true, event: 'completed' })).downloadCounted,
          ).toBe(false);
          expect((await announce({ peer: 1, seeder: true })).downloadCounted).toBe(false);
          expect(
            (await announce({ peer: 2, seeder: true, event: 'completed' })).downloadCounted,
          ).toBe(true);
          expect((await announce({ peer: 2, event: 'stopped' })).downloadCounted).toBe(false);
          const burst = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              announce({ peer: 10 + i, seeder: true, event: 'completed' }),
            ),
          );
          expect(burst.filter((r) => r.downloadCounted === true)).toHaveLength(20);
          expect(await store.scrape([infoHashOf(1)])).toEqual([counts(21, 0, 22)]);
        },
      );

      splitIt(
        'addDownloads adds to the counters announces use; downloads reads them in order',
        async () => {
          const counter = store as PeerStore & Partial<DownloadCounter>;
          expect(typeof counter.addDownloads).toBe('function');
          expect(typeof counter.downloads).toBe('function');
          const downloadCounter = counter as DownloadCounter;
          await downloadCounter.addDownloads([
            [infoHashOf(1), 2],
            [infoHashOf(2), 1],
          ]);
          await downloadCounter.addDownloads([[infoHashOf(1), 1]]);
          expect(
            await downloadCounter.downloads([infoHashOf(1), infoHashOf(3), infoHashOf(2)]),
          ).toEqual([3, 0, 1]);
          const r = await announce({ peer: 1, seeder: true, event: 'completed' });
          expect(r.downloaded).toBe(4);
          expect(await store.scrape([infoHashOf(1)])).toEqual([counts(1, 0, 4)]);
        },
      );

      it('an unknown peer arriving with completed is a seeder and counts once', async () => {
        const r = await announce({ peer: 1, seeder: true, event: 'completed' });
        expect(r).toMatchObject({ seeders: 1, leechers: 0, downloaded: 1 });
        const again = await announce({ peer: 1, seeder: true, event: 'completed' });
        expect(again).toMatchObject({ seeders: 1, leechers: 0, downloaded: 1 });
      });

      it('a stored seeder reaching left=0 again without completed adds no download', async () => {
        await announce({ peer: 1 });
        const r = await announce({ peer: 1, seeder: true });
        expect(r).toMatchObject({ seeders: 1, leechers: 0, downloaded: 0 });
      });

      it('a seeder announcing left>0 becomes a leecher again', async () => {
        await announce({ peer: 1, seeder: true });
        const r = await announce({ peer: 1, seeder: false });
        expect(r).toMatchObject({ seeders: 0, leechers: 1 });
      });

      it('download counts survive every peer of the swarm leaving', async () => {
        await announce({ peer: 1, seeder: true, event: 'completed' });
        await announce({ peer: 2, seeder: true, event: 'completed' });
        await announce({ peer: 1, event: 'stopped' });
        const last = await announce({ peer: 2, event: 'stopped' });
        expect(last).toMatchObject({ seeders: 0, leechers: 0, downloaded: 2 });
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(0, 0, 2)]);
        const back = await announce({ peer: 3 });
        expect(back).toMatchObject({ seeders: 0, leechers: 1, downloaded: 2 });
      });
    });

    describe('partial seeds (BEP 21)', () => {
      partialIt('are counted among the leechers and apart, in announces and scrapes', async () => {
        await announce({ peer: 1, seeder: true });
        await announce({ peer: 2 });
        const r = await announce({ peer: 3, partialSeed: true });
        expect(r).toMatchObject({ seeders: 1, leechers: 2, partialSeeds: 1 });
        await announce({ peer: 4, partialSeed: true, family: 6 });
        // Re-announcing changes no count, in either role.
        await announce({ peer: 3, partialSeed: true });
        await announce({ peer: 2 });
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(1, 3, 0, 2)]);
      });

      partialIt('get downloading leechers only, and leechers get them', async () => {
        await announce({ peer: 1, seeder: true });
        await announce({ peer: 2, partialSeed: true });
        await announce({ peer: 3 });
        const partial = await announce({ peer: 4, partialSeed: true });
        expect(decodePeers(partial.peers, 4)).toEqual([endpointOf({ peer: 3 })]);
        const seeder = await announce({ peer: 5, seeder: true });
        expect(decodePeers(seeder.peers, 4)).toEqual([endpointOf({ peer: 3 })]);
        const leecher = await announce({ peer: 3 });
        expect(decodePeers(leecher.peers, 4).sort()).toEqual(
          [1, 2, 4, 5].map((peer) => endpointOf({ peer })).sort(),
        );
      });

      partialIt(
        'a partial seed that resumes, completes, stops or expires is counted as such',
        async () => {
          // The swarm's first partial seed counts itself.
          expect(await announce({ peer: 1, partialSeed: true })).toMatchObject({
            leechers: 1,
            partialSeeds: 1,
          });
          await announce({ peer: 2, partialSeed: true });
          await announce({ peer: 3, partialSeed: true });
          // Resumes downloading: a plain leecher again.
          expect(await announce({ peer: 1 })).toMatchObject({ leechers: 3, partialSeeds: 2 });
          // Completes: a seeder, one download.
          expect(await announce({ peer: 2, seeder: true, event: 'completed' })).toMatchObject({
            seeders: 1,
            leechers: 2,
            partialSeeds: 1,
            downloaded: 1,
          });
          expect(await announce({ peer: 3, event: 'stopped' })).toMatchObject({
            seeders: 1,
            leechers: 1,
            partialSeeds: 0,
          });
          await announce({ peer: 4, partialSeed: true });
          advanceSeconds(LIFETIME_SECONDS + 1);
          await announce({ peer: 5, seeder: true });
          expect(await store.scrape([infoHashOf(1)])).toEqual([counts(1, 0, 1, 0)]);
        },
      );
    });

    describe('address families', () => {
      it('IPv4 and IPv6 peers are kept apart: peers of the own family, counts of both', async () => {
        await announce({ peer: 1, family: 4, seeder: true });
        await announce({ peer: 2, family: 4 });
        await announce({ peer: 3, family: 6, seeder: true });
        await announce({ peer: 4, family: 6 });
        const r4 = await announce({ peer: 5, family: 4 });
        expect(r4).toMatchObject({ seeders: 2, leechers: 3 });
        expect(r4.peers.length).toBe(2 * 6);
        expect(decodePeers(r4.peers, 4).sort()).toEqual(
          [endpointOf({ peer: 1 }), endpointOf({ peer: 2 })].sort(),
        );
        const r6 = await announce({ peer: 6, family: 6 });
        expect(r6).toMatchObject({ seeders: 2, leechers: 4 });
        expect(r6.peers.length).toBe(2 * 18);
        expect(decodePeers(r6.peers, 6).sort()).toEqual(
          [endpointOf({ peer: 3, family: 6 }), endpointOf({ peer: 4, family: 6 })].sort(),
        );
      });

      it('the same number as IPv4 and IPv6 is two peers', async () => {
        await announce({ peer: 1, family: 4 });
        const r = await announce({ peer: 1, family: 6 });
        expect(r).toMatchObject({ leechers: 2 });
        expect(r.peers.length).toBe(0);
        const stop = await announce({ peer: 1, family: 6, event: 'stopped' });
        expect(stop).toMatchObject({ leechers: 1 });
      });
    });

    // docs/decisions.md "Peers that move".
    describeMoves('peers that move (same peer_id and key from a new address)', () => {
      for (const family of [4, 6] as const) {
        it(`replace their old entry instead of adding one, and the old address is never returned again (IPv${family})`, async () => {
          await announce({ peer: 1, family, key: 11 });
          await announce({ peer: 2, family, seeder: true });
          const moved = await announce({ peer: 1, family, key: 11, from: 50 });
          expect(moved).toMatchObject({ seeders: 1, leechers: 1 });
          expect(decodePeers(moved.peers, family)).toEqual([endpointOf({ peer: 2, family })]);
          for (let i = 0; i < 5; i++) {
            const seen = await announce({ peer: 2, family, seeder: true });
            expect(decodePeers(seen.peers, family)).toEqual([
              endpointOf({ peer: 1, family, from: 50 }),
            ]);
          }
          expect(await store.scrape([infoHashOf(1)])).toEqual([counts(1, 1, 0)]);
        });
      }

      it('a new port at the same address is a move too', async () => {
        await announce({ peer: 1, key: 11, port: 1000 });
        const r = await announce({ peer: 1, key: 11, port: 1001 });
        expect(r).toMatchObject({ leechers: 1 });
        const other = await announce({ peer: 2 });
        expect(decodePeers(other.peers, 4)).toEqual([endpointOf({ peer: 1, port: 1001 })]);
      });

      it('counts stay exact through many moves, back and forth, and as the mover turns seeder', async () => {
        await announce({ peer: 2, seeder: true });
        await announce({ peer: 3 });
        for (let i = 0; i < 6; i++) {
          const r = await announce({ peer: 1, key: 11, from: 100 + (i % 3), seeder: i >= 3 });
          expect(r).toMatchObject(
            i >= 3 ? { seeders: 2, leechers: 1 } : { seeders: 1, leechers: 2 },
          );
          advanceSeconds(30);
        }
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(2, 1, 0)]);
        const leecher = await announce({ peer: 3, numWant: 50 });
        expect(decodePeers(leecher.peers, 4).sort()).toEqual(
          [endpointOf({ peer: 2 }), endpointOf({ peer: 1, from: 102 })].sort(),
        );
      });

      it('a seeder that moved and repeats completed counts no second download', async () => {
        await announce({ peer: 1, key: 11, event: 'completed', seeder: true });
        const r = await announce({ peer: 1, key: 11, from: 60, event: 'completed', seeder: true });
        expect(r).toMatchObject({ seeders: 1, leechers: 0, downloaded: 1 });
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(1, 0, 1)]);
      });

      it('another key, no key, or another peer_id with the same key moves nothing', async () => {
        await announce({ peer: 1, key: 11 });
        expect(await announce({ peer: 1, key: 12, from: 51 })).toMatchObject({ leechers: 2 });
        expect(await announce({ peer: 1, from: 52 })).toMatchObject({ leechers: 3 });
        expect(await announce({ peer: 1, generation: 9, key: 11, from: 53 })).toMatchObject({
          leechers: 4,
        });
        const other = await announce({ peer: 2, numWant: 50 });
        expect(decodePeers(other.peers, 4).sort()).toEqual(
          [
            endpointOf({ peer: 1 }),
            endpointOf({ peer: 1, from: 51 }),
            endpointOf({ peer: 1, from: 52 }),
            endpointOf({ peer: 1, from: 53 }),
          ].sort(),
        );
      });

      it('an entry is bound by its latest announce: one without key from its address unbinds it', async () => {
        await announce({ peer: 1, key: 11 });
        advanceSeconds(60);
        await announce({ peer: 1 });
        advanceSeconds(60);
        expect(await announce({ peer: 1, key: 11, from: 51 })).toMatchObject({ leechers: 2 });
      });

      it('an entry rebound by a new key from its own address moves with the new key only', async () => {
        await announce({ peer: 1, key: 11 });
        advanceSeconds(60);
        await announce({ peer: 1, key: 12 });
        advanceSeconds(60);
        expect(await announce({ peer: 1, key: 11, from: 51 })).toMatchObject({ leechers: 2 });
        expect(await announce({ peer: 1, key: 12, from: 52 })).toMatchObject({ leechers: 2 });
        const other = await announce({ peer: 2, numWant: 50 });
        expect(decodePeers(other.peers, 4).sort()).toEqual(
          [endpointOf({ peer: 1, from: 51 }), endpointOf({ peer: 1, from: 52 })].sort(),
        );
      });

      it('stopped from the new address removes the entry, whether or not it moved there first', async () => {
        await announce({ peer: 1, key: 11 });
        await announce({ peer: 1, key: 11, from: 50 });
        expect(await announce({ peer: 1, key: 11, from: 50, event: 'stopped' })).toMatchObject({
          seeders: 0,
          leechers: 0,
        });
        await announce({ peer: 2, key: 22, seeder: true });
        const stop = await announce({ peer: 2, key: 22, from: 70, event: 'stopped' });
        expect(stop).toMatchObject({ seeders: 0, leechers: 0 });
        expect(stop.peers.length).toBe(0);
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(0, 0, 0)]);
      });

      it('an expired entry does not move back to life, and the mover is counted once', async () => {
        await announce({ peer: 1, key: 11 });
        advanceSeconds(LIFETIME_SECONDS + 1);
        expect(await announce({ peer: 1, key: 11, from: 50 })).toMatchObject({ leechers: 1 });
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(0, 1, 0)]);
      });

      it('a dual-stack client keeps one entry per family: the IPv6 announce does not remove the IPv4 entry', async () => {
        await announce({ peer: 1, family: 4, key: 11 });
        const r = await announce({ peer: 1, family: 6, key: 11 });
        expect(r).toMatchObject({ leechers: 2 });
        const v4 = await announce({ peer: 2, family: 4 });
        expect(decodePeers(v4.peers, 4)).toEqual([endpointOf({ peer: 1 })]);
        const moved = await announce({ peer: 1, family: 6, key: 11, from: 60 });
        expect(moved).toMatchObject({ leechers: 3 });
      });

      it('moves stay within their swarm', async () => {
        await announce({ swarm: 1, peer: 1, key: 11 });
        await announce({ swarm: 2, peer: 1, key: 11, from: 50 });
        expect(await store.scrape([infoHashOf(1), infoHashOf(2)])).toEqual([
          counts(0, 1, 0),
          counts(0, 1, 0),
        ]);
      });
    });

    describe('expiry', () => {
      it('expired peers are neither returned nor counted, even before garbage collection', async () => {
        await announce({ peer: 1, seeder: true });
        await announce({ peer: 2 });
        await announce({ peer: 3, family: 6 });
        advanceSeconds(LIFETIME_SECONDS + 1);
        const r = await announce({ peer: 4 });
        expect(r).toMatchObject({ seeders: 0, leechers: 1 });
        expect(r.peers.length).toBe(0);
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(0, 1, 0)]);
      });

      it('a peer stays live until peer_lifetime has passed since its last announce', async () => {
        await announce({ peer: 1 });
        advanceSeconds(LIFETIME_SECONDS - 1);
        expect(decodePeers((await announce({ peer: 2 })).peers, 4)).toEqual([
          endpointOf({ peer: 1 }),
        ]);
        await announce({ peer: 1 });
        advanceSeconds(LIFETIME_SECONDS - 1);
        // Peer 1 re-announced: still live; peer 2 announced at the same moment and is live too.
        const r = await announce({ peer: 3 });
        expect(r).toMatchObject({ leechers: 3 });
        advanceSeconds(2);
        expect(await announce({ peer: 3 })).toMatchObject({ leechers: 1 });
      });

      it('scrape counts only live peers', async () => {
        await announce({ swarm: 1, peer: 1, seeder: true });
        await announce({ swarm: 2, peer: 2 });
        advanceSeconds(LIFETIME_SECONDS / 2);
        await announce({ swarm: 1, peer: 3 });
        advanceSeconds(LIFETIME_SECONDS / 2 + 1);
        expect(await store.scrape([infoHashOf(1), infoHashOf(2)])).toEqual([
          counts(0, 1, 0),
          counts(0, 0, 0),
        ]);
      });

      promiseIt(
        'a peer promised a longer lifetime stays live and counted until it has passed',
        async () => {
          await announce({ peer: 1, seeder: true, lifetimeSeconds: 3 * LIFETIME_SECONDS });
          advanceSeconds(2 * LIFETIME_SECONDS);
          await store.collectGarbage();
          const r = await announce({ peer: 2 });
          expect(r).toMatchObject({ seeders: 1, leechers: 1 });
          expect(decodePeers(r.peers, 4)).toEqual([endpointOf({ peer: 1 })]);
          // Peer 2 (announced at 2 lifetimes, the store's own lifetime) ends with peer 1.
          advanceSeconds(LIFETIME_SECONDS - 1);
          expect(await store.scrape([infoHashOf(1)])).toEqual([counts(1, 1, 0)]);
          advanceSeconds(2);
          expect(await store.scrape([infoHashOf(1)])).toEqual([counts(0, 0, 0)]);
        },
      );

      promiseIt("a shorter promise to another peer never cuts a longer one's", async () => {
        await announce({ peer: 1, lifetimeSeconds: 3 * LIFETIME_SECONDS });
        await announce({ peer: 1, family: 6, lifetimeSeconds: 3 * LIFETIME_SECONDS });
        await announce({ peer: 2, lifetimeSeconds: LIFETIME_SECONDS });
        await announce({ peer: 3, family: 6 });
        advanceSeconds(LIFETIME_SECONDS + 1);
        await store.collectGarbage();
        advanceSeconds(LIFETIME_SECONDS);
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(0, 2, 0)]);
        expect(decodePeers((await announce({ peer: 4, family: 6 })).peers, 6)).toEqual([
          endpointOf({ peer: 1, family: 6 }),
        ]);
      });

      promiseIt('a re-announce with a shorter promise replaces the longer one', async () => {
        await announce({ peer: 1, lifetimeSeconds: 3 * LIFETIME_SECONDS });
        await announce({ peer: 1, lifetimeSeconds: LIFETIME_SECONDS });
        advanceSeconds(LIFETIME_SECONDS + 1);
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(0, 0, 0)]);
      });

      it('an expired seeder that announces completed again counts as a new download', async () => {
        // After expiry the peer is gone; the swarm does not know it any more.
        await announce({ peer: 1, seeder: true, event: 'completed' });
        advanceSeconds(LIFETIME_SECONDS + 1);
        const r = await announce({ peer: 1, seeder: true, event: 'completed' });
        expect(r).toMatchObject({ seeders: 1, downloaded: 2 });
      });
    });

    describe('peer selection', () => {
      it('numWant is honoured', async () => {
        for (let p = 1; p <= 30; p++) await announce({ peer: p });
        for (const numWant of [1, 5, 29]) {
          const r = await announce({ peer: 100, numWant });
          expect(decodePeers(r.peers, 4)).toHaveLength(numWant);
        }
        const all = await announce({ peer: 100, numWant: 200 });
        expect(new Set(decodePeers(all.peers, 4)).size).toBe(30);
      });

      it('numWant 0 returns no peers but still the counts', async () => {
        await announce({ peer: 1 });
        const r = await announce({ peer: 2, numWant: 0 });
        expect(r.peers.length).toBe(0);
        expect(r).toMatchObject({ leechers: 2 });
      });

      it('sampled peers are distinct', async () => {
        for (let p = 1; p <= 40; p++) await announce({ peer: p, seeder: p % 3 === 0 });
        for (let i = 0; i < 20; i++) {
          const r = await announce({ peer: 1, numWant: 10 });
          const got = decodePeers(r.peers, 4);
          expect(got).toHaveLength(10);
          expect(new Set(got).size).toBe(10);
        }
      });

      idsIt('withPeerIds returns the ids parallel to the peers', async () => {
        for (let p = 1; p <= 10; p++) await announce({ peer: p, family: p % 2 === 0 ? 6 : 4 });
        for (const family of [4, 6] as const) {
          const r = await announce({ peer: 50, family, withPeerIds: true, numWant: 3 });
          const peers = decodePeers(r.peers, family);
          expect(peers).toHaveLength(3);
          expect(r.peerIds).toHaveLength(3);
          const byEndpoint = new Map<string, Buffer>();
          for (let p = 1; p <= 10; p++)
            byEndpoint.set(endpointOf({ peer: p, family: p % 2 === 0 ? 6 : 4 }), peerIdOf(p));
          peers.forEach((ep, i) => expect(r.peerIds?.[i]).toEqual(byEndpoint.get(ep)));
        }
      });

      it(`withPeerIds on a store that keeps ${keepsPeerIds ? '' : 'no '}peer ids answers peers with peerIds ${keepsPeerIds ? 'parallel to them' : 'undefined or parallel to peers'}`, async () => {
        // A gateway encodes a non-compact answer from this; storage-api sends it as is
        // (docs/storage-api.md "Errors per op"). Ids of another length than the peers
        // are an answer no client can be given.
        for (let p = 1; p <= 6; p++) await announce({ peer: p, family: p % 2 === 0 ? 6 : 4 });
        for (const family of [4, 6] as const) {
          const r = await announce({ peer: 50, family, withPeerIds: true });
          const peers = decodePeers(r.peers, family);
          expect(peers).toHaveLength(3);
          if (keepsPeerIds) expect(r.peerIds).toBeDefined();
          if (r.peerIds !== undefined) {
            expect(r.peerIds).toHaveLength(peers.length);
            for (const id of r.peerIds) expect(id.length).toBe(20);
          }
          const none = await announce({ peer: 60, family, withPeerIds: true, numWant: 0 });
          expect(none.peers.length).toBe(0);
          expect(none.peerIds === undefined || none.peerIds.length === 0).toBe(true);
        }
      });

      it('peerIds is undefined unless asked for', async () => {
        await announce({ peer: 1 });
        const r = await announce({ peer: 2 });
        expect(r.peerIds).toBeUndefined();
      });

      it('random selection covers the swarm', async () => {
        for (let p = 1; p <= 20; p++) await announce({ peer: p });
        const seen = new Set<string>();
        for (let i = 0; i < 200 && seen.size < 20; i++) {
          for (const ep of decodePeers((await announce({ peer: 99, numWant: 5 })).peers, 4))
            seen.add(ep);
        }
        // P(a given peer missing from 200 samples of 5 out of 20) = 0.75^200, i.e. never.
        expect(seen.size).toBe(20);
      });
    });

    describe('scrape', () => {
      it('unknown hashes are zeros and the order of the request is kept', async () => {
        await announce({ swarm: 1, peer: 1, seeder: true, event: 'completed' });
        await announce({ swarm: 3, peer: 2 });
        await announce({ swarm: 3, peer: 3, family: 6 });
        expect(
          await store.scrape([infoHashOf(3), infoHashOf(2), infoHashOf(1), infoHashOf(3)]),
        ).toEqual([counts(0, 2, 0), counts(0, 0, 0), counts(1, 0, 1), counts(0, 2, 0)]);
      });

      it('an empty request gets an empty answer', async () => {
        expect(await store.scrape([])).toEqual([]);
      });
    });

    describe('stats and garbage collection', () => {
      it('stats equal the truth, per family, without expired peers', async () => {
        expect(await store.stats()).toEqual({
          torrents: 0,
          seeders: { v4: 0, v6: 0 },
          leechers: { v4: 0, v6: 0 },
        });
        await announce({ swarm: 1, peer: 1, seeder: true });
        await announce({ swarm: 1, peer: 2 });
        await announce({ swarm: 1, peer: 3, family: 6 });
        await announce({ swarm: 2, peer: 4, family: 6, seeder: true });
        await announce({ swarm: 3, peer: 5 });
        expect(await store.stats()).toEqual({
          torrents: 3,
          seeders: { v4: 1, v6: 1 },
          leechers: { v4: 2, v6: 1 },
        });
        await announce({ swarm: 3, peer: 5, event: 'stopped' });
        await announce({ swarm: 1, peer: 2, seeder: true, event: 'completed' });
        expect(await store.stats()).toEqual({
          torrents: 2,
          seeders: { v4: 2, v6: 1 },
          leechers: { v4: 0, v6: 1 },
        });
        advanceSeconds(LIFETIME_SECONDS - 1);
        await announce({ swarm: 2, peer: 4, family: 6, seeder: true });
        advanceSeconds(2);
        expect(await store.stats()).toEqual({
          torrents: 1,
          seeders: { v4: 0, v6: 1 },
          leechers: { v4: 0, v6: 0 },
        });
      });

      it('topSwarms lists the swarms with the most live peers first, both families counted', async (ctx) => {
        const top = store;
        if (!hasTopSwarms(top)) return ctx.skip();
        expect(await top.topSwarms(10)).toEqual([]);
        // swarm 1: 4 peers (2 v4 + 2 v6), swarm 2: 3, swarm 3: 2 (one expires), swarm 4: 1.
        await announce({ swarm: 3, peer: 30 });
        await announce({ swarm: 3, peer: 31, seeder: true });
        advanceSeconds(LIFETIME_SECONDS / 2);
        await announce({ swarm: 1, peer: 1, seeder: true });
        await announce({ swarm: 1, peer: 2 });
        await announce({ swarm: 1, peer: 3, family: 6, seeder: true });
        await announce({ swarm: 1, peer: 4, family: 6 });
        await announce({ swarm: 2, peer: 5 });
        await announce({ swarm: 2, peer: 6 });
        await announce({ swarm: 2, peer: 7, family: 6, seeder: true });
        await announce({ swarm: 4, peer: 8 });
        await announce({ swarm: 3, peer: 31, seeder: true });
        const view = (list: TopSwarm[]) =>
          list.map((t) => [t.infoHash.toString('hex'), t.seeders, t.leechers]);
        expect(view(await top.topSwarms(10))).toEqual([
          [infoHashOf(1).toString('hex'), 2, 2],
          [infoHashOf(2).toString('hex'), 1, 2],
          [infoHashOf(3).toString('hex'), 1, 1],
          [infoHashOf(4).toString('hex'), 0, 1],
        ]);
        expect(view(await top.topSwarms(2))).toEqual([
          [infoHashOf(1).toString('hex'), 2, 2],
          [infoHashOf(2).toString('hex'), 1, 2],
        ]);
        // Peer 30 expires: swarm 3 ties with swarm 4 at one peer.
        advanceSeconds(LIFETIME_SECONDS / 2 + 1);
        const after = view(await top.topSwarms(10));
        expect(after.slice(0, 2)).toEqual([
          [infoHashOf(1).toString('hex'), 2, 2],
          [infoHashOf(2).toString('hex'), 1, 2],
        ]);
        expect(after.slice(2).sort()).toEqual(
          [
            [infoHashOf(3).toString('hex'), 1, 0],
            [infoHashOf(4).toString('hex'), 0, 1],
          ].sort(),
        );
        await announce({ swarm: 1, peer: 1, event: 'stopped' });
        await announce({ swarm: 1, peer: 2, event: 'stopped' });
        await announce({ swarm: 1, peer: 3, family: 6, event: 'stopped' });
        await announce({ swarm: 1, peer: 4, family: 6, event: 'stopped' });
        expect(view(await top.topSwarms(1))).toEqual([[infoHashOf(2).toString('hex'), 1, 2]]);
        for (const bad of [0, -1, 1.5, Number.NaN]) {
          const err: unknown = await top.topSwarms(bad).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(isStoreError(err) && err.code, String(bad)).toBe('STORE_ERR_BAD_INPUT');
        }
      });

      it('a full scrape lists every live swarm with its counts, the most peers first, and says when it left some out', async () => {
        const full = fullScrapeOf(store);
        // docs/full-scrape.md: every store answers one.
        expect(full).toBeDefined();
        if (full === undefined) return;
        expect(await full(10)).toEqual({ swarms: [], truncated: false });
        // swarm 1: 3 peers, one download; swarm 2: 2 (both families); swarm 3: 1, which expires.
        await announce({ swarm: 3, peer: 9 });
        advanceSeconds(LIFETIME_SECONDS / 2);
        await announce({ swarm: 1, peer: 1, seeder: true });
        await announce({ swarm: 1, peer: 2 });
        await announce({ swarm: 1, peer: 2, seeder: true, event: 'completed' });
        await announce({ swarm: 1, peer: 3 });
        await announce({ swarm: 2, peer: 4, family: 6, seeder: true });
        await announce({ swarm: 2, peer: 5 });
        const view = (r: FullScrapeResult) => ({
          truncated: r.truncated,
          swarms: r.swarms.map((e) => [
            e.infoHash.toString('hex'),
            e.seeders,
            e.leechers,
            e.downloaded,
          ]),
        });
        const h = (n: number) => infoHashOf(n).toString('hex');
        expect(view(await full(10))).toEqual({
          truncated: false,
          swarms: [
            [h(1), 2, 1, 1],
            [h(2), 1, 1, 0],
            [h(3), 0, 1, 0],
          ],
        });
        expect(view(await full(2))).toEqual({
          truncated: true,
          swarms: [
            [h(1), 2, 1, 1],
            [h(2), 1, 1, 0],
          ],
        });
        advanceSeconds(LIFETIME_SECONDS / 2 + 1);
        expect(view(await full(2))).toEqual({
          truncated: false,
          swarms: [
            [h(1), 2, 1, 1],
            [h(2), 1, 1, 0],
          ],
        });
        for (const bad of [0, -1, 1.5, Number.NaN, FULL_SCRAPE_MAX + 1]) {
          const err: unknown = await full(bad).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(isStoreError(err) && err.code, String(bad)).toBe('STORE_ERR_BAD_INPUT');
        }
      });

      it('collectGarbage removes expired peers and empty swarms and reports the counts', async () => {
        await announce({ swarm: 1, peer: 1 });
        await announce({ swarm: 1, peer: 2, family: 6, seeder: true });
        await announce({ swarm: 2, peer: 3 });
        advanceSeconds(LIFETIME_SECONDS / 2);
        await announce({ swarm: 3, peer: 4 });
        await announce({ swarm: 1, peer: 5 });
        advanceSeconds(LIFETIME_SECONDS / 2 + 1);
        expect(await store.collectGarbage()).toEqual({ peersRemoved: 3, swarmsRemoved: 1 });
        expect(await store.collectGarbage()).toEqual({ peersRemoved: 0, swarmsRemoved: 0 });
        expect(await store.scrape([infoHashOf(1), infoHashOf(2), infoHashOf(3)])).toEqual([
          counts(0, 1, 0),
          counts(0, 0, 0),
          counts(0, 1, 0),
        ]);
      });

      it('collectGarbage keeps download counts', async () => {
        await announce({ peer: 1, seeder: true, event: 'completed' });
        advanceSeconds(LIFETIME_SECONDS + 1);
        expect(await store.collectGarbage()).toEqual({ peersRemoved: 1, swarmsRemoved: 1 });
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(0, 0, 1)]);
      });
    });

    describe('concurrency', () => {
      it('500 concurrent announces to one swarm lose nothing', async () => {
        const results = await Promise.all(
          Array.from({ length: 500 }, (_, i) => announce({ peer: i + 1, numWant: 1000 })),
        );
        for (const r of results) {
          // Each answer describes one state of the swarm that includes the announcer (chihaya#457).
          expect(r.leechers).toBeGreaterThanOrEqual(1);
          expect(r.leechers).toBeLessThanOrEqual(500);
          expect(r.peers.length / 6).toBe(r.leechers - 1);
        }
        expect(Math.max(...results.map((r) => r.leechers))).toBe(500);
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(0, 500, 0)]);
        const last = await announce({ peer: 501, numWant: 1000 });
        expect(new Set(decodePeers(last.peers, 4)).size).toBe(500);
      });

      it('concurrent completed events from distinct peers each count once', async () => {
        await Promise.all(Array.from({ length: 50 }, (_, i) => announce({ peer: i + 1 })));
        await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            announce({ peer: i + 1, seeder: true, event: 'completed' }),
          ),
        );
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(50, 0, 50)]);
      });
    });

    // docs/policy.md "Shared rate limits": what every gateway adds and reads back.
    describe('shared rate-limit counters', () => {
      // Windows far apart per test: a server outlives one store (and one test run).
      const base = () => 1_000_000 + Math.floor(Math.random() * 1_000_000) * 4;

      it('adds each key, answers the totals of the window and the one before', async (ctx) => {
        const counters = store;
        if (!hasRateCounters(counters)) return ctx.skip();
        const w = base();
        expect(
          await counters.addRateCounts(w, 10_000, ['4-c0000201', '6-20010db800000001'], [3, 1]),
        ).toEqual({
          current: [3, 1],
          previous: [0, 0],
        });
        // A second gateway's counts of the same window add up.
        expect(await counters.addRateCounts(w, 10_000, ['4-c0000201'], [2])).toEqual({
          current: [5],
          previous: [0],
        });
        expect(
          await counters.addRateCounts(w + 1, 10_000, ['4-c0000201', '4-c0000202'], [1, 1]),
        ).toEqual({
          current: [1, 1],
          previous: [5, 0],
        });
        // Two windows later the oldest is not the previous one any more.
        expect(await counters.addRateCounts(w + 3, 10_000, ['4-c0000201'], [1])).toEqual({
          current: [1],
          previous: [0],
        });
      });

      it('counts concurrent adds exactly', async (ctx) => {
        const counters = store;
        if (!hasRateCounters(counters)) return ctx.skip();
        const w = base();
        const answers = await Promise.all(
          Array.from({ length: 50 }, () => counters.addRateCounts(w, 10_000, ['4-0a000001'], [2])),
        );
        expect(Math.max(...answers.map((a) => a.current[0]!))).toBe(100);
        expect(new Set(answers.map((a) => a.current[0])).size).toBe(50);
      });

      it('rejects bad keys, deltas and windows with STORE_ERR_BAD_INPUT', async (ctx) => {
        const counters = store;
        if (!hasRateCounters(counters)) return ctx.skip();
        const w = base();
        const bad: Array<[number, number, string[], number[]]> = [
          [w, 10_000, ['has space'], [1]],
          [w, 10_000, ['4-c0000201'], [0]],
          [w, 10_000, ['4-c0000201'], [1, 2]],
          [-1, 10_000, ['4-c0000201'], [1]],
          [w, 0, ['4-c0000201'], [1]],
        ];
        for (const [window, windowMs, keys, deltas] of bad) {
          const err: unknown = await counters.addRateCounts(window, windowMs, keys, deltas).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(isStoreError(err) && err.code, JSON.stringify(keys)).toBe('STORE_ERR_BAD_INPUT');
        }
      });
    });

    describe('input', () => {
      it('rejects malformed announces with STORE_ERR_BAD_INPUT', async () => {
        const bad: PeerAnnounce[] = [
          { ...announceOf({ peer: 1 }), infoHash: Buffer.alloc(19) },
          { ...announceOf({ peer: 1 }), peerId: Buffer.alloc(21) },
          { ...announceOf({ peer: 1 }), address: Buffer.alloc(16) },
          { ...announceOf({ peer: 1, family: 6 }), address: Buffer.alloc(4) },
          { ...announceOf({ peer: 1 }), port: 70000 },
          { ...announceOf({ peer: 1 }), numWant: -1 },
          { ...announceOf({ peer: 1 }), keyHash: Buffer.alloc(7, 1) },
        ];
        for (const a of bad) {
          const err: unknown = await store.announce(a).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(isStoreError(err) && err.code).toBe('STORE_ERR_BAD_INPUT');
        }
        expect(await store.scrape([infoHashOf(1)])).toEqual([counts(0, 0, 0)]);
      });

      it('rejects a scrape with a hash that is not 20 bytes with STORE_ERR_BAD_INPUT', async () => {
        for (const bad of [Buffer.alloc(19), Buffer.alloc(21)]) {
          const err: unknown = await store.scrape([infoHashOf(1), bad]).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(isStoreError(err) && err.code, String(bad.length)).toBe('STORE_ERR_BAD_INPUT');
        }
      });
    });
  });
}

export function describeDataStoreConformance(name: string, factory: DataStoreFactory): void {
  describe(`DataStore conformance: ${name}`, () => {
    let store: DataStore;
    beforeEach(async () => {
      store = await factory();
    });
    afterEach(async () => {
      await store.close();
    });

    it('get of a missing key is undefined', async () => {
      expect(await store.get('approved', 'nope')).toBeUndefined();
    });

    it('put then get returns the value; put again overwrites', async () => {
      await store.put('approved', 'k', 'v1');
      expect(await store.get('approved', 'k')).toBe('v1');
      await store.put('approved', 'k', 'v2');
      expect(await store.get('approved', 'k')).toBe('v2');
      expect(await store.list('approved')).toEqual([['k', 'v2']]);
    });

    it('an empty string is a value, distinct from a missing key', async () => {
      await store.put('c', 'empty', '');
      expect(await store.get('c', 'empty')).toBe('');
    });

    it('delete reports whether the key existed', async () => {
      await store.put('c', 'k', 'v');
      expect(await store.delete('c', 'k')).toBe(true);
      expect(await store.get('c', 'k')).toBeUndefined();
      expect(await store.delete('c', 'k')).toBe(false);
      expect(await store.list('c')).toEqual([]);
    });

    it('list returns every entry of a context ordered by key', async () => {
      for (const k of ['m', 'b', 'z', 'a1', 'a', 'a0']) await store.put('ctx', k, `v-${k}`);
      expect(await store.list('ctx')).toEqual([
        ['a', 'v-a'],
        ['a0', 'v-a0'],
        ['a1', 'v-a1'],
        ['b', 'v-b'],
        ['m', 'v-m'],
        ['z', 'v-z'],
      ]);
      expect(await store.list('other')).toEqual([]);
    });

    it('contexts are isolated', async () => {
      await store.put('passkeys', 'k', 'p');
      await store.put('approved', 'k', 'a');
      expect(await store.get('passkeys', 'k')).toBe('p');
      expect(await store.get('approved', 'k')).toBe('a');
      await store.delete('passkeys', 'k');
      expect(await store.get('approved', 'k')).toBe('a');
      expect(await store.list('passkeys')).toEqual([]);
      expect(await store.list('approved')).toEqual([['k', 'a']]);
    });

    it('keeps unicode values and keys intact', async () => {
      const value = 'Größe 🐟 — 鱼群 — \u00e9\u0301';
      await store.put('ctx', 'ключ-🔑', value);
      expect(await store.get('ctx', 'ключ-🔑')).toBe(value);
      expect(await store.list('ctx')).toEqual([['ключ-🔑', value]]);
    });

    it('concurrent puts to distinct keys are all kept', async () => {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          store.put('bulk', `k${String(i).padStart(3, '0')}`, String(i)),
        ),
      );
      const entries = await store.list('bulk');
      expect(entries).toHaveLength(100);
      expect(entries[0]).toEqual(['k000', '0']);
      expect(entries[99]).toEqual(['k099', '99']);
    });
  });
}
