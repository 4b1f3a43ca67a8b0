// The peers of one address family in one swarm, packed as fixed-size records
// in a slice of a shared slab. A JS object or Map entry per peer costs 100+
// bytes; a record costs 40 (IPv4) or 52 (IPv6) bytes, which keeps the memory
// driver within a small factor of opentracker (8 bytes per IPv4 peer).
//
// Record layout (offsets for a key of K bytes; K = 6 for IPv4, 18 for IPv6):
//   [0, K)        compact peer: address then big-endian port (BEP 23 / BEP 7),
//                 so a sampled peer is copied to the answer as is
//   [K, K+20)     peer_id (only non-compact answers need it)
//   [K+20, K+24)  expiry, seconds since the store's start, little-endian uint32
//   [K+24]        role flags (bit 0: seeder, bit 1: BEP 21 partial seed; never both)
//   [K+25, K+33)  key hash of the record's latest announce, all zero without
//                 one (docs/decisions.md "Peers that move")
//
// Lookup is a linear scan while the table is small and an open-addressing
// index (linear probing, backward-shift deletion) once it is big; a second
// index of the same kind finds a record by its key hash (records without one
// are left out of it, so they never share one long probe chain). Removal
// moves the last record into the hole, so records stay dense and sampling
// never meets a gap.

const SLAB_BYTES = 1 << 20;
/** Allocations above this get their own buffer instead of a slab slice. */
const MAX_SLAB_ALLOC = 16 << 10;

/**
 * Capacity classes in records: 1, 2, 3, 4, then +50% each. Small swarms
 * dominate, so the first steps grow by one record.
 */
const CAPACITIES: number[] = [];
for (let c = 1; c < 2 ** 28; c = c < 4 ? c + 1 : c + (c >>> 1)) CAPACITIES.push(c);

function classFor(records: number): number {
  let cls = 0;
  while (CAPACITIES[cls]! < records) cls++;
  return cls;
}

/**
 * Record storage for every table of one address family in one store. A
 * Uint8Array per table would cost ~200 bytes of V8 and malloc bookkeeping per
 * swarm and churn ArrayBuffers on every growth step; instead tables take
 * slices of 1 MiB slabs, by capacity class, and return them to a per-class
 * free list. Slab memory is reused, never handed back to the OS: a tracker's
 * peer count moves slowly, and the peak is what has to fit anyway.
 */
export class RecordArena {
  /** Compact peer length: 6 (IPv4) or 18 (IPv6). */
  readonly keyLen: number;
  /** Bytes per record: keyLen + 20 + 4 + 1 + 8, rounded up to a multiple of 4. */
  readonly recSize: number;
  private slab: Uint8Array;
  private used = 0;
  private readonly freeBufs: Uint8Array[][] = CAPACITIES.map(() => []);
  private readonly freeBases: number[][] = CAPACITIES.map(() => []);

  constructor(keyLen: number) {
    this.keyLen = keyLen;
    this.recSize = (keyLen + 25 + KEY_HASH_LEN + 3) & ~3;
    this.slab = new Uint8Array(0);
  }

  /** Points the table at fresh room for CAPACITIES[cls] records. */
  alloc(t: PeerTable, cls: number): void {
    t.cls = cls;
    const bytes = CAPACITIES[cls]! * this.recSize;
    if (bytes > MAX_SLAB_ALLOC) {
      t.buf = new Uint8Array(bytes);
      t.base = 0;
      return;
    }
    const bufs = this.freeBufs[cls]!;
    if (bufs.length > 0) {
      t.buf = bufs.pop()!;
      t.base = this.freeBases[cls]!.pop()!;
      return;
    }
    if (this.used + bytes > this.slab.length) {
      this.slab = new Uint8Array(SLAB_BYTES);
      this.used = 0;
    }
    t.buf = this.slab;
    t.base = this.used;
    this.used += bytes;
  }

  free(t: PeerTable): void {
    if (CAPACITIES[t.cls]! * this.recSize > MAX_SLAB_ALLOC) return;
    this.freeBufs[t.cls]!.push(t.buf);
    this.freeBases[t.cls]!.push(t.base);
  }
}

