// The shared-memory store: the memory driver's peer table in
// SharedArrayBuffers, so every worker thread of one gateway sees every swarm
// with exact counts (docs/storage.md "Shared-memory store", docs/decisions.md
// "Shared-memory store").
//
//   const { handle, store } = createSharedMemoryStore({ peerLifetimeSeconds });
//   new Worker(url, { workerData: { handle } });
//   // in the worker:
//   const store = attachSharedMemoryStore(workerData.handle, {});
//
// Swarms are sharded by info hash; each shard has one lock (lock.ts), its own
// open-addressing swarm table and its own free lists in the shared heap
// (layout.ts). Every operation holds one shard lock at a time, so no lock
// order exists to get wrong. Writes are ordered so that a thread dying at any
// point leaves at worst a leaked block, a duplicated entry or record, or an
// expired half-copied record; the thread that takes the lock over repairs the
// shard (#repair) before using it.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { threadId as currentThreadId } from 'node:worker_threads';
import { StoreError, isStoreError } from '../errors.ts';
import { sweepEvery, type OnSweep } from '../sweeper.ts';
import {
  INFO_HASH_LEN,
  TopSwarms,
  badInput,
  lifetimeOf,
  validateAnnounce,
  validateInfoHashes,
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
  ENTRY_WORDS,
  E_DOWNLOADED,
  E_FAM4,
  E_FAM6,
  E_STATE,
  FAMILY_WORDS,
  F_CLS,
  F_INDEX,
  F_INDEX_SLOTS,
  F_MIN_EXPIRY,
  F_PARTIALS,
  F_REC,
  F_SEEDERS,
  F_SIZE,
  HEAP_MAX_LIMIT,
  HEAP_START,
  H_EPOCH_F64,
  H_HEAP_MAX,
  H_KV_LOCK,
  H_RATE_LOCK,
  H_LIFETIME,
  H_MAGIC,
  H_MAX_OWNERS,
  H_NEXT_OWNER,
  H_SHARDS,
  H_TOP,
  H_VERSION,
  LAYOUT_VERSION,
  MAGIC,
  MIN_TABLE_CAP,
  NUM_CLASSES,
  H_PEER_IDS,
  REC_SIZE4,
  REC_SIZE4_IDS,
  REC_SIZE6,
  REC_SIZE6_IDS,
  R_KEY,
  R_KEY_HASH,
  SHARD_WORDS,
  SPARE_FROM,
  S_LEECHERS4,
  S_LEECHERS6,
  S_LOCK,
  S_SEEDERS4,
  S_SEEDERS6,
  S_SPARE,
  S_TABLE,
  S_TORRENTS,
  TABLE_HEADER_WORDS,
  T_CAP,
  T_USED,
  classBytes,
  classOf,
  controlLayout,
  growTo,
} from './layout.ts';
import { hashKey, sampleStride, staysInProbeChain } from '../memory/peer-table.ts';
import { Locks, closeOwner, ownersExited, registerOwner } from './lock.ts';
import { SharedKv } from './kv.ts';
import { RATE_MIN_CAP, SharedRateCounters, initRateTable, rateTableBytes } from './rate.ts';

/** Everything another thread needs to attach: structured-cloneable (postMessage, workerData). */
export interface SharedMemoryHandle {
  readonly kind: 'shoal-shared-memory-store';
  readonly version: number;
  readonly control: SharedArrayBuffer;
  readonly heap: SharedArrayBuffer;
  readonly kv: SharedArrayBuffer;
  readonly rate: SharedArrayBuffer;
}

/** What each thread chooses for its own attachment. */
export interface SharedMemoryThreadOptions {
  /** Longest wait for a shard lock held by a live thread before STORE_ERR_UNAVAILABLE. Default 5000. */
  lockTimeoutMs?: number;
  /** Runs collectGarbage() this often until close(); give it to one thread only. Default: never. */
  sweepEveryMs?: number;
  /** Told each sweep's outcome (logging). */
  onSweep?: OnSweep;
}

/** peerLifetimeSeconds defaults to the creator's. */
export interface SharedMemoryAttachOptions
  extends Partial<StoreOptions>, SharedMemoryThreadOptions {}

export interface SharedMemoryStoreOptions extends StoreOptions, SharedMemoryThreadOptions {
  /** Number of shards, each with its own lock and swarm table. Default 64. */
  shards?: number;
  /** Most bytes the peer heap may grow to (address space is reserved, memory is used as touched). Default and limit: 2 GiB - 1 MiB. */
  maxMemoryBytes?: number;
  /** Most bytes of KV data (approval lists, passkeys, bans) with its superseded records. Default 256 MiB. */
  maxKvBytes?: number;
  /** Attachments over the store's life (each worker, each replacement). Default 4096. */
  maxOwners?: number;
  /**
   * Keep each peer's peer_id for non-compact answers (20 B more per record;
   * docs/storage.md "Shared-memory store"). Default false: a withPeerIds
   * announce answers its peers with `peerIds` undefined, as Redis without
   * REDIS_STORE_PEER_IDS does.
   */
  peerIds?: boolean;
  /** Most bytes of shared rate-limit counts: 80 per address and window in a table at most half full, two windows kept (64 MiB: 262,143 counts). Default 64 MiB. */
  maxRateCountBytes?: number;
}

export interface SharedMemoryStore extends InProcessStore {
  readonly driver: 'shared-memory';
  readonly handle: SharedMemoryHandle;
  /**
   * Declares the attachments of an exited thread dead, so that a lock it held
   * is taken over (and its shard repaired) instead of blocking every other
   * thread. Call it from the thread that watches the workers, on each
   * worker's 'exit', with `worker.threadId`. Returns how many attachments
   * were live.
   */
  threadExited(threadId: number): number;
}

const DEFAULT_SHARDS = 64;
const MAX_SHARDS = 4096;
const DEFAULT_MAX_OWNERS = 4096;
const DEFAULT_KV_BYTES = 256 << 20;
const DEFAULT_RATE_BYTES = 64 << 20;
const DEFAULT_LOCK_TIMEOUT_MS = 5000;
const INITIAL_HEAP = 1 << 20;
const HEAP_GROW_STEP = 4 << 20;
const NO_EXPIRY = 0x7fffffff;
const MAX_EXPIRY_SECONDS = NO_EXPIRY - 1;
const EMPTY = Buffer.alloc(0);
const PEER_ID_LEN = 20;
const ROLE_LEECHER = 0;
const ROLE_SEEDER = 1;
const ROLE_PARTIAL_SEED = 2;
const NOT_DOWNLOADING = ROLE_SEEDER | ROLE_PARTIAL_SEED;
/** Tables above this size get a hash index; below the lower mark they drop it (as the memory driver). */
export const INDEX_FROM = 32;
const INDEX_DROP_BELOW = 16;

/** Records of `rs` bytes per block of each heap class. */
function capacities(rs: number): Int32Array {
  const cap = new Int32Array(NUM_CLASSES);
  for (let c = 0; c < NUM_CLASSES; c++) cap[c] = Math.floor(classBytes(c) / rs);
  return cap;
}
const CAPS = new Map(
  [REC_SIZE4, REC_SIZE6, REC_SIZE4_IDS, REC_SIZE6_IDS].map((rs) => [rs, capacities(rs)]),
);

function noPeers(downloaded: number): SwarmCounts {
  return { seeders: 0, leechers: 0, downloaded, partialSeeds: 0 };
}

function configError(problems: string[]): StoreError {
  return new StoreError('STORE_ERR_CONFIG', problems.join('; '));
}

/** A new, empty store: its handle for other threads, and this thread's attachment. */
export function createSharedMemoryStore(opts: SharedMemoryStoreOptions): {
  handle: SharedMemoryHandle;
  store: SharedMemoryStore;
} {
  const shards = opts.shards ?? DEFAULT_SHARDS;
  const maxMemory = opts.maxMemoryBytes ?? HEAP_MAX_LIMIT;
  const maxKv = opts.maxKvBytes ?? DEFAULT_KV_BYTES;
  const maxOwners = opts.maxOwners ?? DEFAULT_MAX_OWNERS;
  const maxRate = opts.maxRateCountBytes ?? DEFAULT_RATE_BYTES;
  const problems: string[] = [];
  if (!Number.isInteger(opts.peerLifetimeSeconds) || opts.peerLifetimeSeconds < 1)
    problems.push('peerLifetimeSeconds must be a positive integer');
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS)
    problems.push(`shards must be an integer in 1..${MAX_SHARDS}`);
  if (!Number.isInteger(maxMemory) || maxMemory < 2 * INITIAL_HEAP || maxMemory > HEAP_MAX_LIMIT)
    problems.push(`maxMemoryBytes must be an integer in ${2 * INITIAL_HEAP}..${HEAP_MAX_LIMIT}`);
  if (!Number.isInteger(maxKv) || maxKv < 1 << 16 || maxKv > 2 ** 31)
    problems.push(`maxKvBytes must be an integer in ${1 << 16}..${2 ** 31}`);
  if (!Number.isInteger(maxOwners) || maxOwners < 1 || maxOwners > 1 << 20)
    problems.push(`maxOwners must be an integer in 1..${1 << 20}`);
  const minRate = rateTableBytes(RATE_MIN_CAP);
  if (!Number.isInteger(maxRate) || maxRate < minRate || maxRate > 2 ** 31)
    problems.push(`maxRateCountBytes must be an integer in ${minRate}..${2 ** 31}`);
  if (problems.length > 0) throw configError(problems);

  const layout = controlLayout(shards, maxOwners);
  const control = new SharedArrayBuffer(layout.words * 4);
  const heap = new SharedArrayBuffer(INITIAL_HEAP, { maxByteLength: maxMemory });
  const kv = new SharedArrayBuffer(1 << 16, { maxByteLength: maxKv });
  const rate = new SharedArrayBuffer(minRate, { maxByteLength: maxRate });
  initRateTable(rate);
  const ctl = new Int32Array(control);
  ctl[H_SHARDS] = shards;
  ctl[H_LIFETIME] = opts.peerLifetimeSeconds;
  ctl[H_TOP] = HEAP_START;
  ctl[H_HEAP_MAX] = maxMemory;
  ctl[H_MAX_OWNERS] = maxOwners;
  ctl[H_PEER_IDS] = opts.peerIds === true ? 1 : 0;
  new Float64Array(control, 0, HEADER_F64_WORDS)[H_EPOCH_F64] = Math.floor(
    (opts.clock ?? Date.now)() / 1000,
  );
  ctl[H_VERSION] = LAYOUT_VERSION;
  Atomics.store(ctl, H_MAGIC, MAGIC);
  const handle: SharedMemoryHandle = {
    kind: 'shoal-shared-memory-store',
    version: LAYOUT_VERSION,
    control,
    heap,
    kv,
    rate,
  };
  const store = new SharedMemoryStoreImpl(handle, opts);
  // Every shard starts with an empty table.
  for (let s = 0; s < shards; s++) store.initShard(s);
  return { handle, store };
}

