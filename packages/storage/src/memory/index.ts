// The in-memory driver: the embedded default, so `make run` is a whole
// tracker with no server to install (docs/decisions.md "Services").
//
// Swarms live in `shards` Maps keyed by the info hash. Sharding bounds the
// work done between two event-loop turns during garbage collection, and keeps
// each Map far below V8's limit of 2^24 entries. Nothing ever walks every
// swarm in one synchronous step: expiry happens lazily inside the swarm an
// operation touches, and collectGarbage()/stats() walk one shard at a time,
// yielding to the event loop in between.
//
// Peers are packed records (see peer-table.ts). Download counts are kept in
// their own Map so they outlive the swarm's peers (docs/decisions.md "Storage":
// downloads are the durable part; here "durable" means for the process'
// lifetime).
import { setImmediate as nextTurn } from 'node:timers/promises';
import { StoreError } from '../errors.ts';
import { sweepEvery, type OnSweep } from '../sweeper.ts';
import {
  INFO_HASH_LEN,
  TopSwarms,
  badInput,
  lifetimeOf,
  validateAnnounce,
  validateInfoHashes,
  validateRateCounts,
  validateTopLimit,
} from '../validate.ts';
import type {
  AnnounceResult,
  GcResult,
  PeerAnnounce,
  StoreOptions,
  StoreStats,
  SwarmCounts,
  TopSwarm,
} from '../types.ts';
import type { InProcessStore, RateCounts } from '../capabilities.ts';
import {
  NO_EXPIRY,
  PeerTable,
  ROLE_LEECHER,
  ROLE_PARTIAL_SEED,
  ROLE_SEEDER,
  RecordArena,
} from './peer-table.ts';

/** The counts of a swarm without live peers. */
function noPeers(downloaded: number): SwarmCounts {
  return { seeders: 0, leechers: 0, downloaded, partialSeeds: 0 };
}

export interface MemoryStoreOptions extends StoreOptions {
  /** Number of swarm maps; garbage collection yields between two. Default 64. */
  shards?: number;
  /**
   * Runs collectGarbage() this often until close(), for a store no
   * gc-worker reaches (an embedded gateway's). Default: never.
   */
  sweepEveryMs?: number;
  /** Told each sweep's outcome (logging). */
  onSweep?: OnSweep;
}

/**
 * announceSync/scrapeSync: the Promise-free forms for an embedded caller on
 * the hot path; same semantics, throwing StoreError instead of rejecting.
 */
export interface MemoryStore extends InProcessStore {
  readonly driver: 'memory';
}

const DEFAULT_SHARDS = 64;
const MAX_SHARDS = 65536;
// Times are seconds since the store was created: they stay within V8's small
// integers (no boxed doubles in hot fields) for 68 years of uptime.
const MAX_EXPIRY_SECONDS = NO_EXPIRY - 1;
const EMPTY = Buffer.alloc(0);

class Swarm {
  t4: PeerTable | null = null;
  t6: PeerTable | null = null;
  downloaded: number;
  constructor(downloaded: number) {
    this.downloaded = downloaded;
  }
}

export function createMemoryStore(opts: MemoryStoreOptions): MemoryStore {
  return new MemoryStoreImpl(opts);
}

class MemoryStoreImpl implements MemoryStore {
  readonly driver = 'memory' as const;
  private readonly lifetime: number;
  private readonly clock: () => number;
  private readonly epochSeconds: number;
  private readonly shards: Array<Map<string, Swarm>>;
  private readonly downloadCounts = new Map<string, number>();
  private readonly kv = new Map<string, Map<string, string>>();
  /** Shared rate-limit counts of the current window and the one before (docs/policy.md "Shared rate limits"). */
  private rateWindows = new Map<number, Map<string, number>>();
  private arena4 = new RecordArena(4 + 2);
  private arena6 = new RecordArena(16 + 2);
  /** Compact form of the announcing peer, reused by every call. */
  private readonly key = new Uint8Array(18);
  private closed = false;
  private sweeper: NodeJS.Timeout | undefined;
  // Totals kept exact on every insert, removal, role change and expiry.
  private torrents = 0;
  private seeders4 = 0;
  private leechers4 = 0;
  private seeders6 = 0;
  private leechers6 = 0;