const PEER_ID_LEN = 20;
/** PeerAnnounce.keyHash's size (PEER_KEY_HASH_SIZE in @shoal/protocol). */
export const KEY_HASH_LEN = 8;
/** Offset of the key hash in a record, after the compact peer. */
const KEY_HASH_AT = PEER_ID_LEN + 4 + 1;
/** A peer's role is its flags byte: 0 a leecher, ROLE_SEEDER or ROLE_PARTIAL_SEED. */
export const ROLE_LEECHER = 0;
export const ROLE_SEEDER = 1;
/** BEP 21: not complete, but wants nothing more; given leechers only, like a seeder. */
export const ROLE_PARTIAL_SEED = 2;
const FLAG_SEEDER = ROLE_SEEDER;
const FLAG_PARTIAL = ROLE_PARTIAL_SEED;
/** Peers that want nothing: a sample for one of them skips them all. */
const NOT_DOWNLOADING = FLAG_SEEDER | FLAG_PARTIAL;
/** Expiry times are seconds since the store started (see index.ts), so they stay small integers. */
export const NO_EXPIRY = 0x7fffffff;
const EMPTY_BUF = new Uint8Array(0);

/** Tables above this size get a hash index; below the lower mark they drop it. */
export const INDEX_FROM = 32;
const INDEX_DROP_BELOW = 16;

