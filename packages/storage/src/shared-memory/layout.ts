// Where everything lives in the shared-memory store's buffers
// (docs/storage.md "Shared-memory store"). Two SharedArrayBuffers hold the
// peers: `control`, fixed size (header, per-shard lock and counter words,
// per-shard free lists, the owner table), and `heap`, growable, from which
// every swarm table, peer record block and record index is carved. A third,
// `kv`, holds the DataStore log (kv.ts); a fourth, `rate`, the rate-limit
// counters (rate.ts). Every offset stored in a buffer is a
// byte offset into `heap` below 2^31, so it stays a small integer in V8; 0
// means "none" (the heap's first 64 bytes are never handed out).
import { StoreError } from '../errors.ts';

export const MAGIC = 0x5348_4d31; // "SHM1"
export const LAYOUT_VERSION = 4;

// Header words of `control` (Int32Array indexes).
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_SHARDS = 2;
export const H_LIFETIME = 3;
/** Heap bump pointer (bytes); advanced with compareExchange by any thread. */
export const H_TOP = 4;
export const H_HEAP_MAX = 5;
/** The last owner id handed out (lock.ts). */
export const H_NEXT_OWNER = 6;
export const H_MAX_OWNERS = 7;
/** Float64 index (byte 64) of the store's start in whole seconds since the epoch. */
export const H_EPOCH_F64 = 8;
/** The DataStore's lock word and its waiter count (kv.ts). */
export const H_KV_LOCK = 24;
/** Byte offset in `kv` of the current segment; changes on compaction. */
export const H_KV_SEG = 26;
/** Bumped on every compaction: a thread's cached view of the log is stale. */
export const H_KV_GEN = 27;
/** Bytes of superseded records in the current segment. */
export const H_KV_GARBAGE = 28;
/** The rate counters' lock word and its waiter count (rate.ts). */
export const H_RATE_LOCK = 29;
/** 1 when records keep the peer_id (the creator's `peerIds` option), else 0. */
export const H_PEER_IDS = 31;
export const HEADER_WORDS = 32;

// Per-shard words, SHARD_WORDS apart (64 bytes: one cache line per lock).
export const SHARD_WORDS = 16;
export const S_LOCK = 0;
export const S_WAITERS = 1;
/** Byte offset of the shard's swarm table in the heap. */
export const S_TABLE = 2;
export const S_TORRENTS = 3;
export const S_SEEDERS4 = 4;
export const S_LEECHERS4 = 5;
export const S_SEEDERS6 = 6;
export const S_LEECHERS6 = 7;
/**
 * Byte offset of the shard's first spare block, 0 for none. A freed block of
 * SPARE_FROM bytes or more (an outgrown swarm table, a big swarm's old record
 * block) is not kept for its own class, which a growing shard seldom asks for
 * again, but carved from its end for any smaller block: word 0 links the
 * next spare, word 1 holds the bytes not yet carved.
 */
export const S_SPARE = 8;
export const SPARE_FROM = 1024;

/** Heap size classes; each shard keeps one free list per class. */
export const NUM_CLASSES = 200;
/** Largest block the heap hands out (2^30 bytes). */
export const MAX_BLOCK = 1 << 30;

// Owner table: per owner id, its thread id and state (lock.ts).
export const OWNER_WORDS = 2;
export const O_THREAD = 0;
export const O_STATE = 1;
export const OWNER_LIVE = 1;
export const OWNER_CLOSED = 2;
export const OWNER_DEAD = 3;

export const HEAP_START = 64;
/** Offsets stay below 2^31 (small integers in V8). */
export const HEAP_MAX_LIMIT = 2 ** 31 - (1 << 20);

export function controlLayout(shards: number, maxOwners: number) {
  const shardBase = HEADER_WORDS;
  const freeBase = shardBase + shards * SHARD_WORDS;
  const ownerBase = freeBase + shards * NUM_CLASSES;
  const words = ownerBase + (maxOwners + 1) * OWNER_WORDS;
  return { shardBase, freeBase, ownerBase, words };
}

