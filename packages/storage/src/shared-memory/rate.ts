// The shared-memory store's rate-limit counters (RateCounters, docs/policy.md
// "Shared rate limits"): every worker's sync adds to the same counts, so the
// workers of one gateway limit together as the gateways of a cluster do.
//
// One open-addressing table (linear probing) in the `rate` buffer, under one
// lock: an entry is (window, key) -> count. Entries of windows older than the
// one before the newest are dead; they stay in probe chains until the table
// is rebuilt, which drops them, so the table holds about two windows' keys.
// A sync is one call per RATE_LIMIT_SHARED_SYNC_MS per worker, off the
// announce path, so one lock for all of it costs nothing worth sharding.
//
// A thread dying while it holds the lock leaves the table cleared by the
// thread that takes it over: the counts of the current window are lost, which
// only lets that window admit more, as a failed sync does
// (docs/storage.md "Shared-memory store").
import { StoreError } from '../errors.ts';
import { validateRateCounts } from '../validate.ts';
import type { RateCounts } from '../capabilities.ts';
import { H_RATE_LOCK, growTo } from './layout.ts';
import type { Locks } from './lock.ts';

// Header words of `rate`.
const R_CAP = 0;
const R_USED = 1;
/** Float64 index of the newest window seen. */
const R_NEWEST_F64 = 1;
const HEADER_BYTES = 16;
// An entry: key length (0: empty slot), count, window (float64), key bytes.
const ENTRY_BYTES = 80;
const E_LEN = 0;
const E_COUNT = 1;
const E_WINDOW_F64 = 1;
const E_KEY = 16;
export const RATE_MIN_CAP = 256;
const GROW_STEP = 1 << 20;

/** Bytes of a table of `cap` entries. */
export function rateTableBytes(cap: number): number {
  return HEADER_BYTES + cap * ENTRY_BYTES;
}

/** Writes an empty table into a fresh `rate` buffer (before any other thread sees it). */
export function initRateTable(sab: SharedArrayBuffer): void {
  new Int32Array(sab)[R_CAP] = RATE_MIN_CAP;
}

export class SharedRateCounters {
  readonly #sab: SharedArrayBuffer;
  readonly #locks: Locks;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #u8: Uint8Array;

  constructor(sab: SharedArrayBuffer, locks: Locks) {
    this.#sab = sab;
    this.#locks = locks;
    this.#i32 = new Int32Array(sab);
    this.#f64 = new Float64Array(sab);
    this.#u8 = new Uint8Array(sab);
  }

  add(
    window: number,
    windowMs: number,
    keys: readonly string[],
    deltas: readonly number[],
  ): RateCounts {
    validateRateCounts(window, windowMs, keys, deltas);
    if (this.#locks.acquire(H_RATE_LOCK)) this.#clear(RATE_MIN_CAP);
    try {
      const f64 = this.#f64;
      const i32 = this.#i32;
      if (window > f64[R_NEWEST_F64]!) f64[R_NEWEST_F64] = window;
      const counts: RateCounts = { current: [], previous: [] };
      for (let k = 0; k < keys.length; k++) {
        const key = keys[k]!;
        let e = this.#find(window, key);
        if (e < 0) e = this.#insert(window, key);
        const total = i32[(e >> 2) + E_COUNT]! + deltas[k]!;
        i32[(e >> 2) + E_COUNT] = total;
        counts.current.push(total);
        const p = this.#find(window - 1, key);
        counts.previous.push(p < 0 ? 0 : i32[(p >> 2) + E_COUNT]!);
      }
      return counts;
    } finally {
      this.#locks.release(H_RATE_LOCK);
    }
  }

  /** Byte offset of the entry (window, key), or minus the empty slot where it would go. */
  #find(window: number, key: string): number {
    const i32 = this.#i32;
    const u8 = this.#u8;
    const mask = i32[R_CAP]! - 1;
    for (let slot = slotOf(window, key) & mask; ; slot = (slot + 1) & mask) {
      const e = HEADER_BYTES + slot * ENTRY_BYTES;
      const len = i32[(e >> 2) + E_LEN]!;
      if (len === 0) return -e;
      if (len !== key.length || this.#f64[(e >> 3) + E_WINDOW_F64] !== window) continue;
      let j = 0;
      while (j < len && u8[e + E_KEY + j] === key.charCodeAt(j)) j++;
      if (j === len) return e;
    }
  }

  /** Adds (window, key) with a count of 0 (absent); returns its byte offset. */
  #insert(window: number, key: string): number {
    const i32 = this.#i32;
    if ((i32[R_USED]! + 1) * 4 > i32[R_CAP]! * 3) this.#rebuild();
    const e = -this.#find(window, key);
    for (let j = 0; j < key.length; j++) this.#u8[e + E_KEY + j] = key.charCodeAt(j);
    this.#f64[(e >> 3) + E_WINDOW_F64] = window;
    i32[(e >> 2) + E_COUNT] = 0;
    i32[(e >> 2) + E_LEN] = key.length;
    i32[R_USED] = i32[R_USED]! + 1;
    return e;
  }

  /** Re-inserts the live entries (the newest window and the one before) into a table at most half full. */
  #rebuild(): void {
    const i32 = this.#i32;
    const f64 = this.#f64;
    const oldest = f64[R_NEWEST_F64]! - 1;
    const live: Array<[window: number, key: string, count: number]> = [];
    for (let slot = 0; slot < i32[R_CAP]!; slot++) {
      const e = HEADER_BYTES + slot * ENTRY_BYTES;
      const len = i32[(e >> 2) + E_LEN]!;
      const window = f64[(e >> 3) + E_WINDOW_F64]!;
      if (len === 0 || window < oldest) continue;
      const key = String.fromCharCode(...this.#u8.subarray(e + E_KEY, e + E_KEY + len));
      live.push([window, key, i32[(e >> 2) + E_COUNT]!]);
    }
    let cap = RATE_MIN_CAP;
    while (cap < (live.length + 1) * 2) cap *= 2;
    if (rateTableBytes(cap) > this.#sab.maxByteLength)
      throw new StoreError(
        'STORE_ERR_UNAVAILABLE',
        `shared-memory store: rate counters full (maxRateCountBytes ${this.#sab.maxByteLength})`,
      );
    this.#clear(cap);
    for (const [window, key, count] of live)
      i32[(this.#insert(window, key) >> 2) + E_COUNT] = count;
  }

  /** An empty table of `cap` entries (the newest window is kept). */
  #clear(cap: number): void {
    growTo(this.#sab, rateTableBytes(cap), GROW_STEP, 'rate counters');
    this.#u8.fill(0, HEADER_BYTES, rateTableBytes(Math.max(cap, this.#i32[R_CAP]!)));
    this.#i32[R_USED] = 0;
    this.#i32[R_CAP] = cap;
  }
}

/** FNV-1a of the key's bytes and the window's two halves. */
function slotOf(window: number, key: string): number {
  let h = 0x811c9dc5;
  for (let j = 0; j < key.length; j++) h = Math.imul(h ^ key.charCodeAt(j), 0x01000193);
  h = Math.imul(h ^ (window >>> 0), 0x01000193);
  h = Math.imul(h ^ Math.floor(window / 4294967296), 0x01000193);
  h ^= h >>> 16;
  return Math.imul(h, 0x85ebca6b) >>> 0;
}