export function hashKey(b: Uint8Array, off: number, len: number): number {
  // FNV-1a then a final avalanche: addresses of one subnet differ in few bits.
  let h = 0x811c9dc5;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ b[off + i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

/**
 * Strides for sampling: a prime p that does not divide n makes (p mod n)
 * coprime to n, so the walk visits every record once. A gcd loop per
 * announce costs more than the whole copy of 50 peers.
 */
const STRIDE_PRIMES = [
  1_000_003, 1_299_709, 1_572_869, 2_750_159, 3_145_739, 4_256_249, 6_291_469, 8_388_617,
  12_582_917, 15_485_863, 25_165_843, 32_452_843, 50_331_653, 67_867_967, 100_663_319, 122_949_823,
];

/** A random stride for visiting n records: coprime to n, so the walk meets each once. */
export function sampleStride(n: number): number {
  if (n <= 2) return 1;
  const p = STRIDE_PRIMES[Math.floor(Math.random() * STRIDE_PRIMES.length)]!;
  return n % p !== 0 ? p % n : 1;
}

/**
 * Backward-shift deletion in linear probing: the entry at `slot`, whose home
 * is `home`, must stay when its home lies cyclically in (hole, slot].
 */
export function staysInProbeChain(hole: number, slot: number, home: number): boolean {
  return hole <= slot ? home > hole && home <= slot : home > hole || home <= slot;
}

export class PeerTable {
  readonly arena: RecordArena;
  /** Records live in buf[base, base + CAPACITIES[cls] * recSize). */
  buf: Uint8Array;
  base = 0;
  cls = 0;
  size = 0;
  seeders = 0;
  /** BEP 21 partial seeds, counted among the leechers. */
  partials = 0;
  /** No record expires before this second; a sweep before then finds nothing. */
  minExpiry = NO_EXPIRY;
  /** Record index + 1 per slot, 0 = empty; null while the table is small. */
  index: Int32Array | null = null;
  /** The same for the records with a key hash, by key hash; null exactly when `index` is. */
  keyIndex: Int32Array | null = null;

  constructor(arena: RecordArena) {
    this.arena = arena;
    this.buf = EMPTY_BUF;
    arena.alloc(this, 0);
  }

  /** Every peer that is not a seeder, partial seeds included. */
  get leechers(): number {
    return this.size - this.seeders;
  }

  /** Leechers that are not partial seeds: what a seeder or a partial seed may be given. */
  get downloaders(): number {
    return this.size - this.seeders - this.partials;
  }

  /** Gives the table's room back to the arena; the table must not be used afterwards. */
  release(): void {
    this.arena.free(this);
    this.buf = EMPTY_BUF;
    this.size = this.seeders = this.partials = 0;
    this.index = this.keyIndex = null;
  }

  isSeeder(i: number): boolean {
    return (this.roleOf(i) & FLAG_SEEDER) !== 0;
  }

  /** ROLE_LEECHER, ROLE_SEEDER or ROLE_PARTIAL_SEED. */
  roleOf(i: number): number {
    const { keyLen, recSize } = this.arena;
    return this.buf[this.base + i * recSize + keyLen + 24]!;
  }

  expiryOf(i: number): number {
    const b = this.buf;
    const o = this.base + i * this.arena.recSize + this.arena.keyLen + PEER_ID_LEN;
    return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
  }

  /** Record index of the peer whose compact form is key[0, keyLen), or -1. */
  find(key: Uint8Array): number {
    const { keyLen, recSize } = this.arena;
    const b = this.buf;
    const base = this.base;
    const index = this.index;
    if (index === null) {
      const k0 = key[0]!;
      const kLast = key[keyLen - 1]!;
      for (let i = 0, o = base; i < this.size; i++, o += recSize) {
        // First and last byte (address start, port low byte) reject almost every miss.
        if (b[o] !== k0 || b[o + keyLen - 1] !== kLast) continue;
        let j = 1;
        while (j < keyLen - 1 && b[o + j] === key[j]) j++;
        if (j === keyLen - 1) return i;
      }
      return -1;
    }
    const mask = index.length - 1;
    for (let s = hashKey(key, 0, keyLen) & mask; ; s = (s + 1) & mask) {
      const e = index[s]!;
      if (e === 0) return -1;
      const o = base + (e - 1) * recSize;
      let j = 0;
      while (j < keyLen && b[o + j] === key[j]) j++;
      if (j === keyLen) return e - 1;
    }
  }

  /** Record index of the peer whose latest announce carried this key hash, or -1. */
  findKeyHash(h: Uint8Array): number {
    const { keyLen, recSize } = this.arena;
    const b = this.buf;
    const at = keyLen + KEY_HASH_AT;
    const index = this.keyIndex;
    if (index === null) {
      for (let i = 0, o = this.base + at; i < this.size; i++, o += recSize) {
        let j = 0;
        while (j < KEY_HASH_LEN && b[o + j] === h[j]) j++;
        if (j === KEY_HASH_LEN) return i;
      }
      return -1;
    }
    const mask = index.length - 1;
    for (let s = hashKey(h, 0, KEY_HASH_LEN) & mask; ; s = (s + 1) & mask) {
      const e = index[s]!;
      if (e === 0) return -1;
      const o = this.base + (e - 1) * recSize + at;
      let j = 0;
      while (j < KEY_HASH_LEN && b[o + j] === h[j]) j++;
      if (j === KEY_HASH_LEN) return e - 1;
    }
  }

  /** Appends a peer; the caller has checked it is absent. Returns its record index. */
  insert(
    key: Uint8Array,
    peerId: Uint8Array,
    expiry: number,
    role: number,
    keyHash: Uint8Array | undefined,
  ): number {
    if (this.size === CAPACITIES[this.cls]) this.moveTo(this.cls + 1);
    const i = this.size++;
    const b = this.buf;
    const o = this.base + i * this.arena.recSize;
    const keyLen = this.arena.keyLen;
    for (let j = 0; j < keyLen; j++) b[o + j] = key[j]!;
    this.write(i, peerId, expiry, role);
    this.writeKeyHash(i, keyHash);
    this.countRole(role, 1);
    if (this.index !== null) {
      if (this.size * 2 > this.index.length) this.rebuildIndex();
      else {
        this.indexInsert(i);
        if (this.hasKeyHash(i)) this.keyIndexInsert(i);
      }
    } else if (this.size > INDEX_FROM) {
      this.rebuildIndex();
    }
    return i;
  }

  /** Refreshes a stored peer: new peer_id, expiry, role and key hash. Keeps the role counts exact. */
  update(
    i: number,
    peerId: Uint8Array,
    expiry: number,
    role: number,
    keyHash: Uint8Array | undefined,
  ): void {
    const was = this.roleOf(i);
    this.write(i, peerId, expiry, role);
    if (!this.sameKeyHash(i, keyHash)) {
      if (this.keyIndex !== null && this.hasKeyHash(i)) this.keyIndexDelete(i);
      this.writeKeyHash(i, keyHash);
      if (this.keyIndex !== null && this.hasKeyHash(i)) this.keyIndexInsert(i);
    }
    if (was !== role) {
      this.countRole(was, -1);
      this.countRole(role, 1);
    }
  }

  removeAt(i: number): void {
    this.countRole(this.roleOf(i), -1);
    const { recSize } = this.arena;
    const last = this.size - 1;
    if (this.index !== null) {
      this.indexDelete(i);
      if (this.hasKeyHash(i)) this.keyIndexDelete(i);
    }
    if (i !== last) {
      const from = this.base + last * recSize;
      this.buf.copyWithin(this.base + i * recSize, from, from + recSize);
      if (this.index !== null) {
        this.indexRelabel(last, i);
        if (this.hasKeyHash(i)) this.keyIndexRelabel(last, i);
      }
    }
    this.size = last;
    this.afterShrink();
  }

  /**
   * Removes every record whose expiry is at or before nowSec and returns how
   * many went. Finds nothing to do, in O(1), until minExpiry is reached, so a
   * busy swarm is walked at most once per second.
   */
  sweep(nowSec: number): number {
    if (nowSec < this.minExpiry) return 0;
    const { recSize } = this.arena;
    const b = this.buf;
    const base = this.base;
    const before = this.size;
    let min = NO_EXPIRY;
    let i = 0;
    while (i < this.size) {
      const exp = this.expiryOf(i);
      if (exp > nowSec) {
        if (exp < min) min = exp;
        i++;
        continue;
      }
      this.countRole(this.roleOf(i), -1);
      const last = --this.size;
      if (i !== last)
        b.copyWithin(base + i * recSize, base + last * recSize, base + last * recSize + recSize);
    }
    this.minExpiry = min;
    const removed = before - this.size;
    if (removed > 0) {
      // One rebuild instead of a relabel per removed record.
      this.index = this.keyIndex = null;
      if (this.size > INDEX_FROM) this.rebuildIndex();
      this.afterShrink();
    }
    return removed;
  }

  /**
   * Writes up to `want` compact peers into out (from offset 0), skipping record
   * `self` and, when leechersOnly, the seeders and partial seeds. Visits records from a random
   * start with a random stride coprime to the size, so every peer is reachable
   * without shuffling the table. Returns how many were written.
   */
  sample(
    out: Buffer,
    want: number,
    leechersOnly: boolean,
    self: number,
    ids: Buffer[] | undefined,
  ): number {
    const n = this.size;
    if (want <= 0 || n === 0) return 0;
    const { keyLen, recSize } = this.arena;
    const b = this.buf;
    const base = this.base;
    const end = base + n * recSize;
    const selfOff = base + self * recSize;
    const flagOff = keyLen + 24;
    const step = sampleStride(n) * recSize;
    let o = base + Math.floor(Math.random() * n) * recSize;
    let got = 0;
    let w = 0;
    for (let visited = 0; visited < n && got < want; visited++) {
      if (o !== selfOff && !(leechersOnly && (b[o + flagOff]! & NOT_DOWNLOADING) !== 0)) {
        if (keyLen === 6) {
          // Unrolled: about twice as fast as the loop for the common IPv4 case.
          out[w] = b[o]!;
          out[w + 1] = b[o + 1]!;
          out[w + 2] = b[o + 2]!;
          out[w + 3] = b[o + 3]!;
          out[w + 4] = b[o + 4]!;
          out[w + 5] = b[o + 5]!;
          w += 6;
        } else {
          for (let j = 0; j < keyLen; j++) out[w++] = b[o + j]!;
        }
        if (ids !== undefined)
          ids.push(Buffer.from(b.subarray(o + keyLen, o + keyLen + PEER_ID_LEN)));
        got++;
      }
      o += step;
      if (o >= end) o -= end - base;
    }
    return got;
  }

  private countRole(role: number, delta: number): void {
    if (role === ROLE_SEEDER) this.seeders += delta;
    else if (role === ROLE_PARTIAL_SEED) this.partials += delta;
  }

  private write(i: number, peerId: Uint8Array, expiry: number, role: number): void {
    const b = this.buf;
    const keyLen = this.arena.keyLen;
    let o = this.base + i * this.arena.recSize + keyLen;
    for (let j = 0; j < PEER_ID_LEN; j++) b[o + j] = peerId[j]!;
    o += PEER_ID_LEN;
    b[o] = expiry & 0xff;
    b[o + 1] = (expiry >>> 8) & 0xff;
    b[o + 2] = (expiry >>> 16) & 0xff;
    b[o + 3] = expiry >>> 24;
    b[o + 4] = role;
    if (expiry < this.minExpiry) this.minExpiry = expiry;
  }

  /** Copies the records into room of another capacity class and frees the old room. */
  private moveTo(cls: number): void {
    const oldBuf = this.buf;
    const oldBase = this.base;
    const bytes = this.size * this.arena.recSize;
    this.arena.free(this);
    this.arena.alloc(this, cls);
    this.buf.set(oldBuf.subarray(oldBase, oldBase + bytes), this.base);
  }

  private afterShrink(): void {
    // Shrink at a quarter full so that a peer joining and leaving cannot bounce between classes.
    if (this.cls > 4 && this.size * 4 < CAPACITIES[this.cls]!)
      this.moveTo(classFor(Math.max(this.size * 2, 4)));
    if (this.index !== null) {
      if (this.size < INDEX_DROP_BELOW) this.index = this.keyIndex = null;
      else if (this.size * 8 < this.index.length) this.rebuildIndex();
    }
  }

  private rebuildIndex(): void {
    let slots = 64;
    while (slots < this.size * 2) slots *= 2;
    this.index = new Int32Array(slots);
    this.keyIndex = new Int32Array(slots);
    for (let i = 0; i < this.size; i++) {
      this.indexInsert(i);
      if (this.hasKeyHash(i)) this.keyIndexInsert(i);
    }
  }

  private hasKeyHash(i: number): boolean {
    const b = this.buf;
    const o = this.base + i * this.arena.recSize + this.arena.keyLen + KEY_HASH_AT;
    for (let j = 0; j < KEY_HASH_LEN; j++) if (b[o + j] !== 0) return true;
    return false;
  }

  private sameKeyHash(i: number, h: Uint8Array | undefined): boolean {
    const b = this.buf;
    const o = this.base + i * this.arena.recSize + this.arena.keyLen + KEY_HASH_AT;
    for (let j = 0; j < KEY_HASH_LEN; j++)
      if (b[o + j] !== (h === undefined ? 0 : h[j])) return false;
    return true;
  }

  private writeKeyHash(i: number, h: Uint8Array | undefined): void {
    const b = this.buf;
    const o = this.base + i * this.arena.recSize + this.arena.keyLen + KEY_HASH_AT;
    for (let j = 0; j < KEY_HASH_LEN; j++) b[o + j] = h === undefined ? 0 : h[j]!;
  }

  /** The index hash of record i: of its compact peer, or of its key hash. */
  private slotHash(i: number, keyHashes = false): number {
    const o = this.base + i * this.arena.recSize;
    return keyHashes
      ? hashKey(this.buf, o + this.arena.keyLen + KEY_HASH_AT, KEY_HASH_LEN)
      : hashKey(this.buf, o, this.arena.keyLen);
  }

  private indexInsert(i: number): void {
    this.ixInsert(this.index!, i, false);
  }

  private keyIndexInsert(i: number): void {
    this.ixInsert(this.keyIndex!, i, true);
  }

  private indexRelabel(from: number, to: number): void {
    this.ixRelabel(this.index!, from, to, false);
  }

  private keyIndexRelabel(from: number, to: number): void {
    this.ixRelabel(this.keyIndex!, from, to, true);
  }

  private indexDelete(i: number): void {
    this.ixDelete(this.index!, i, false);
  }

  private keyIndexDelete(i: number): void {
    this.ixDelete(this.keyIndex!, i, true);
  }

  private ixInsert(index: Int32Array, i: number, keyHashes: boolean): void {
    const mask = index.length - 1;
    let s = this.slotHash(i, keyHashes) & mask;
    while (index[s] !== 0) s = (s + 1) & mask;
    index[s] = i + 1;
  }

  /** Record `from` now lives at `to` (its bytes are already there). */
  private ixRelabel(index: Int32Array, from: number, to: number, keyHashes: boolean): void {
    const mask = index.length - 1;
    let s = this.slotHash(to, keyHashes) & mask;
    while (index[s] !== from + 1) s = (s + 1) & mask;
    index[s] = to + 1;
  }

  /** Backward-shift deletion keeps probe chains intact without tombstones. */
  private ixDelete(index: Int32Array, i: number, keyHashes: boolean): void {
    const mask = index.length - 1;
    let hole = this.slotHash(i, keyHashes) & mask;
    while (index[hole] !== i + 1) hole = (hole + 1) & mask;
    index[hole] = 0;
    for (let s = (hole + 1) & mask; index[s] !== 0; s = (s + 1) & mask) {
      const home = this.slotHash(index[s]! - 1, keyHashes) & mask;
      if (staysInProbeChain(hole, s, home)) continue;
      index[hole] = index[s]!;
      index[s] = 0;
      hole = s;
    }
  }
}