/**
 * Size classes: multiples of 16 up to 256 bytes (peer blocks of 1..8 IPv4
 * records fit exactly), then 8 steps per power of two (at most 12.5% slack).
 */
export function classOf(bytes: number): number {
  if (bytes <= 256) return bytes <= 16 ? 0 : ((bytes + 15) >>> 4) - 1;
  if (bytes > MAX_BLOCK)
    throw new StoreError('STORE_ERR_UNAVAILABLE', 'shared-memory store: block too large');
  const k = 31 - Math.clz32(bytes - 1);
  const step = 1 << (k - 3);
  const m = Math.ceil((bytes - (1 << k)) / step);
  return 16 + (k - 8) * 8 + (m - 1);
}

export function classBytes(cls: number): number {
  if (cls < 16) return (cls + 1) * 16;
  const k = ((cls - 16) >>> 3) + 8;
  const m = ((cls - 16) & 7) + 1;
  return 2 ** k + m * 2 ** (k - 3);
}

// Swarm table: a 16-byte header (cap, used) then `cap` entries of
// ENTRY_WORDS words, open addressing with linear probing and backward-shift
// deletion. An entry:
export const T_CAP = 0;
export const T_USED = 1;
export const TABLE_HEADER_WORDS = 4;
export const ENTRY_WORDS = 16;
/** Words 0..4: the info hash as five little-endian int32. */
export const E_STATE = 5;
export const E_DOWNLOADED = 6;
/**
 * Family blocks of FAMILY_WORDS words: IPv4's inside the entry at E_FAM4;
 * IPv6's, which most swarms never need, in a block of its own whose byte
 * offset is at E_FAM6 (0: no IPv6 peers). Family block 0 (word index 0)
 * reads as an empty family: the heap's first 64 bytes stay zero.
 */
export const E_FAM6 = 7;
export const E_FAM4 = 8;
export const FAMILY_WORDS = 8;
export const F_REC = 0;
export const F_CLS = 1;
export const F_SIZE = 2;
export const F_SEEDERS = 3;
export const F_PARTIALS = 4;
export const F_MIN_EXPIRY = 5;
/** Index block: F_INDEX_SLOTS words by compact peer, then as many by key hash. */
export const F_INDEX = 6;
export const F_INDEX_SLOTS = 7;
export const MIN_TABLE_CAP = 16;

// Peer records, 4-byte aligned, RS bytes each:
//   [0, 4)                 expiry, seconds since the store's start (int32)
//   [4, 12)                key hash of the record's latest announce, all zero
//                          without one (docs/decisions.md "Peers that move")
//   [12, 12 + K)           compact peer: address then big-endian port (BEP 23 / BEP 7)
//   [12 + K, 32 + K)       peer_id, only in a store made with `peerIds`
//   [RS - 2]               role (0 leecher, 1 seeder, 2 BEP 21 partial seed)
// K = 6 for IPv4, 18 for IPv6. RS = 20 (IPv4) and 32 (IPv6) without peer_ids,
// 40 and 52 with them (the memory driver's sizes).
export const R_KEY_HASH = 4;
export const R_KEY = 12;
export const REC_SIZE4 = 20;
export const REC_SIZE6 = 32;
export const REC_SIZE4_IDS = 40;
export const REC_SIZE6_IDS = 52;

/**
 * Grows a growable SharedArrayBuffer to hold `end` bytes, in `step`s with an
 * eighth to spare. Another thread may grow it at the same moment: a request
 * below its new length is refused, and is fine when the length suffices.
 */
export function growTo(sab: SharedArrayBuffer, end: number, step: number, what: string): void {
  if (end <= sab.byteLength) return;
  const full = () => new StoreError('STORE_ERR_UNAVAILABLE', `shared-memory store: ${what} full`);
  if (end > sab.maxByteLength) throw full();
  try {
    sab.grow(Math.min(sab.maxByteLength, Math.ceil((end + (end >>> 3)) / step) * step));
  } catch (err) {
    if (sab.byteLength < end) throw new StoreError(full().code, full().message, { cause: err });
  }
}