const HEADER_F64_WORDS = 16;

/** Every broken invariant of the store's shared data (tests): empty when all is well. */
export function auditSharedMemoryStore(store: SharedMemoryStore): string[] {
  if (!(store instanceof SharedMemoryStoreImpl)) throw configError(['not a shared-memory store']);
  return store.audit();
}

/** Where the shared heap's bytes are, in bytes (bench/memory-per-peer.ts). */
export interface SharedMemoryHeapUsage {
  /** Bytes handed out from the heap so far (its touched part). */
  readonly top: number;
  /** Swarm table slots holding a swarm, and the IPv6 family blocks. */
  readonly entries: number;
  /** Swarm table slots left empty (open addressing keeps tables at most 3/4 full). */
  readonly emptySlots: number;
  /** Peer records. */
  readonly records: number;
  /** Record blocks beyond their records (size classes). */
  readonly recordSlack: number;
  /** Peer and key-hash index blocks. */
  readonly indexes: number;
  /** Blocks on the shards' free lists, and what is left of their spares. */
  readonly free: number;
  readonly peers: number;
  readonly swarms: number;
}

/** Walks every shard (under its lock) and sums where the heap's bytes are. */
export function sharedMemoryHeapUsage(store: SharedMemoryStore): SharedMemoryHeapUsage {
  if (!(store instanceof SharedMemoryStoreImpl)) throw configError(['not a shared-memory store']);
  return store.usage();
}

/** This thread's view of a store made by createSharedMemoryStore (in this or another thread). */
export function attachSharedMemoryStore(
  handle: SharedMemoryHandle,
  opts: SharedMemoryAttachOptions = {},
): SharedMemoryStore {
  const h = handle as Partial<SharedMemoryHandle> | null;
  if (
    typeof h !== 'object' ||
    h === null ||
    h.kind !== 'shoal-shared-memory-store' ||
    !(h.control instanceof SharedArrayBuffer) ||
    !(h.heap instanceof SharedArrayBuffer) ||
    !(h.kv instanceof SharedArrayBuffer) ||
    !(h.rate instanceof SharedArrayBuffer)
  )
    throw configError(['not a shared-memory store handle']);
  if (h.version !== LAYOUT_VERSION || Atomics.load(new Int32Array(h.control), H_MAGIC) !== MAGIC)
    throw configError([`shared-memory store handle of another layout (version ${h.version})`]);
  const life = opts.peerLifetimeSeconds;
  if (life !== undefined && (!Number.isInteger(life) || life < 1))
    throw configError(['peerLifetimeSeconds must be a positive integer']);
  return new SharedMemoryStoreImpl(handle, opts);
}

