// The rate limit every gateway replica shares (docs/policy.md "Shared rate
// limits"; the choice in docs/decisions.md "Shared rate limits"). Each
// gateway decides alone, synchronously, from what it knows: the cluster-wide
// count of an address in the current and the previous window (as of its last
// sync) plus what it admitted itself since. In the background it sends the
// counts it admitted to the store in one batch every sync period and takes
// back the cluster-wide totals, so an announce never waits for the store.
//
// The decision is Cloudflare's approximate sliding window: with `f` the part
// of the current window gone, an address is at
//   previous * (1 - f) + current
// and is refused when one more would pass `limit`. Only admitted requests
// count, so a client that keeps hammering gets `limit` per window, not a lock-out.
//
// Bounding: entries in a Map in least-recently-seen order, to the second, as
// the per-replica buckets (rate-limit.ts); `maxAddresses` at most.
import { banKeyOf } from './bans.ts';
import { keyOf } from './rate-limit.ts';

/** Adds each key's admitted count to window `window` and answers the totals (the store's RateCounters). */
export type RateCountsSync = (
  window: number,
  windowMs: number,
  keys: string[],
  deltas: number[],
) => Promise<{ current: number[]; previous: number[] }>;

export interface SharedRateLimiterOptions {
  /** Requests an address may make in one window, cluster-wide. */
  limit: number;
  windowMs: number;
  /** Addresses tracked; beyond it the least recently seen are forgotten. */
  maxAddresses: number;
  /** Keys sent in one store call at most; more wait for the next sync. */
  maxKeysPerSync: number;
}

export interface SharedSyncResult {
  /** Keys whose counts were sent. */
  keys: number;
}

export interface SharedRateLimiter {
  /** Counts one request of the address and says whether it is within the cluster-wide limit. Synchronous. */
  take(family: 4 | 6, address: Buffer, nowMs: number): boolean;
  /**
   * Sends what was admitted since the last sync and applies the totals. On
   * failure the counts are kept for the next sync (in their window) and it
   * rejects; decisions go on from what is known, which a new window empties
   * of other gateways' counts, so a store that stays down leaves this
   * gateway to its own counts (docs/policy.md "Shared rate limits").
   */
  sync(nowMs: number, send: RateCountsSync): Promise<SharedSyncResult>;
  /** Addresses tracked now. */
  readonly size: number;
}

interface Entry {
  /** The store's key: banKeyOf (`4-<hex>`, `6-<hex of the /64>`). */
  readonly wire: string;
  window: number;
  /** Cluster-wide count of the previous window, as last known. */
  previous: number;
  /** Cluster-wide count of `window` at the last sync, this gateway's synced counts included. */
  total: number;
  /** Admitted here and not sent yet. */
  pending: number;
  /** Sent and not answered yet. */
  inFlight: number;
  /** In the dirty list. */
  dirty: boolean;
  seenMs: number;
}

const RECENCY_MS = 1000;

export function createSharedRateLimiter(opts: SharedRateLimiterOptions): SharedRateLimiter {
  const { limit, windowMs, maxAddresses, maxKeysPerSync } = opts;
  if (!(Number.isInteger(limit) && limit >= 1))
    throw new RangeError(`limit must be a positive integer, got ${limit}`);
  if (!(Number.isInteger(windowMs) && windowMs >= 1))
    throw new RangeError(`windowMs must be a positive integer, got ${windowMs}`);
  if (!(Number.isInteger(maxAddresses) && maxAddresses >= 1))
    throw new RangeError(`maxAddresses must be a positive integer, got ${maxAddresses}`);
  if (!(Number.isInteger(maxKeysPerSync) && maxKeysPerSync >= 1))
    throw new RangeError(`maxKeysPerSync must be a positive integer, got ${maxKeysPerSync}`);
  const entries = new Map<number | string, Entry>();
  /** Entries with pending counts, in the order they became so. */
  let dirty: Entry[] = [];

  function roll(e: Entry, window: number): void {
    // Counts not sent before the window ended stay out of the store (the
    // current window's bound does not depend on them: docs/policy.md).
    e.previous = e.window === window - 1 ? e.total + e.pending + e.inFlight : 0;
    e.total = 0;
    e.pending = 0;
    e.inFlight = 0;
    e.window = window;
  }

  return {
    take(family, address, nowMs) {
      const window = Math.floor(nowMs / windowMs);
      const key = keyOf(family, address);
      let e = entries.get(key);
      if (e === undefined) {
        if (entries.size >= maxAddresses) {
          const oldest = entries.keys().next();
          if (!oldest.done) entries.delete(oldest.value);
        }
        e = {
          wire: banKeyOf(family, address),
          window,
          previous: 0,
          total: 0,
          pending: 0,
          inFlight: 0,
          dirty: false,
          seenMs: nowMs,
        };
        entries.set(key, e);
      } else {
        if (nowMs - e.seenMs >= RECENCY_MS) {
          entries.delete(key);
          entries.set(key, e);
          e.seenMs = nowMs;
        }
        if (e.window < window) roll(e, window);
      }
      const gone = (nowMs - window * windowMs) / windowMs;
      const estimate = e.previous * (1 - gone) + e.total + e.pending + e.inFlight;
      if (estimate + 1 > limit) return false;
      e.pending++;
      if (!e.dirty) {
        e.dirty = true;
        dirty.push(e);
      }
      return true;
    },

    async sync(nowMs, send) {
      const window = Math.floor(nowMs / windowMs);
      const batch: Entry[] = [];
      const sent: number[] = [];
      const keys: string[] = [];
      let i = 0;
      for (; i < dirty.length && batch.length < maxKeysPerSync; i++) {
        const e = dirty[i]!;
        e.dirty = false;
        if (e.window < window) roll(e, window);
        if (e.pending === 0) continue;
        batch.push(e);
        sent.push(e.pending);
        keys.push(e.wire);
        e.inFlight += e.pending;
        e.pending = 0;
      }
      dirty = i === dirty.length ? [] : dirty.slice(i);
      if (batch.length === 0) return { keys: 0 };
      let answer: { current: number[]; previous: number[] };
      try {
        answer = await send(window, windowMs, keys, sent);
        if (answer.current.length !== batch.length || answer.previous.length !== batch.length)
          throw new Error(`the store answered ${answer.current.length} totals for ${batch.length}`);
      } catch (err) {
        for (let j = 0; j < batch.length; j++) {
          const e = batch[j]!;
          if (e.window !== window) continue;
          e.inFlight -= sent[j]!;
          e.pending += sent[j]!;
          if (!e.dirty) {
            e.dirty = true;
            dirty.push(e);
          }
        }
        throw err;
      }
      for (let j = 0; j < batch.length; j++) {
        const e = batch[j]!;
        const current = answer.current[j]!;
        if (e.window === window) {
          e.inFlight -= sent[j]!;
          e.total = current;
          e.previous = Math.max(e.previous, answer.previous[j]!);
        } else if (e.window === window + 1) {
          // The window ended while the batch was out: its totals are the previous ones now.
          e.previous = Math.max(e.previous, current);
        }
      }
      return { keys: batch.length };
    },

    get size() {
      return entries.size;
    },
  };
}