  constructor(opts: MemoryStoreOptions) {
    const shards = opts.shards ?? DEFAULT_SHARDS;
    const problems: string[] = [];
    if (!Number.isInteger(opts.peerLifetimeSeconds) || opts.peerLifetimeSeconds < 1) {
      problems.push('peerLifetimeSeconds must be a positive integer');
    }
    if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
      problems.push(`shards must be an integer in 1..${MAX_SHARDS}`);
    }
    if (problems.length > 0) throw new StoreError('STORE_ERR_CONFIG', problems.join('; '));
    this.lifetime = opts.peerLifetimeSeconds;
    this.clock = opts.clock ?? Date.now;
    this.epochSeconds = Math.floor(this.clock() / 1000);
    this.shards = Array.from({ length: shards }, () => new Map<string, Swarm>());
    if (opts.sweepEveryMs !== undefined)
      this.sweeper = sweepEvery(() => this.collectGarbage(), opts.sweepEveryMs, opts.onSweep);
  }

  // async: a validation error becomes a rejection, never a synchronous throw.
  // eslint-disable-next-line @typescript-eslint/require-await
  async announce(a: PeerAnnounce): Promise<AnnounceResult> {
    return this.announceSync(a);
  }

  announceSync(a: PeerAnnounce): AnnounceResult {
    this.assertOpen();
    validateAnnounce(a);
    const nowSec = this.nowSeconds();
    const hash = a.infoHash.toString('latin1');
    const shard = this.shardOf(a.infoHash);
    let swarm = shard.get(hash);
    if (swarm !== undefined) this.expire(swarm, nowSec);

    const key = this.key;
    const address = a.address;
    // A byte loop beats TypedArray#set's native call for 4 or 16 bytes.
    for (let j = 0; j < address.length; j++) key[j] = address[j]!;
    const keyLen = address.length + 2;
    key[keyLen - 2] = a.port >>> 8;
    key[keyLen - 1] = a.port & 0xff;
    const v6 = a.family === 6;
    const keyHash = a.keyHash;

    if (a.event === 'stopped') {
      if (swarm === undefined) {
        return {
          ...noPeers(this.downloadCounts.get(hash) ?? 0),
          peers: EMPTY,
          peerIds: a.withPeerIds ? [] : undefined,
          downloadCounted: false,
        };
      }
      const table = v6 ? swarm.t6 : swarm.t4;
      if (table !== null) {
        const i = table.find(key);
        if (i >= 0) this.remove(table, i, v6);
        // A client that moved and stops from its new address leaves nothing behind.
        if (keyHash !== undefined) {
          const j = table.findKeyHash(keyHash);
          if (j >= 0) this.remove(table, j, v6);
        }
        if (table.size === 0) this.dropTable(swarm, v6);
      }
      const result = this.resultOf(swarm, EMPTY, a.withPeerIds ? [] : undefined, false);
      this.dropIfEmpty(shard, hash, swarm);
      return result;
    }

    if (swarm === undefined) {
      swarm = new Swarm(this.downloadCounts.get(hash) ?? 0);
      shard.set(hash, swarm);
      this.torrents++;
    }
    let table = v6 ? swarm.t6 : swarm.t4;
    if (table === null) {
      table = new PeerTable(v6 ? this.arena6 : this.arena4);
      if (v6) swarm.t6 = table;
      else swarm.t4 = table;
    }

    const completed = a.event === 'completed';
    const seeder = a.seeder || completed;
    const role = seeder ? ROLE_SEEDER : a.partialSeed === true ? ROLE_PARTIAL_SEED : ROLE_LEECHER;
    const expiry = Math.min(nowSec + lifetimeOf(a, this.lifetime), MAX_EXPIRY_SECONDS);
    let self = table.find(key);
    // docs/decisions.md "Peers that move": the entry this client announced last
    // with the same key hash, at another address, is replaced by this one.
    let movedSeeder = false;
    if (keyHash !== undefined) {
      const j = table.findKeyHash(keyHash);
      if (j >= 0 && j !== self) {
        movedSeeder = table.isSeeder(j);
        this.remove(table, j, v6);
        // Removal moves the last record into the hole, which may be this one.
        if (self >= 0) self = table.find(key);
      }
    }
    let counted: boolean;
    if (self < 0) {
      self = table.insert(key, a.peerId, expiry, role, keyHash);
      this.count(v6, seeder, 1);
      // Once per peer: a seeder that moved repeating `completed` adds nothing.
      counted = completed && !movedSeeder;
    } else {
      const was = table.isSeeder(self);
      table.update(self, a.peerId, expiry, role, keyHash);
      if (was !== seeder) {
        this.count(v6, was, -1);
        this.count(v6, seeder, 1);
      }
      // Once per peer: a stored seeder repeating `completed` adds nothing.
      counted = completed && !was && !movedSeeder;
    }
    if (counted) this.addDownload(swarm, hash);

    // Seeders and partial seeds get downloading leechers only; leechers get everyone but themselves.
    const wantsNothing = role !== ROLE_LEECHER;
    const eligible = wantsNothing ? table.downloaders : table.size - 1;
    const want = Math.min(a.numWant, eligible);
    const ids = a.withPeerIds ? [] : undefined;
    let peers = EMPTY;
    if (want > 0) {
      peers = Buffer.allocUnsafe(want * keyLen);
      const got = table.sample(peers, want, wantsNothing, self, ids);
      // The counters make got === want; never let unwritten pool bytes reach a client.
      if (got !== want) peers = peers.subarray(0, got * keyLen);
    }
    return this.resultOf(swarm, peers, ids, counted);
  }

  // async: a validation error becomes a rejection, never a synchronous throw.
  // eslint-disable-next-line @typescript-eslint/require-await
  async scrape(infoHashes: readonly Buffer[]): Promise<SwarmCounts[]> {
    return this.scrapeSync(infoHashes);
  }

  scrapeSync(infoHashes: readonly Buffer[]): SwarmCounts[] {
    this.assertOpen();
    validateInfoHashes(infoHashes);
    const nowSec = this.nowSeconds();
    return infoHashes.map((h) => {
      const hash = h.toString('latin1');
      const shard = this.shardOf(h);
      const swarm = shard.get(hash);
      if (swarm === undefined) return noPeers(this.downloadCounts.get(hash) ?? 0);
      this.expire(swarm, nowSec);
      const counts = this.countsOf(swarm);
      this.dropIfEmpty(shard, hash, swarm);
      return counts;
    });
  }

  async collectGarbage(): Promise<GcResult> {
    this.assertOpen();
    let peersRemoved = 0;
    let swarmsRemoved = 0;
    for (const shard of this.shards) {
      const nowSec = this.nowSeconds();
      // Deleting the visited entry during Map#forEach is well defined (ECMA-262 24.1.3.5).
      shard.forEach((swarm, hash) => {
        peersRemoved += this.expire(swarm, nowSec);
        if (this.dropIfEmpty(shard, hash, swarm)) swarmsRemoved++;
      });
      await nextTurn();
      if (this.closed) break;
    }
    return { peersRemoved, swarmsRemoved };
  }

  async stats(): Promise<StoreStats> {
    // Peers past their lifetime must not be counted; a sweep settles them.
    await this.collectGarbage();
    this.assertOpen();
    return {
      torrents: this.torrents,
      seeders: { v4: this.seeders4, v6: this.seeders6 },
      leechers: { v4: this.leechers4, v6: this.leechers6 },
    };
  }

  async topSwarms(limit: number): Promise<TopSwarm[]> {
    this.assertOpen();
    validateTopLimit(limit);
    const top = new TopSwarms(limit);
    for (const shard of this.shards) {
      const nowSec = this.nowSeconds();
      shard.forEach((swarm, hash) => {
        this.expire(swarm, nowSec);
        if (this.dropIfEmpty(shard, hash, swarm)) return;
        const c = this.countsOf(swarm);
        top.add(Buffer.from(hash, 'latin1'), c.seeders, c.leechers);
      });
      await nextTurn();
      this.assertOpen();
    }
    return top.result();
  }

  ping(): Promise<void> {
    return this.closed
      ? Promise.reject(new StoreError('STORE_ERR_UNAVAILABLE', 'store closed'))
      : Promise.resolve();
  }

  addDownloads(
    increments: ReadonlyArray<readonly [infoHash: Buffer, count: number]>,
  ): Promise<void> {
    if (this.closed) return this.rejectClosed();
    for (const [infoHash, n] of increments) {
      if (infoHash.length !== INFO_HASH_LEN || !Number.isInteger(n) || n < 1)
        return Promise.reject(badInput('infoHash must be 20 bytes and count a positive integer'));
    }
    for (const [infoHash, n] of increments) {
      const hash = infoHash.toString('latin1');
      const total = (this.downloadCounts.get(hash) ?? 0) + n;
      this.downloadCounts.set(hash, total);
      const swarm = this.shardOf(infoHash).get(hash);
      if (swarm !== undefined) swarm.downloaded = total;
    }
    return Promise.resolve();
  }

  downloads(infoHashes: readonly Buffer[]): Promise<number[]> {
    if (this.closed) return this.rejectClosed();
    return Promise.resolve(
      infoHashes.map((h) => this.downloadCounts.get(h.toString('latin1')) ?? 0),
    );
  }

  async addRateCounts(
    window: number,
    windowMs: number,
    keys: readonly string[],
    deltas: readonly number[],
  ): Promise<RateCounts> {
    if (this.closed) return this.rejectClosed();
    validateRateCounts(window, windowMs, keys, deltas);
    let current = this.rateWindows.get(window);
    if (current === undefined) {
      current = new Map();
      this.rateWindows.set(window, current);
      // Older windows than the one before are never asked for again.
      for (const w of this.rateWindows.keys()) if (w < window - 1) this.rateWindows.delete(w);
    }
    const previous = this.rateWindows.get(window - 1);
    const counts: RateCounts = { current: [], previous: [] };
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const total = (current.get(key) ?? 0) + deltas[i]!;
      current.set(key, total);
      counts.current.push(total);
      counts.previous.push(previous?.get(key) ?? 0);
    }
    return counts;
  }

  get(context: string, key: string): Promise<string | undefined> {
    if (this.closed) return this.rejectClosed();
    return Promise.resolve(this.kv.get(context)?.get(key));
  }

  put(context: string, key: string, value: string): Promise<void> {
    if (this.closed) return this.rejectClosed();
    let entries = this.kv.get(context);
    if (entries === undefined) {
      entries = new Map();
      this.kv.set(context, entries);
    }
    entries.set(key, value);
    return Promise.resolve();
  }

  delete(context: string, key: string): Promise<boolean> {
    if (this.closed) return this.rejectClosed();
    const entries = this.kv.get(context);
    const existed = entries?.delete(key) ?? false;
    if (entries?.size === 0) this.kv.delete(context);
    return Promise.resolve(existed);
  }

  list(context: string): Promise<Array<[key: string, value: string]>> {
    if (this.closed) return this.rejectClosed();
    const entries = [...(this.kv.get(context) ?? [])];
    // UTF-16 code unit order, like `ORDER BY key COLLATE "C"` for ASCII keys.
    entries.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    return Promise.resolve(entries);
  }

  /** Idempotent: the same object may be closed once as PeerStore and once as DataStore. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      clearInterval(this.sweeper);
      for (const shard of this.shards) shard.clear();
      this.downloadCounts.clear();
      this.kv.clear();
      this.rateWindows = new Map();
      this.arena4 = new RecordArena(4 + 2);
      this.arena6 = new RecordArena(16 + 2);
      this.torrents = this.seeders4 = this.leechers4 = this.seeders6 = this.leechers6 = 0;
    }
    return Promise.resolve();
  }

  private rejectClosed<T>(): Promise<T> {
    return Promise.reject(new StoreError('STORE_ERR_UNAVAILABLE', 'store closed'));
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('STORE_ERR_UNAVAILABLE', 'store closed');
  }

  /** Seconds since the store started; a clock stepping back before that counts as the start. */
  private nowSeconds(): number {
    const s = Math.floor(this.clock() / 1000) - this.epochSeconds;
    return s > 0 ? s : 0;
  }

  private shardOf(infoHash: Buffer): Map<string, Swarm> {
    // Info hashes are SHA-1 (BEP 3) or truncated SHA-256 (BEP 52): any bytes are uniform.
    return this.shards[((infoHash[0]! << 8) | infoHash[1]!) % this.shards.length]!;
  }

  /** Removes the swarm's expired peers and returns how many there were. */
  private expire(swarm: Swarm, nowSec: number): number {
    let removed = 0;
    const t4 = swarm.t4;
    if (t4 !== null && nowSec >= t4.minExpiry) {
      const s = t4.seeders;
      const n = t4.size;
      removed += t4.sweep(nowSec);
      this.seeders4 -= s - t4.seeders;
      this.leechers4 -= n - t4.size - (s - t4.seeders);
      if (t4.size === 0) this.dropTable(swarm, false);
    }
    const t6 = swarm.t6;
    if (t6 !== null && nowSec >= t6.minExpiry) {
      const s = t6.seeders;
      const n = t6.size;
      removed += t6.sweep(nowSec);
      this.seeders6 -= s - t6.seeders;
      this.leechers6 -= n - t6.size - (s - t6.seeders);
      if (t6.size === 0) this.dropTable(swarm, true);
    }
    return removed;
  }

  private dropTable(swarm: Swarm, v6: boolean): void {
    if (v6) {
      swarm.t6?.release();
      swarm.t6 = null;
    } else {
      swarm.t4?.release();
      swarm.t4 = null;
    }
  }

  /** Deletes a swarm left without peers; its download count stays in `downloads`. */
  private dropIfEmpty(shard: Map<string, Swarm>, hash: string, swarm: Swarm): boolean {
    if (swarm.t4 !== null || swarm.t6 !== null) return false;
    shard.delete(hash);
    this.torrents--;
    return true;
  }

  /** Removes record i of a swarm's table, keeping the store's totals exact (the caller drops an emptied table). */
  private remove(table: PeerTable, i: number, v6: boolean): void {
    const seeder = table.isSeeder(i);
    table.removeAt(i);
    this.count(v6, seeder, -1);
  }

  private count(v6: boolean, seeder: boolean, delta: number): void {
    if (v6) {
      if (seeder) this.seeders6 += delta;
      else this.leechers6 += delta;
    } else if (seeder) this.seeders4 += delta;
    else this.leechers4 += delta;
  }

  private addDownload(swarm: Swarm, hash: string): void {
    swarm.downloaded++;
    this.downloadCounts.set(hash, swarm.downloaded);
  }

  private countsOf(swarm: Swarm): SwarmCounts {
    const t4 = swarm.t4;
    const t6 = swarm.t6;
    const seeders = (t4?.seeders ?? 0) + (t6?.seeders ?? 0);
    const size = (t4?.size ?? 0) + (t6?.size ?? 0);
    const partialSeeds = (t4?.partials ?? 0) + (t6?.partials ?? 0);
    return { seeders, leechers: size - seeders, downloaded: swarm.downloaded, partialSeeds };
  }

  private resultOf(
    swarm: Swarm,
    peers: Buffer,
    peerIds: Buffer[] | undefined,
    downloadCounted: boolean,
  ): AnnounceResult {
    const t4 = swarm.t4;
    const t6 = swarm.t6;
    const seeders = (t4?.seeders ?? 0) + (t6?.seeders ?? 0);
    const size = (t4?.size ?? 0) + (t6?.size ?? 0);
    return {
      seeders,
      leechers: size - seeders,
      downloaded: swarm.downloaded,
      partialSeeds: (t4?.partials ?? 0) + (t6?.partials ?? 0),
      peers,
      peerIds,
      downloadCounted,
    };
  }
}