class SharedMemoryStoreImpl implements SharedMemoryStore {
  readonly driver = 'shared-memory' as const;
  readonly handle: SharedMemoryHandle;
  readonly #heapSab: SharedArrayBuffer;
  /** Length-tracking views: they see the heap grow, whichever thread grew it. */
  readonly #u8: Uint8Array;
  readonly #i32: Int32Array;
  readonly #ctl: Int32Array;
  #fixed: { i32: Int32Array; u8: Uint8Array } = { i32: new Int32Array(0), u8: new Uint8Array(0) };
  readonly #shards: number;
  readonly #shardBase: number;
  readonly #freeBase: number;
  readonly #ownerBase: number;
  readonly #lifetime: number;
  /** Records keep the peer_id (non-compact answers); their sizes and capacities per heap class. */
  readonly #peerIds: boolean;
  readonly #rs4: number;
  readonly #rs6: number;
  readonly #cap4: Int32Array;
  readonly #cap6: Int32Array;
  readonly #clock: () => number;
  readonly #epochSeconds: number;
  readonly #locks: Locks;
  readonly #owner: number;
  readonly #kv: SharedKv;
  readonly #rate: SharedRateCounters;
  /** Compact form of the announcing peer, reused by every call. */
  readonly #key = new Uint8Array(18);
  // The info hash of the current operation as five int32 (little-endian).
  #h0 = 0;
  #h1 = 0;
  #h2 = 0;
  #h3 = 0;
  #h4 = 0;
  #closed = false;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(handle: SharedMemoryHandle, opts: SharedMemoryAttachOptions) {
    const timeout = opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    if (!Number.isInteger(timeout) || timeout < 1)
      throw configError(['lockTimeoutMs must be a positive integer']);
    this.handle = handle;
    this.#heapSab = handle.heap;
    this.#u8 = new Uint8Array(handle.heap);
    this.#i32 = new Int32Array(handle.heap);
    this.#ctl = new Int32Array(handle.control);
    this.#shards = this.#ctl[H_SHARDS]!;
    const maxOwners = this.#ctl[H_MAX_OWNERS]!;
    const layout = controlLayout(this.#shards, maxOwners);
    this.#shardBase = layout.shardBase;
    this.#freeBase = layout.freeBase;
    this.#ownerBase = layout.ownerBase;
    this.#lifetime = opts.peerLifetimeSeconds ?? this.#ctl[H_LIFETIME]!;
    this.#peerIds = this.#ctl[H_PEER_IDS] === 1;
    this.#rs4 = this.#peerIds ? REC_SIZE4_IDS : REC_SIZE4;
    this.#rs6 = this.#peerIds ? REC_SIZE6_IDS : REC_SIZE6;
    this.#cap4 = CAPS.get(this.#rs4)!;
    this.#cap6 = CAPS.get(this.#rs6)!;
    this.#clock = opts.clock ?? Date.now;
    this.#epochSeconds = new Float64Array(handle.control, 0, HEADER_F64_WORDS)[H_EPOCH_F64]!;
    this.#owner = registerOwner(
      this.#ctl,
      H_NEXT_OWNER,
      maxOwners,
      this.#ownerBase,
      currentThreadId,
    );
    this.#locks = new Locks(this.#ctl, this.#ownerBase, this.#owner, timeout);
    this.#kv = new SharedKv(handle.kv, this.#ctl, this.#locks);
    this.#rate = new SharedRateCounters(handle.rate, this.#locks);
    if (opts.sweepEveryMs !== undefined) {
      if (!Number.isInteger(opts.sweepEveryMs) || opts.sweepEveryMs < 1)
        throw configError(['sweepEveryMs must be a positive integer']);
      this.#sweeper = sweepEvery(() => this.collectGarbage(), opts.sweepEveryMs, opts.onSweep);
    }
  }

  /**
   * Fixed-length views of the heap as it is now, made anew after it grew: V8
   * optimises element reads through these and not through length-tracking
   * views (BENCHMARKS.md "Shared-memory store"). Only for loops that read
   * and allocate nothing: a block allocated after the call may lie beyond them.
   */
  #readViews(): { i32: Int32Array; u8: Uint8Array } {
    const n = this.#heapSab.byteLength;
    if (this.#fixed.u8.length !== n)
      this.#fixed = {
        i32: new Int32Array(this.#heapSab, 0, n >> 2),
        u8: new Uint8Array(this.#heapSab, 0, n),
      };
    return this.#fixed;
  }

  /** Called once per shard by createSharedMemoryStore, before any other thread sees the handle. */
  initShard(s: number): void {
    this.#ctl[this.#sb(s) + S_TABLE] = this.#newTable(s, MIN_TABLE_CAP);
  }

  // ---- PeerStore ----

  // async: a validation error becomes a rejection, never a synchronous throw.
  // eslint-disable-next-line @typescript-eslint/require-await
  async announce(a: PeerAnnounce): Promise<AnnounceResult> {
    return this.announceSync(a);
  }

  announceSync(a: PeerAnnounce): AnnounceResult {
    this.#assertOpen();
    validateAnnounce(a);
    const nowSec = this.#nowSeconds();
    const x = this.#hashOf(a.infoHash);
    const s = this.#shardOf(x);
    this.#lock(s);
    try {
      return this.#announceLocked(a, s, x, nowSec);
    } finally {
      this.#unlock(s);
    }
  }

  #announceLocked(a: PeerAnnounce, s: number, x: number, nowSec: number): AnnounceResult {
    const i32 = this.#i32;
    let e = this.#findEntry(s, x);
    if (e > 0) this.#expire(s, e, nowSec);

    const key = this.#key;
    const address = a.address;
    for (let j = 0; j < address.length; j++) key[j] = address[j]!;
    const keyLen = address.length + 2;
    key[keyLen - 2] = a.port >>> 8;
    key[keyLen - 1] = a.port & 0xff;
    const v6 = a.family === 6;
    // The key hash as two words; all zero is no key, as in a record.
    const kh0 = a.keyHash === undefined ? 0 : a.keyHash.readInt32LE(0);
    const kh1 = a.keyHash === undefined ? 0 : a.keyHash.readInt32LE(4);
    const keyed = (kh0 | kh1) !== 0;

    if (a.event === 'stopped') {
      const ids = a.withPeerIds && this.#peerIds ? [] : undefined;
      if (e <= 0) return { ...noPeers(0), peers: EMPTY, peerIds: ids, downloadCounted: false };
      const f = this.#fam(e, v6);
      if (i32[f + F_REC] !== 0) {
        const i = this.#find(f, v6);
        if (i >= 0) this.#removePeer(s, f, v6, i);
        // A client that moved and stops from its new address leaves nothing behind.
        if (keyed) {
          const j = this.#findKeyHash(f, v6, kh0, kh1);
          if (j >= 0) this.#removePeer(s, f, v6, j);
        }
        if (i32[f + F_SIZE] === 0) this.#dropTable(s, e, v6);
      }
      const result = this.#resultOf(e, EMPTY, ids, false);
      this.#dropIfEmpty(s, e);
      return result;
    }

    if (e <= 0) e = this.#insertEntry(s, x);
    let f = this.#fam(e, v6);
    if (i32[f + F_REC] === 0) {
      try {
        f = this.#createTable(s, e, v6);
      } catch (err) {
        // A full heap: the entry made for this announce must not stay behind empty.
        this.#dropIfEmpty(s, e);
        throw err;
      }
    }

    const completed = a.event === 'completed';
    const seeder = a.seeder || completed;
    const role = seeder ? ROLE_SEEDER : a.partialSeed === true ? ROLE_PARTIAL_SEED : ROLE_LEECHER;
    const expiry = Math.min(nowSec + lifetimeOf(a, this.#lifetime), MAX_EXPIRY_SECONDS);
    let self = this.#find(f, v6);
    // docs/decisions.md "Peers that move": the entry this client announced last
    // with the same key hash, at another address, is replaced by this one.
    let movedSeeder = false;
    if (keyed) {
      const j = this.#findKeyHash(f, v6, kh0, kh1);
      if (j >= 0 && j !== self) {
        movedSeeder = this.#roleOf(f, v6, j) === ROLE_SEEDER;
        this.#removePeer(s, f, v6, j);
        // Removal moves the last record into the hole, which may be this one.
        if (self >= 0) self = this.#find(f, v6);
      }
    }
    let counted: boolean;
    if (self < 0) {
      self = this.#insert(s, f, v6, a.peerId, expiry, role, kh0, kh1);
      this.#count(s, v6, seeder, 1);
      // Once per peer: a seeder that moved repeating `completed` adds nothing.
      counted = completed && !movedSeeder;
    } else {
      const was = this.#roleOf(f, v6, self);
      this.#update(f, v6, self, a.peerId, expiry, role, kh0, kh1);
      const wasSeeder = was === ROLE_SEEDER;
      if (wasSeeder !== seeder) {
        this.#count(s, v6, wasSeeder, -1);
        this.#count(s, v6, seeder, 1);
      }
      // Once per peer: a stored seeder repeating `completed` adds nothing.
      counted = completed && !wasSeeder && !movedSeeder;
    }
    if (counted) i32[e + E_DOWNLOADED] = i32[e + E_DOWNLOADED]! + 1;

    // Seeders and partial seeds get downloading leechers only; leechers get everyone but themselves.
    const wantsNothing = role !== ROLE_LEECHER;
    const size = i32[f + F_SIZE]!;
    const eligible = wantsNothing ? size - i32[f + F_SEEDERS]! - i32[f + F_PARTIALS]! : size - 1;
    const want = Math.min(a.numWant, eligible);
    const ids = a.withPeerIds && this.#peerIds ? [] : undefined;
    let peers = EMPTY;
    if (want > 0) {
      peers = Buffer.allocUnsafe(want * keyLen);
      const got = this.#sample(f, v6, peers, want, wantsNothing, self, ids);
      // The counters make got === want; never let unwritten pool bytes reach a client.
      if (got !== want) peers = peers.subarray(0, got * keyLen);
    }
    return this.#resultOf(e, peers, ids, counted);
  }

  // async: a validation error becomes a rejection, never a synchronous throw.
  // eslint-disable-next-line @typescript-eslint/require-await
  async scrape(infoHashes: readonly Buffer[]): Promise<SwarmCounts[]> {
    return this.scrapeSync(infoHashes);
  }

  scrapeSync(infoHashes: readonly Buffer[]): SwarmCounts[] {
    this.#assertOpen();
    validateInfoHashes(infoHashes);
    const nowSec = this.#nowSeconds();
    return infoHashes.map((h) =>
      this.#withEntry(h, (s, e) => {
        if (e <= 0) return noPeers(0);
        this.#expire(s, e, nowSec);
        const counts = this.#countsOf(e);
        this.#dropIfEmpty(s, e);
        return counts;
      }),
    );
  }

  async collectGarbage(): Promise<GcResult> {
    this.#assertOpen();
    let peersRemoved = 0;
    let swarmsRemoved = 0;
    for (let s = 0; s < this.#shards; s++) {
      const r = this.#walkShard(s, this.#nowSeconds(), undefined);
      peersRemoved += r.peersRemoved;
      swarmsRemoved += r.swarmsRemoved;
      await nextTurn();
      if (this.#closed) break;
    }
    return { peersRemoved, swarmsRemoved };
  }

  async stats(): Promise<StoreStats> {
    // Peers past their lifetime must not be counted; a sweep settles them.
    await this.collectGarbage();
    this.#assertOpen();
    const ctl = this.#ctl;
    let torrents = 0;
    let s4 = 0;
    let l4 = 0;
    let s6 = 0;
    let l6 = 0;
    for (let s = 0; s < this.#shards; s++) {
      const b = this.#sb(s);
      torrents += Atomics.load(ctl, b + S_TORRENTS);
      s4 += Atomics.load(ctl, b + S_SEEDERS4);
      l4 += Atomics.load(ctl, b + S_LEECHERS4);
      s6 += Atomics.load(ctl, b + S_SEEDERS6);
      l6 += Atomics.load(ctl, b + S_LEECHERS6);
    }
    return { torrents, seeders: { v4: s4, v6: s6 }, leechers: { v4: l4, v6: l6 } };
  }

  async topSwarms(limit: number): Promise<TopSwarm[]> {
    this.#assertOpen();
    validateTopLimit(limit);
    const top = new TopSwarms(limit);
    const i32 = this.#i32;
    for (let s = 0; s < this.#shards; s++) {
      this.#walkShard(s, this.#nowSeconds(), (e) => {
        const f6 = this.#fam(e, true);
        const seeders = i32[e + E_FAM4 + F_SEEDERS]! + i32[f6 + F_SEEDERS]!;
        const size = i32[e + E_FAM4 + F_SIZE]! + i32[f6 + F_SIZE]!;
        if (size > 0) top.add(this.#infoHashAt(e), seeders, size - seeders);
      });
      await nextTurn();
      this.#assertOpen();
    }
    return top.result();
  }

  ping(): Promise<void> {
    return this.#closed ? this.#rejectClosed() : Promise.resolve();
  }

  // ---- DownloadCounter ----

  addDownloads(
    increments: ReadonlyArray<readonly [infoHash: Buffer, count: number]>,
  ): Promise<void> {
    return this.#attempt(() => {
      for (const [infoHash, n] of increments) {
        if (infoHash.length !== INFO_HASH_LEN || !Number.isInteger(n) || n < 1)
          throw badInput('infoHash must be 20 bytes and count a positive integer');
      }
      for (const [infoHash, n] of increments)
        this.#withEntry(infoHash, (s, found, x) => {
          const e = found > 0 ? found : this.#insertEntry(s, x);
          this.#i32[e + E_DOWNLOADED] = this.#i32[e + E_DOWNLOADED]! + n;
        });
    });
  }

  downloads(infoHashes: readonly Buffer[]): Promise<number[]> {
    return this.#attempt(() => {
      validateInfoHashes(infoHashes);
      return infoHashes.map((h) =>
        this.#withEntry(h, (_s, e) => (e > 0 ? this.#i32[e + E_DOWNLOADED]! >>> 0 : 0)),
      );
    });
  }

  // ---- RateCounters ----

  addRateCounts(
    window: number,
    windowMs: number,
    keys: readonly string[],
    deltas: readonly number[],
  ): Promise<RateCounts> {
    return this.#attempt(() => this.#rate.add(window, windowMs, keys, deltas));
  }

  // ---- DataStore ----

  get(context: string, key: string): Promise<string | undefined> {
    return this.#attempt(() => this.#kv.get(context, key));
  }

  put(context: string, key: string, value: string): Promise<void> {
    return this.#attempt(() => this.#kv.put(context, key, value));
  }

  delete(context: string, key: string): Promise<boolean> {
    return this.#attempt(() => this.#kv.delete(context, key));
  }

  list(context: string): Promise<Array<[key: string, value: string]>> {
    return this.#attempt(() => this.#kv.list(context));
  }

  /** Runs fn on an open store; whatever it throws becomes the rejection. */
  #attempt<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve) => {
      this.#assertOpen();
      resolve(fn());
    });
  }

  threadExited(threadId: number): number {
    const words = [H_KV_LOCK, H_RATE_LOCK];
    for (let s = 0; s < this.#shards; s++) words.push(this.#sb(s) + S_LOCK);
    return ownersExited(this.#ctl, H_NEXT_OWNER, this.#ownerBase, threadId, words);
  }

  /**
   * Idempotent. Ends this thread's attachment only: the data stays for the
   * other attachments, and is freed with the last reference to the handle.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      clearInterval(this.#sweeper);
      closeOwner(this.#ctl, this.#ownerBase, this.#owner);
    }
    return Promise.resolve();
  }

  #rejectClosed<T>(): Promise<T> {
    return Promise.reject(new StoreError('STORE_ERR_UNAVAILABLE', 'store closed'));
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('STORE_ERR_UNAVAILABLE', 'store closed');
  }

  /** Seconds since the store started; a clock stepping back before that counts as the start. */
  #nowSeconds(): number {
    const s = Math.floor(this.#clock() / 1000) - this.#epochSeconds;
    return s > 0 ? s : 0;
  }

  // ---- shards, locks, heap ----

  #sb(s: number): number {
    return this.#shardBase + s * SHARD_WORDS;
  }

  #lock(s: number): void {
    if (!this.#locks.acquire(this.#sb(s) + S_LOCK)) return;
    try {
      this.#repair(s);
    } catch (err) {
      this.#unlock(s);
      throw err;
    }
  }

  #unlock(s: number): void {
    this.#locks.release(this.#sb(s) + S_LOCK);
  }

  /** Runs fn under the lock of the hash's shard with its entry's word index (<= 0: absent) and mix. */
  #withEntry<T>(infoHash: Buffer, fn: (s: number, e: number, x: number) => T): T {
    const x = this.#hashOf(infoHash);
    const s = this.#shardOf(x);
    this.#lock(s);
    try {
      return fn(s, this.#findEntry(s, x), x);
    } finally {
      this.#unlock(s);
    }
  }

  /** Reads the hash into #h0..#h4 and returns its mix. */
  #hashOf(infoHash: Buffer): number {
    this.#h0 = infoHash.readInt32LE(0);
    this.#h1 = infoHash.readInt32LE(4);
    this.#h2 = infoHash.readInt32LE(8);
    this.#h3 = infoHash.readInt32LE(12);
    this.#h4 = infoHash.readInt32LE(16);
    return mix(this.#h0, this.#h1, this.#h2, this.#h3, this.#h4);
  }

  /** The high bits pick the shard; the table slot comes from the low bits. */
  #shardOf(x: number): number {
    return Math.floor(((x >>> 0) * this.#shards) / 4294967296);
  }

  #infoHashAt(e: number): Buffer {
    const b = Buffer.allocUnsafe(20);
    for (let k = 0; k < 5; k++) b.writeInt32LE(this.#i32[e + k]!, k * 4);
    return b;
  }

  #alloc(s: number, cls: number): number {
    const head = this.#freeBase + s * NUM_CLASSES + cls;
    const ctl = this.#ctl;
    const off = ctl[head]!;
    if (off !== 0) {
      ctl[head] = this.#i32[off >> 2]!;
      return off;
    }
    const size = classBytes(cls);
    const carved = this.#carve(s, size);
    if (carved !== 0) return carved;
    const max = ctl[H_HEAP_MAX]!;
    for (;;) {
      const top = Atomics.load(ctl, H_TOP);
      if (top + size > max)
        throw new StoreError(
          'STORE_ERR_UNAVAILABLE',
          `shared-memory store full (maxMemoryBytes ${max})`,
        );
      if (Atomics.compareExchange(ctl, H_TOP, top, top + size) === top) {
        growTo(this.#heapSab, top + size, HEAP_GROW_STEP, 'heap');
        return top;
      }
    }
  }

  /** #alloc, or 0 when the heap is full. */
  #tryAlloc(s: number, cls: number): number {
    try {
      return this.#alloc(s, cls);
    } catch (err) {
      if (isStoreError(err)) return 0;
      throw err;
    }
  }

  /** Hands a block back to the shard's free list; nothing may point to it any more. */
  #free(s: number, off: number, cls: number): void {
    const bytes = classBytes(cls);
    if (bytes >= SPARE_FROM) {
      // layout.ts S_SPARE: linked first, published last, so a thread dying in between leaks it.
      const w = this.#sb(s) + S_SPARE;
      this.#i32[off >> 2] = this.#ctl[w]!;
      this.#i32[(off >> 2) + 1] = bytes;
      this.#ctl[w] = off;
      return;
    }
    const head = this.#freeBase + s * NUM_CLASSES + cls;
    this.#i32[off >> 2] = this.#ctl[head]!;
    this.#ctl[head] = off;
  }

  /**
   * A block of `size` bytes cut from the end of the shard's first spare, or 0.
   * A spare too small for a small block is given up: what is left of it goes
   * to the free lists of the small classes.
   */
  #carve(s: number, size: number): number {
    const i32 = this.#i32;
    const ctl = this.#ctl;
    const w = this.#sb(s) + S_SPARE;
    for (let tries = 0; tries < 2; tries++) {
      const head = ctl[w]!;
      if (head === 0) return 0;
      const left = i32[(head >> 2) + 1]!;
      if (left > size) {
        i32[(head >> 2) + 1] = left - size;
        return head + left - size;
      }
      if (left < size && size > 256) return 0;
      ctl[w] = i32[head >> 2]!;
      if (left === size) return head;
      // Every block size is a multiple of 16, and every multiple of 16 up to 256 a class of its own.
      for (let off = head, rest = left; rest >= 16;) {
        const piece = Math.min(rest, 256);
        this.#free(s, off, classOf(piece));
        off += piece;
        rest -= piece;
      }
    }
    return 0;
  }

  // ---- swarm tables ----

  #newTable(s: number, cap: number): number {
    const bytes = (TABLE_HEADER_WORDS + cap * ENTRY_WORDS) * 4;
    const off = this.#alloc(s, classOf(bytes));
    this.#u8.fill(0, off, off + bytes);
    this.#i32[(off >> 2) + T_CAP] = cap;
    return off;
  }

  #freeTable(s: number, off: number): void {
    const cap = this.#i32[(off >> 2) + T_CAP]!;
    this.#free(s, off, classOf((TABLE_HEADER_WORDS + cap * ENTRY_WORDS) * 4));
  }

  /** The entry's word index when the hash (#h0..#h4, mix x) is in shard s; otherwise minus the free slot's. */
  #findEntry(s: number, x: number): number {
    const i32 = this.#i32;
    const t = this.#ctl[this.#sb(s) + S_TABLE]! >> 2;
    const mask = i32[t + T_CAP]! - 1;
    const h0 = this.#h0;
    for (let slot = x & mask; ; slot = (slot + 1) & mask) {
      const e = t + TABLE_HEADER_WORDS + slot * ENTRY_WORDS;
      if (i32[e + E_STATE] === 0) return -e;
      if (
        i32[e] === h0 &&
        i32[e + 1] === this.#h1 &&
        i32[e + 2] === this.#h2 &&
        i32[e + 3] === this.#h3 &&
        i32[e + 4] === this.#h4
      )
        return e;
    }
  }

  /** Adds an entry for the current hash (absent); returns its word index. */
  #insertEntry(s: number, x: number): number {
    const i32 = this.#i32;
    let t = this.#ctl[this.#sb(s) + S_TABLE]! >> 2;
    const cap = i32[t + T_CAP]!;
    if ((i32[t + T_USED]! + 1) * 4 > cap * 3) {
      this.#rebuildTable(s, cap * 2, undefined);
      t = this.#ctl[this.#sb(s) + S_TABLE]! >> 2;
    }
    const e = -this.#findEntry(s, x);
    i32.fill(0, e + 5, e + ENTRY_WORDS);
    i32[e] = this.#h0;
    i32[e + 1] = this.#h1;
    i32[e + 2] = this.#h2;
    i32[e + 3] = this.#h3;
    i32[e + 4] = this.#h4;
    i32[e + E_STATE] = 1;
    i32[t + T_USED] = i32[t + T_USED]! + 1;
    return e;
  }

  /**
   * Moves the shard's entries (those `keep` accepts) into a new table of
   * `cap` slots, published with one word once complete.
   */
  #rebuildTable(s: number, cap: number, keep: ((e: number) => boolean) | undefined): void {
    const i32 = this.#i32;
    const oldOff = this.#ctl[this.#sb(s) + S_TABLE]!;
    const ot = oldOff >> 2;
    const oldCap = i32[ot + T_CAP]!;
    const off = this.#newTable(s, cap);
    const t = off >> 2;
    const mask = cap - 1;
    let used = 0;
    for (let slot = 0; slot < oldCap; slot++) {
      const e = ot + TABLE_HEADER_WORDS + slot * ENTRY_WORDS;
      if (i32[e + E_STATE] !== 1 || (keep !== undefined && !keep(e))) continue;
      const x = mix(i32[e]!, i32[e + 1]!, i32[e + 2]!, i32[e + 3]!, i32[e + 4]!);
      let to = x & mask;
      while (i32[t + TABLE_HEADER_WORDS + to * ENTRY_WORDS + E_STATE] !== 0) to = (to + 1) & mask;
      i32.copyWithin(t + TABLE_HEADER_WORDS + to * ENTRY_WORDS, e, e + ENTRY_WORDS);
      used++;
    }
    i32[t + T_USED] = used;
    this.#ctl[this.#sb(s) + S_TABLE] = off;
    this.#freeTable(s, oldOff);
  }

  /** Backward-shift deletion; an entry is copied with its state word last, so a copy cut short is no entry. */
  #deleteEntry(s: number, e: number): void {
    const i32 = this.#i32;
    const t = this.#ctl[this.#sb(s) + S_TABLE]! >> 2;
    const mask = i32[t + T_CAP]! - 1;
    const first = t + TABLE_HEADER_WORDS;
    let hole = (e - first) / ENTRY_WORDS;
    i32[e + E_STATE] = 0;
    for (let slot = (hole + 1) & mask; ; slot = (slot + 1) & mask) {
      const from = first + slot * ENTRY_WORDS;
      if (i32[from + E_STATE] === 0) break;
      const home =
        mix(i32[from]!, i32[from + 1]!, i32[from + 2]!, i32[from + 3]!, i32[from + 4]!) & mask;
      if (staysInProbeChain(hole, slot, home)) continue;
      const to = first + hole * ENTRY_WORDS;
      i32.copyWithin(to, from, from + E_STATE);
      i32.copyWithin(to + E_STATE + 1, from + E_STATE + 1, from + ENTRY_WORDS);
      i32[to + E_STATE] = 1;
      i32[from + E_STATE] = 0;
      hole = slot;
    }
    i32[t + T_USED] = i32[t + T_USED]! - 1;
  }

  /** Deletes an entry left without peers and without downloads. */
  #dropIfEmpty(s: number, e: number): boolean {
    const i32 = this.#i32;
    if (i32[e + E_FAM4 + F_REC] !== 0 || i32[e + E_FAM6] !== 0) return false;
    if (i32[e + E_DOWNLOADED] !== 0) return false;
    this.#deleteEntry(s, e);
    return true;
  }

  /**
   * Expires every entry of shard s, under its lock, and calls visit with each
   * that has peers left; deletes entries left with neither peers nor
   * downloads (shrinking the table when it is mostly empty).
   */
  #walkShard(s: number, nowSec: number, visit: ((e: number) => void) | undefined): GcResult {
    this.#lock(s);
    try {
      const i32 = this.#i32;
      const t = this.#ctl[this.#sb(s) + S_TABLE]! >> 2;
      const cap = i32[t + T_CAP]!;
      let peersRemoved = 0;
      let swarmsRemoved = 0;
      let dead = 0;
      for (let slot = 0; slot < cap; slot++) {
        const e = t + TABLE_HEADER_WORDS + slot * ENTRY_WORDS;
        if (i32[e + E_STATE] !== 1) continue;
        const had = i32[e + E_FAM4 + F_REC] !== 0 || i32[e + E_FAM6] !== 0;
        peersRemoved += this.#expire(s, e, nowSec);
        const has = i32[e + E_FAM4 + F_REC] !== 0 || i32[e + E_FAM6] !== 0;
        if (had && !has) swarmsRemoved++;
        if (!has && i32[e + E_DOWNLOADED] === 0) dead++;
        else if (visit !== undefined && has) visit(e);
      }
      const used = i32[t + T_USED]!;
      if (dead > 0 || (cap > MIN_TABLE_CAP && used * 8 < cap)) {
        // One rebuild instead of a backward shift per deleted entry.
        this.#rebuildTable(s, tableCapFor(used - dead), (e) => {
          return (
            i32[e + E_FAM4 + F_REC] !== 0 || i32[e + E_FAM6] !== 0 || i32[e + E_DOWNLOADED] !== 0
          );
        });
      }
      return { peersRemoved, swarmsRemoved };
    } finally {
      this.#unlock(s);
    }
  }

  // ---- peer tables (one per swarm and family; f is the family block's word index) ----

  /** Word index of the entry's family block; IPv6 without one: 0, which reads as an empty family. */
  #fam(e: number, v6: boolean): number {
    return v6 ? this.#i32[e + E_FAM6]! >> 2 : e + E_FAM4;
  }

  /** Makes the entry's (empty) table of a family; returns its family block's word index. */
  #createTable(s: number, e: number, v6: boolean): number {
    const i32 = this.#i32;
    const cls = classOf(v6 ? this.#rs6 : this.#rs4);
    const off = this.#alloc(s, cls);
    let f = e + E_FAM4;
    if (v6) {
      try {
        f = this.#alloc(s, classOf(FAMILY_WORDS * 4)) >> 2;
      } catch (err) {
        this.#free(s, off, cls);
        throw err;
      }
    }
    i32.fill(0, f, f + FAMILY_WORDS);
    i32[f + F_CLS] = cls;
    i32[f + F_MIN_EXPIRY] = NO_EXPIRY;
    // Published last: a thread dying before leaves leaked blocks, not a half-made table.
    if (v6) {
      i32[f + F_REC] = off;
      i32[e + E_FAM6] = f << 2;
    } else i32[f + F_REC] = off;
    const otherHas = v6 ? i32[e + E_FAM4 + F_REC] !== 0 : i32[e + E_FAM6] !== 0;
    if (!otherHas) this.#addCounter(s, S_TORRENTS, 1);
    return f;
  }

  #dropTable(s: number, e: number, v6: boolean): void {
    const i32 = this.#i32;
    const f = this.#fam(e, v6);
    const rec = i32[f + F_REC]!;
    const cls = i32[f + F_CLS]!;
    const index = i32[f + F_INDEX]!;
    const slots = i32[f + F_INDEX_SLOTS]!;
    // Unpublished first: a thread dying after leaves leaked blocks.
    if (v6) i32[e + E_FAM6] = 0;
    else {
      i32[f + F_REC] = 0;
      i32[f + F_INDEX] = 0;
      i32[f + F_SIZE] = i32[f + F_SEEDERS] = i32[f + F_PARTIALS] = 0;
    }
    this.#free(s, rec, cls);
    if (index !== 0) this.#free(s, index, indexClass(slots));
    if (v6) this.#free(s, f << 2, classOf(FAMILY_WORDS * 4));
    const otherHas = v6 ? i32[e + E_FAM4 + F_REC] !== 0 : i32[e + E_FAM6] !== 0;
    if (!otherHas) this.#addCounter(s, S_TORRENTS, -1);
  }

  #addCounter(s: number, word: number, delta: number): void {
    const w = this.#sb(s) + word;
    this.#ctl[w] = this.#ctl[w]! + delta;
  }

  #count(s: number, v6: boolean, seeder: boolean, delta: number): void {
    this.#addCounter(
      s,
      v6 ? (seeder ? S_SEEDERS6 : S_LEECHERS6) : seeder ? S_SEEDERS4 : S_LEECHERS4,
      delta,
    );
  }

  #roleOf(f: number, v6: boolean, i: number): number {
    const rs = v6 ? this.#rs6 : this.#rs4;
    return this.#u8[this.#i32[f + F_REC]! + i * rs + rs - 2]!;
  }

  /** Record index of the peer whose compact form is #key, or -1. */
  #find(f: number, v6: boolean): number {
    const { i32, u8: b } = this.#readViews();
    const key = this.#key;
    const keyLen = v6 ? 18 : 6;
    const rs = v6 ? this.#rs6 : this.#rs4;
    const rec = i32[f + F_REC]!;
    const size = i32[f + F_SIZE]!;
    const index = i32[f + F_INDEX]!;
    if (index === 0) {
      const k0 = key[0]!;
      const kLast = key[keyLen - 1]!;
      for (let i = 0, o = rec + R_KEY; i < size; i++, o += rs) {
        // First and last byte (address start, port low byte) reject almost every miss.
        if (b[o] !== k0 || b[o + keyLen - 1] !== kLast) continue;
        let j = 1;
        while (j < keyLen - 1 && b[o + j] === key[j]) j++;
        if (j === keyLen - 1) return i;
      }
      return -1;
    }
    const ix = index >> 2;
    const mask = i32[f + F_INDEX_SLOTS]! - 1;
    for (let slot = hashKey(key, 0, keyLen) & mask; ; slot = (slot + 1) & mask) {
      const v = i32[ix + slot]!;
      if (v === 0) return -1;
      const o = rec + (v - 1) * rs + R_KEY;
      let j = 0;
      while (j < keyLen && b[o + j] === key[j]) j++;
      if (j === keyLen) return v - 1;
    }
  }

  /** Record index of the peer whose latest announce carried the key hash (kh0, kh1), or -1. */
  #findKeyHash(f: number, v6: boolean, kh0: number, kh1: number): number {
    const { i32 } = this.#readViews();
    const words = (v6 ? this.#rs6 : this.#rs4) >> 2;
    const rec = (i32[f + F_REC]! + R_KEY_HASH) >> 2;
    const index = i32[f + F_INDEX]!;
    if (index === 0) {
      const end = rec + i32[f + F_SIZE]! * words;
      for (let w = rec; w < end; w += words)
        if (i32[w] === kh0 && i32[w + 1] === kh1) return (w - rec) / words;
      return -1;
    }
    const slots = i32[f + F_INDEX_SLOTS]!;
    const ix = (index >> 2) + slots;
    const mask = slots - 1;
    for (let slot = keyHashSlot(kh0, kh1) & mask; ; slot = (slot + 1) & mask) {
      const v = i32[ix + slot]!;
      if (v === 0) return -1;
      const w = rec + (v - 1) * words;
      if (i32[w] === kh0 && i32[w + 1] === kh1) return v - 1;
    }
  }

  /** The record's key hash words: [0, 0] when it has none. */
  #keyHashWord(f: number, v6: boolean, i: number): number {
    return (this.#i32[f + F_REC]! + i * (v6 ? this.#rs6 : this.#rs4) + R_KEY_HASH) >> 2;
  }

  #hasKeyHash(f: number, v6: boolean, i: number): boolean {
    const w = this.#keyHashWord(f, v6, i);
    return (this.#i32[w]! | this.#i32[w + 1]!) !== 0;
  }

  /** Removes record i and counts it out of the shard. */
  #removePeer(s: number, f: number, v6: boolean, i: number): void {
    const seeder = this.#roleOf(f, v6, i) === ROLE_SEEDER;
    this.#removeAt(s, f, v6, i);
    this.#count(s, v6, seeder, -1);
  }

  /** Appends the peer #key (absent); returns its record index. */
  #insert(
    s: number,
    f: number,
    v6: boolean,
    peerId: Buffer,
    expiry: number,
    role: number,
    kh0: number,
    kh1: number,
  ): number {
    const i32 = this.#i32;
    const rs = v6 ? this.#rs6 : this.#rs4;
    const keyLen = v6 ? 18 : 6;
    const size = i32[f + F_SIZE]!;
    if (size === (v6 ? this.#cap6 : this.#cap4)[i32[f + F_CLS]!]) {
      const grown = size < 4 ? size + 1 : size + (size >>> 1);
      this.#moveTo(s, f, v6, classOf(grown * rs));
    }
    const o = i32[f + F_REC]! + size * rs;
    const b = this.#u8;
    const key = this.#key;
    for (let j = 0; j < keyLen; j++) b[o + R_KEY + j] = key[j]!;
    this.#write(f, v6, o, peerId, expiry, role);
    i32[(o + R_KEY_HASH) >> 2] = kh0;
    i32[((o + R_KEY_HASH) >> 2) + 1] = kh1;
    // Published by the size: a record beyond it is no record.
    i32[f + F_SIZE] = size + 1;
    this.#countRole(f, role, 1);
    const index = i32[f + F_INDEX]!;
    if (index !== 0) {
      if ((size + 1) * 2 > i32[f + F_INDEX_SLOTS]!) this.#rebuildIndex(s, f, v6);
      else {
        this.#indexInsert(f, v6, size, false);
        if ((kh0 | kh1) !== 0) this.#indexInsert(f, v6, size, true);
      }
    } else if (size + 1 > INDEX_FROM) {
      this.#rebuildIndex(s, f, v6);
    }
    return size;
  }

  #update(
    f: number,
    v6: boolean,
    i: number,
    peerId: Buffer,
    expiry: number,
    role: number,
    kh0: number,
    kh1: number,
  ): void {
    const i32 = this.#i32;
    const was = this.#roleOf(f, v6, i);
    const rs = v6 ? this.#rs6 : this.#rs4;
    this.#write(f, v6, i32[f + F_REC]! + i * rs, peerId, expiry, role);
    const w = this.#keyHashWord(f, v6, i);
    if (i32[w] !== kh0 || i32[w + 1] !== kh1) {
      const indexed = i32[f + F_INDEX] !== 0;
      if (indexed && (i32[w]! | i32[w + 1]!) !== 0) this.#indexDelete(f, v6, i, true);
      i32[w] = kh0;
      i32[w + 1] = kh1;
      if (indexed && (kh0 | kh1) !== 0) this.#indexInsert(f, v6, i, true);
    }
    if (was !== role) {
      this.#countRole(f, was, -1);
      this.#countRole(f, role, 1);
    }
  }

  #write(f: number, v6: boolean, o: number, peerId: Buffer, expiry: number, role: number): void {
    const b = this.#u8;
    const idAt = o + R_KEY + (v6 ? 18 : 6);
    if (this.#peerIds) for (let j = 0; j < PEER_ID_LEN; j++) b[idAt + j] = peerId[j]!;
    b[o + (v6 ? this.#rs6 : this.#rs4) - 2] = role;
    this.#i32[o >> 2] = expiry;
    if (expiry < this.#i32[f + F_MIN_EXPIRY]!) this.#i32[f + F_MIN_EXPIRY] = expiry;
  }

  #countRole(f: number, role: number, delta: number): void {
    const i32 = this.#i32;
    if (role === ROLE_SEEDER) i32[f + F_SEEDERS] = i32[f + F_SEEDERS]! + delta;
    else if (role === ROLE_PARTIAL_SEED) i32[f + F_PARTIALS] = i32[f + F_PARTIALS]! + delta;
  }

  #removeAt(s: number, f: number, v6: boolean, i: number): void {
    const i32 = this.#i32;
    const rs = v6 ? this.#rs6 : this.#rs4;
    this.#countRole(f, this.#roleOf(f, v6, i), -1);
    const last = i32[f + F_SIZE]! - 1;
    const rec = i32[f + F_REC]!;
    const indexed = i32[f + F_INDEX] !== 0;
    if (indexed) {
      this.#indexDelete(f, v6, i, false);
      if (this.#hasKeyHash(f, v6, i)) this.#indexDelete(f, v6, i, true);
    }
    if (i !== last) {
      const to = rec + i * rs;
      const from = rec + last * rs;
      // Expired first, live again last: a copy cut short is an expired record.
      i32[to >> 2] = 0;
      this.#u8.copyWithin(to + 4, from + 4, from + rs);
      i32[to >> 2] = i32[from >> 2]!;
      if (indexed) {
        this.#indexRelabel(f, v6, last, i, false);
        if (this.#hasKeyHash(f, v6, i)) this.#indexRelabel(f, v6, last, i, true);
      }
    }
    i32[f + F_SIZE] = last;
    this.#afterShrink(s, f, v6);
  }

  /** Removes the expired records of a family table; returns how many. */
  #sweep(s: number, f: number, v6: boolean, nowSec: number): number {
    const i32 = this.#i32;
    const b = this.#u8;
    const rs = v6 ? this.#rs6 : this.#rs4;
    const rec = i32[f + F_REC]!;
    const before = i32[f + F_SIZE]!;
    let size = before;
    let min = NO_EXPIRY;
    let i = 0;
    while (i < size) {
      const o = rec + i * rs;
      const exp = i32[o >> 2]!;
      if (exp > nowSec) {
        if (exp < min) min = exp;
        i++;
        continue;
      }
      this.#countRole(f, b[o + rs - 2]!, -1);
      size--;
      // The record at i is expired already: a copy cut short stays expired until its expiry word.
      if (i !== size) {
        const from = rec + size * rs;
        b.copyWithin(o + 4, from + 4, from + rs);
        i32[o >> 2] = i32[from >> 2]!;
      }
      i32[f + F_SIZE] = size;
    }
    i32[f + F_MIN_EXPIRY] = min;
    const removed = before - size;
    if (removed > 0) {
      // One rebuild instead of a relabel per removed record.
      this.#dropIndex(s, f);
      if (size > INDEX_FROM) this.#rebuildIndex(s, f, v6);
      this.#afterShrink(s, f, v6);
    }
    return removed;
  }

  /** Removes the entry's expired peers, dropping emptied family tables; returns how many peers. */
  #expire(s: number, e: number, nowSec: number): number {
    const i32 = this.#i32;
    let removed = 0;
    for (const v6 of FAMILIES) {
      const f = this.#fam(e, v6);
      if (i32[f + F_REC] === 0 || nowSec < i32[f + F_MIN_EXPIRY]!) continue;
      const seeders = i32[f + F_SEEDERS]!;
      const size = i32[f + F_SIZE]!;
      const gone = this.#sweep(s, f, v6, nowSec);
      const seedersGone = seeders - i32[f + F_SEEDERS]!;
      this.#addCounter(s, v6 ? S_SEEDERS6 : S_SEEDERS4, -seedersGone);
      this.#addCounter(s, v6 ? S_LEECHERS6 : S_LEECHERS4, -(size - i32[f + F_SIZE]! - seedersGone));
      removed += gone;
      if (i32[f + F_SIZE] === 0) this.#dropTable(s, e, v6);
    }
    return removed;
  }

  /** Copies the records into a block of class `cls` and frees the old one. */
  #moveTo(s: number, f: number, v6: boolean, cls: number): void {
    this.#moveInto(s, f, v6, cls, this.#alloc(s, cls));
  }

  #moveInto(s: number, f: number, v6: boolean, cls: number, off: number): void {
    const i32 = this.#i32;
    const rs = v6 ? this.#rs6 : this.#rs4;
    const oldRec = i32[f + F_REC]!;
    const oldCls = i32[f + F_CLS]!;
    this.#u8.copyWithin(off, oldRec, oldRec + i32[f + F_SIZE]! * rs);
    // The smaller class is written first, so that a thread dying in between
    // leaves a capacity that understates the block, never one that overstates it.
    if (cls > oldCls) {
      i32[f + F_REC] = off;
      i32[f + F_CLS] = cls;
    } else {
      i32[f + F_CLS] = cls;
      i32[f + F_REC] = off;
    }
    this.#free(s, oldRec, oldCls);
  }

  #afterShrink(s: number, f: number, v6: boolean): void {
    const i32 = this.#i32;
    const size = i32[f + F_SIZE]!;
    const cap = (v6 ? this.#cap6 : this.#cap4)[i32[f + F_CLS]!]!;
    // Shrink at a quarter full so that a peer joining and leaving cannot bounce between classes.
    if (cap > 8 && size * 4 < cap) {
      const cls = classOf(Math.max(size * 2, 4) * (v6 ? this.#rs6 : this.#rs4));
      // A full heap keeps the larger block.
      const off = this.#tryAlloc(s, cls);
      if (off !== 0) this.#moveInto(s, f, v6, cls, off);
    }
    if (i32[f + F_INDEX] !== 0) {
      if (size < INDEX_DROP_BELOW) this.#dropIndex(s, f);
      else if (size * 8 < i32[f + F_INDEX_SLOTS]!) this.#rebuildIndex(s, f, v6);
    }
  }

  #dropIndex(s: number, f: number): void {
    const i32 = this.#i32;
    const index = i32[f + F_INDEX]!;
    if (index === 0) return;
    i32[f + F_INDEX] = 0;
    this.#free(s, index, indexClass(i32[f + F_INDEX_SLOTS]!));
  }

  #rebuildIndex(s: number, f: number, v6: boolean): void {
    const i32 = this.#i32;
    const size = i32[f + F_SIZE]!;
    let slots = 64;
    while (slots < size * 2) slots *= 2;
    const off = this.#tryAlloc(s, indexClass(slots));
    this.#dropIndex(s, f);
    // A full heap leaves the table without an index: lookups scan, and stay right.
    if (off === 0) return;
    i32.fill(0, off >> 2, (off >> 2) + 2 * slots);
    i32[f + F_INDEX_SLOTS] = slots;
    i32[f + F_INDEX] = off;
    for (let i = 0; i < size; i++) {
      this.#indexInsert(f, v6, i, false);
      // Records without a key hash stay out, so they never share one long probe chain.
      if (this.#hasKeyHash(f, v6, i)) this.#indexInsert(f, v6, i, true);
    }
  }

  /** Index slot hash of record i: of its compact peer, or (byKeyHash) of its key hash. */
  #slotHash(f: number, v6: boolean, i: number, byKeyHash: boolean): number {
    const o = this.#i32[f + F_REC]! + i * (v6 ? this.#rs6 : this.#rs4);
    if (!byKeyHash) return hashKey(this.#u8, o + R_KEY, v6 ? 18 : 6);
    return keyHashSlot(this.#i32[(o + R_KEY_HASH) >> 2]!, this.#i32[((o + R_KEY_HASH) >> 2) + 1]!);
  }

  /** First word of the peer index, or of the key-hash index after it. */
  #indexWord(f: number, byKeyHash: boolean): number {
    const i32 = this.#i32;
    return (i32[f + F_INDEX]! >> 2) + (byKeyHash ? i32[f + F_INDEX_SLOTS]! : 0);
  }

  #indexInsert(f: number, v6: boolean, i: number, byKeyHash: boolean): void {
    const i32 = this.#i32;
    const ix = this.#indexWord(f, byKeyHash);
    const mask = i32[f + F_INDEX_SLOTS]! - 1;
    let slot = this.#slotHash(f, v6, i, byKeyHash) & mask;
    while (i32[ix + slot] !== 0) slot = (slot + 1) & mask;
    i32[ix + slot] = i + 1;
  }

  /** Record `from` now lives at `to` (its bytes are already there). */
  #indexRelabel(f: number, v6: boolean, from: number, to: number, byKeyHash: boolean): void {
    const i32 = this.#i32;
    const ix = this.#indexWord(f, byKeyHash);
    const mask = i32[f + F_INDEX_SLOTS]! - 1;
    let slot = this.#slotHash(f, v6, to, byKeyHash) & mask;
    while (i32[ix + slot] !== from + 1) slot = (slot + 1) & mask;
    i32[ix + slot] = to + 1;
  }

  /** Backward-shift deletion keeps probe chains intact without tombstones. */
  #indexDelete(f: number, v6: boolean, i: number, byKeyHash: boolean): void {
    const i32 = this.#i32;
    const ix = this.#indexWord(f, byKeyHash);
    const mask = i32[f + F_INDEX_SLOTS]! - 1;
    let hole = this.#slotHash(f, v6, i, byKeyHash) & mask;
    while (i32[ix + hole] !== i + 1) hole = (hole + 1) & mask;
    i32[ix + hole] = 0;
    for (let slot = (hole + 1) & mask; i32[ix + slot] !== 0; slot = (slot + 1) & mask) {
      const home = this.#slotHash(f, v6, i32[ix + slot]! - 1, byKeyHash) & mask;
      if (staysInProbeChain(hole, slot, home)) continue;
      i32[ix + hole] = i32[ix + slot]!;
      i32[ix + slot] = 0;
      hole = slot;
    }
  }

  /**
   * Writes up to `want` compact peers into out, skipping record `self` and,
   * when leechersOnly, the seeders and partial seeds; from a random start with
   * a random stride coprime to the size (memory/peer-table.ts).
   */
  #sample(
    f: number,
    v6: boolean,
    out: Buffer,
    want: number,
    leechersOnly: boolean,
    self: number,
    ids: Buffer[] | undefined,
  ): number {
    const { i32, u8: b } = this.#readViews();
    const n = i32[f + F_SIZE]!;
    if (want <= 0 || n === 0) return 0;
    const rs = v6 ? this.#rs6 : this.#rs4;
    const keyLen = v6 ? 18 : 6;
    const base = i32[f + F_REC]!;
    const end = base + n * rs;
    const selfOff = base + self * rs;
    const roleAt = rs - 2;
    const step = sampleStride(n) * rs;
    let o = base + Math.floor(Math.random() * n) * rs;
    let got = 0;
    let w = 0;
    for (let visited = 0; visited < n && got < want; visited++) {
      if (o !== selfOff && !(leechersOnly && (b[o + roleAt]! & NOT_DOWNLOADING) !== 0)) {
        const k = o + R_KEY;
        if (keyLen === 6) {
          out[w] = b[k]!;
          out[w + 1] = b[k + 1]!;
          out[w + 2] = b[k + 2]!;
          out[w + 3] = b[k + 3]!;
          out[w + 4] = b[k + 4]!;
          out[w + 5] = b[k + 5]!;
          w += 6;
        } else {
          for (let j = 0; j < keyLen; j++) out[w++] = b[k + j]!;
        }
        if (ids !== undefined) {
          const id = Buffer.allocUnsafe(PEER_ID_LEN);
          for (let j = 0; j < PEER_ID_LEN; j++) id[j] = b[k + keyLen + j]!;
          ids.push(id);
        }
        got++;
      }
      o += step;
      if (o >= end) o -= end - base;
    }
    return got;
  }

  #countsOf(e: number): SwarmCounts {
    const i32 = this.#i32;
    const f6 = this.#fam(e, true);
    const seeders = i32[e + E_FAM4 + F_SEEDERS]! + i32[f6 + F_SEEDERS]!;
    const size = i32[e + E_FAM4 + F_SIZE]! + i32[f6 + F_SIZE]!;
    return {
      seeders,
      leechers: size - seeders,
      downloaded: i32[e + E_DOWNLOADED]! >>> 0,
      partialSeeds: i32[e + E_FAM4 + F_PARTIALS]! + i32[f6 + F_PARTIALS]!,
    };
  }

  #resultOf(
    e: number,
    peers: Buffer,
    peerIds: Buffer[] | undefined,
    downloadCounted: boolean,
  ): AnnounceResult {
    const c = this.#countsOf(e);
    return {
      seeders: c.seeders,
      leechers: c.leechers,
      downloaded: c.downloaded,
      partialSeeds: c.partialSeeds!,
      peers,
      peerIds,
      downloadCounted,
    };
  }

  /** Every broken invariant of the shared data, one line each (tests; docs/storage.md "Shared-memory store"). */
  audit(): string[] {
    this.#assertOpen();
    const problems: string[] = [];
    const i32 = this.#i32;
    const b = this.#u8;
    const blocks: Array<[start: number, end: number, what: string]> = [];
    for (let s = 0; s < this.#shards; s++) {
      this.#lock(s);
      try {
        const sb = this.#sb(s);
        const tOff = this.#ctl[sb + S_TABLE]!;
        const t = tOff >> 2;
        const cap = i32[t + T_CAP]!;
        blocks.push([tOff, tOff + (TABLE_HEADER_WORDS + cap * ENTRY_WORDS) * 4, `table ${s}`]);
        const mask = cap - 1;
        let used = 0;
        let torrents = 0;
        const sums = [0, 0, 0, 0];
        const hashes = new Set<string>();
        for (let slot = 0; slot < cap; slot++) {
          const e = t + TABLE_HEADER_WORDS + slot * ENTRY_WORDS;
          if (i32[e + E_STATE] === 0) continue;
          used++;
          const name = this.#infoHashAt(e).toString('hex');
          if (hashes.has(name)) problems.push(`shard ${s}: swarm ${name} twice`);
          hashes.add(name);
          const x = mix(i32[e]!, i32[e + 1]!, i32[e + 2]!, i32[e + 3]!, i32[e + 4]!);
          if (this.#shardOf(x) !== s) problems.push(`shard ${s}: swarm ${name} in the wrong shard`);
          for (let p = x & mask; p !== slot; p = (p + 1) & mask)
            if (i32[t + TABLE_HEADER_WORDS + p * ENTRY_WORDS + E_STATE] === 0) {
              problems.push(`shard ${s}: swarm ${name} unreachable from its slot`);
              break;
            }
          let has = false;
          for (const v6 of FAMILIES) {
            const f = this.#fam(e, v6);
            const rec = i32[f + F_REC]!;
            if (rec === 0) continue;
            has = true;
            const where = `shard ${s}: swarm ${name} IPv${v6 ? 6 : 4}`;
            if (v6) blocks.push([f << 2, (f + FAMILY_WORDS) << 2, `${where} family`]);
            const rs = v6 ? this.#rs6 : this.#rs4;
            const keyLen = v6 ? 18 : 6;
            const cls = i32[f + F_CLS]!;
            const size = i32[f + F_SIZE]!;
            blocks.push([rec, rec + classBytes(cls), `${where} records`]);
            if (size < 1 || size > (v6 ? this.#cap6 : this.#cap4)[cls]!)
              problems.push(`${where}: size ${size} outside 1..capacity`);
            let seeders = 0;
            let partials = 0;
            let min = NO_EXPIRY;
            const peers = new Set<string>();
            let keyed = 0;
            for (let r = 0; r < size; r++) {
              const o = rec + r * rs;
              const peer = Buffer.from(b.subarray(o + R_KEY, o + R_KEY + keyLen)).toString('hex');
              if (peers.has(peer)) problems.push(`${where}: peer ${peer} twice`);
              peers.add(peer);
              const role = b[o + rs - 2]!;
              if (role === ROLE_SEEDER) seeders++;
              else if (role === ROLE_PARTIAL_SEED) partials++;
              else if (role !== ROLE_LEECHER) problems.push(`${where}: role ${role}`);
              min = Math.min(min, i32[o >> 2]!);
              if (this.#findKey(f, v6, o + R_KEY) !== r)
                problems.push(`${where}: peer ${peer} not found by lookup`);
              const kh0 = i32[(o + R_KEY_HASH) >> 2]!;
              const kh1 = i32[((o + R_KEY_HASH) >> 2) + 1]!;
              if ((kh0 | kh1) !== 0) {
                keyed++;
                if (this.#findKeyHash(f, v6, kh0, kh1) !== r)
                  problems.push(`${where}: peer ${peer} not found by its key hash (or shares it)`);
              }
            }
            if (seeders !== i32[f + F_SEEDERS])
              problems.push(`${where}: seeders ${i32[f + F_SEEDERS]} != ${seeders}`);
            if (partials !== i32[f + F_PARTIALS])
              problems.push(`${where}: partial seeds ${i32[f + F_PARTIALS]} != ${partials}`);
            if (i32[f + F_MIN_EXPIRY]! > min)
              problems.push(`${where}: minExpiry above a record's expiry`);
            const index = i32[f + F_INDEX]!;
            if (index !== 0) {
              const slots = i32[f + F_INDEX_SLOTS]!;
              blocks.push([index, index + classBytes(indexClass(slots)), `${where} index`]);
              let n = 0;
              let nk = 0;
              for (let k = 0; k < slots; k++) {
                if (i32[(index >> 2) + k] !== 0) n++;
                if (i32[(index >> 2) + slots + k] !== 0) nk++;
              }
              if (n !== size) problems.push(`${where}: index holds ${n} of ${size}`);
              if (nk !== keyed) problems.push(`${where}: key index holds ${nk} of ${keyed}`);
            }
            sums[(v6 ? 2 : 0) + 0]! += seeders;
            sums[(v6 ? 2 : 0) + 1]! += size - seeders;
          }
          if (has) torrents++;
          else if (i32[e + E_DOWNLOADED] === 0)
            problems.push(`shard ${s}: swarm ${name} kept empty`);
        }
        if (used !== i32[t + T_USED])
          problems.push(`shard ${s}: table used ${i32[t + T_USED]} != ${used}`);
        const counters = [S_SEEDERS4, S_LEECHERS4, S_SEEDERS6, S_LEECHERS6];
        counters.forEach((w, k) => {
          if (this.#ctl[sb + w] !== sums[k])
            problems.push(`shard ${s}: counter ${w} ${this.#ctl[sb + w]} != ${sums[k]}`);
        });
        if (this.#ctl[sb + S_TORRENTS] !== torrents)
          problems.push(`shard ${s}: torrents ${this.#ctl[sb + S_TORRENTS]} != ${torrents}`);
        for (let cls = 0; cls < NUM_CLASSES; cls++) {
          let n = 0;
          for (
            let off = this.#ctl[this.#freeBase + s * NUM_CLASSES + cls]!;
            off !== 0;
            off = i32[off >> 2]!
          ) {
            blocks.push([off, off + classBytes(cls), `shard ${s} free ${cls}`]);
            if (++n > 1e7) {
              problems.push(`shard ${s}: free list ${cls} loops`);
              break;
            }
          }
        }
        let n = 0;
        for (let off = this.#ctl[sb + S_SPARE]!; off !== 0; off = i32[off >> 2]!) {
          const left = i32[(off >> 2) + 1]!;
          if (left < 16 || left % 16 !== 0) problems.push(`shard ${s}: spare of ${left} bytes`);
          blocks.push([off, off + left, `shard ${s} spare`]);
          if (++n > 1e7) {
            problems.push(`shard ${s}: spare list loops`);
            break;
          }
        }
      } finally {
        this.#unlock(s);
      }
    }
    blocks.sort((x, y) => x[0] - y[0]);
    const top = Atomics.load(this.#ctl, H_TOP);
    for (let k = 0; k < blocks.length; k++) {
      const [start, end, what] = blocks[k]!;
      if (start < HEAP_START || end > top) problems.push(`${what}: block outside the heap`);
      const next = blocks[k + 1];
      if (next !== undefined && next[0] < end) problems.push(`${what} overlaps ${next[2]}`);
    }
    return problems;
  }

  usage(): SharedMemoryHeapUsage {
    this.#assertOpen();
    const i32 = this.#i32;
    const u = { entries: 0, emptySlots: 0, records: 0, recordSlack: 0, indexes: 0, free: 0 };
    let peers = 0;
    let swarms = 0;
    for (let s = 0; s < this.#shards; s++) {
      this.#lock(s);
      try {
        const t = this.#ctl[this.#sb(s) + S_TABLE]! >> 2;
        const cap = i32[t + T_CAP]!;
        const used = i32[t + T_USED]!;
        u.entries += used * ENTRY_WORDS * 4;
        u.emptySlots +=
          classBytes(classOf((TABLE_HEADER_WORDS + cap * ENTRY_WORDS) * 4)) -
          used * ENTRY_WORDS * 4;
        for (let slot = 0; slot < cap; slot++) {
          const e = t + TABLE_HEADER_WORDS + slot * ENTRY_WORDS;
          if (i32[e + E_STATE] !== 1) continue;
          swarms++;
          for (const v6 of FAMILIES) {
            const f = this.#fam(e, v6);
            if (i32[f + F_REC] === 0) continue;
            if (v6) u.entries += FAMILY_WORDS * 4;
            const size = i32[f + F_SIZE]!;
            const bytes = size * (v6 ? this.#rs6 : this.#rs4);
            peers += size;
            u.records += bytes;
            u.recordSlack += classBytes(i32[f + F_CLS]!) - bytes;
            if (i32[f + F_INDEX] !== 0)
              u.indexes += classBytes(indexClass(i32[f + F_INDEX_SLOTS]!));
          }
        }
        for (let cls = 0; cls < NUM_CLASSES; cls++)
          for (
            let off = this.#ctl[this.#freeBase + s * NUM_CLASSES + cls]!;
            off !== 0;
            off = i32[off >> 2]!
          )
            u.free += classBytes(cls);
        for (let off = this.#ctl[this.#sb(s) + S_SPARE]!; off !== 0; off = i32[off >> 2]!)
          u.free += i32[(off >> 2) + 1]!;
      } finally {
        this.#unlock(s);
      }
    }
    return { top: Atomics.load(this.#ctl, H_TOP), ...u, peers, swarms };
  }

  /** #find for a key already in the heap at byte `at`. */
  #findKey(f: number, v6: boolean, at: number): number {
    const keyLen = v6 ? 18 : 6;
    for (let j = 0; j < keyLen; j++) this.#key[j] = this.#u8[at + j]!;
    return this.#find(f, v6);
  }

  // ---- repair after a lock was taken over from a dead thread ----

  /**
   * Rebuilds shard s from what a dead thread left: entries deduplicated by
   * info hash, each family table cut to its block's capacity, records
   * deduplicated by peer with half-copied (expired) ones dropped, role counts,
   * indexes, the table and the shard's counters recomputed. Blocks the dead
   * thread had taken or was about to free are leaked, never reused.
   */
  #repair(s: number): void {
    const i32 = this.#i32;
    const b = this.#u8;
    const oldOff = this.#ctl[this.#sb(s) + S_TABLE]!;
    const ot = oldOff >> 2;
    const oldCap = i32[ot + T_CAP]!;
    const seen = new Set<string>();
    const keep = new Set<number>();
    for (let slot = 0; slot < oldCap; slot++) {
      const e = ot + TABLE_HEADER_WORDS + slot * ENTRY_WORDS;
      if (i32[e + E_STATE] !== 1) continue;
      const id = `${i32[e]},${i32[e + 1]},${i32[e + 2]},${i32[e + 3]},${i32[e + 4]}`;
      if (seen.has(id)) continue;
      seen.add(id);
      keep.add(e);
    }
    let seeders4 = 0;
    let leechers4 = 0;
    let seeders6 = 0;
    let leechers6 = 0;
    let torrents = 0;
    for (const e of keep) {
      for (const v6 of FAMILIES) {
        const f = this.#fam(e, v6);
        if (i32[f + F_REC] === 0) continue;
        const rs = v6 ? this.#rs6 : this.#rs4;
        const keyLen = v6 ? 18 : 6;
        const rec = i32[f + F_REC]!;
        const size = Math.min(i32[f + F_SIZE]!, (v6 ? this.#cap6 : this.#cap4)[i32[f + F_CLS]!]!);
        const peers = new Set<string>();
        const keyHashes = new Set<string>();
        let w = 0;
        let seeders = 0;
        let partials = 0;
        let min = NO_EXPIRY;
        for (let r = 0; r < size; r++) {
          const o = rec + r * rs;
          const exp = i32[o >> 2]!;
          const peer = Buffer.from(b.subarray(o + R_KEY, o + R_KEY + keyLen)).toString('hex');
          if (exp <= 0 || peers.has(peer)) continue;
          // A key hash binds one record (docs/decisions.md "Peers that move"); a second is a copy cut short.
          const kh = `${i32[(o + R_KEY_HASH) >> 2]},${i32[((o + R_KEY_HASH) >> 2) + 1]}`;
          if (kh !== '0,0' && keyHashes.has(kh)) continue;
          keyHashes.add(kh);
          peers.add(peer);
          if (w !== r) b.copyWithin(rec + w * rs, o, o + rs);
          const role = b[rec + w * rs + rs - 2]!;
          if (role === ROLE_SEEDER) seeders++;
          else if (role === ROLE_PARTIAL_SEED) partials++;
          if (exp < min) min = exp;
          w++;
        }
        i32[f + F_SIZE] = w;
        i32[f + F_SEEDERS] = seeders;
        i32[f + F_PARTIALS] = partials;
        i32[f + F_MIN_EXPIRY] = min;
        // Whatever index it had may be half built: leaked, and built anew.
        i32[f + F_INDEX] = 0;
        if (w === 0) {
          if (v6) i32[e + E_FAM6] = 0;
          else i32[f + F_REC] = 0;
          this.#free(s, rec, i32[f + F_CLS]!);
          if (v6) this.#free(s, f << 2, classOf(FAMILY_WORDS * 4));
          continue;
        }
        if (w > INDEX_FROM) this.#rebuildIndex(s, f, v6);
        if (v6) {
          seeders6 += seeders;
          leechers6 += w - seeders;
        } else {
          seeders4 += seeders;
          leechers4 += w - seeders;
        }
      }
      if (i32[e + E_FAM4 + F_REC] !== 0 || i32[e + E_FAM6] !== 0) torrents++;
    }
    const off = this.#newTable(s, tableCapFor(keep.size));
    const t = off >> 2;
    const mask = i32[t + T_CAP]! - 1;
    let used = 0;
    for (const e of keep) {
      if (i32[e + E_FAM4 + F_REC] === 0 && i32[e + E_FAM6] === 0 && i32[e + E_DOWNLOADED] === 0)
        continue;
      let to = mix(i32[e]!, i32[e + 1]!, i32[e + 2]!, i32[e + 3]!, i32[e + 4]!) & mask;
      while (i32[t + TABLE_HEADER_WORDS + to * ENTRY_WORDS + E_STATE] !== 0) to = (to + 1) & mask;
      i32.copyWithin(t + TABLE_HEADER_WORDS + to * ENTRY_WORDS, e, e + ENTRY_WORDS);
      used++;
    }
    i32[t + T_USED] = used;
    const sb = this.#sb(s);
    this.#ctl[sb + S_TABLE] = off;
    this.#ctl[sb + S_SEEDERS4] = seeders4;
    this.#ctl[sb + S_LEECHERS4] = leechers4;
    this.#ctl[sb + S_SEEDERS6] = seeders6;
    this.#ctl[sb + S_LEECHERS6] = leechers6;
    this.#ctl[sb + S_TORRENTS] = torrents;
    // The old table may be the one a dead thread was rebuilding from: leaked, not freed.
  }
}

const FAMILIES = [false, true] as const;

/** Heap class of an index block: the peer index and the key-hash index, `slots` words each. */
function indexClass(slots: number): number {
  return classOf(slots * 8);
}

/** Index slot hash of a key hash: SipHash output already (docs/decisions.md "Peers that move"), so one multiply mixes it. */
function keyHashSlot(kh0: number, kh1: number): number {
  const x = Math.imul(kh0 ^ Math.imul(kh1, 0x9e3779b1), 0x85ebca6b);
  return (x ^ (x >>> 15)) >>> 0;
}

/** Slots for `used` entries: at most half full, at least MIN_TABLE_CAP. */
function tableCapFor(used: number): number {
  let cap = MIN_TABLE_CAP;
  while (cap < used * 2) cap *= 2;
  return cap;
}

function mix(h0: number, h1: number, h2: number, h3: number, h4: number): number {
  let x =
    h0 ^
    Math.imul(h1, 0x9e3779b1) ^
    Math.imul(h2, 0x85ebca6b) ^
    Math.imul(h3, 0xc2b2ae35) ^
    Math.imul(h4, 0x27d4eb2f);
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  return x ^ (x >>> 16);
}
