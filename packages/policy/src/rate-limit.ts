// Per-address token buckets for the gateway's first step (docs/policy.md
// "The chain in the gateway"). In-process and synchronous: a shared limiter
// would cost a store round trip per announce.
//
// IPv4 is keyed per address, IPv6 per /64 (one host commonly owns a whole
// /64 and can rotate through it at will). IPv4-mapped IPv6 (::ffff:a.b.c.d,
// RFC 4291 2.5.5.2) counts as the IPv4 address, so a dual-stack socket does
// not give one client two buckets.
//
// Bounding: a plain Map in least-recently-seen order, to the second: an
// address is moved to the end (delete and re-insert) at most once a second,
// so a busy address costs one Map lookup per take, and the first key is
// evicted when over maxAddresses. lru-cache would keep exact order with
// typed-array links, but its get()/set() take option objects and keep
// per-entry bookkeeping (TTL, size, status) this path does not need.
import type { RateLimiter, RateLimiterOptions } from './types.ts';

interface Bucket {
  tokens: number;
  lastMs: number;
  /** When it was last moved to the end of the Map. */
  seenMs: number;
}

const RECENCY_MS = 1000;

export function createRateLimiter(opts: RateLimiterOptions): RateLimiter {
  const { ratePerSecond, burst, maxAddresses } = opts;
  if (!(Number.isFinite(ratePerSecond) && ratePerSecond > 0)) {
    throw new RangeError(`ratePerSecond must be a positive number, got ${ratePerSecond}`);
  }
  if (!(Number.isFinite(burst) && burst >= 1)) {
    throw new RangeError(`burst must be at least 1, got ${burst}`);
  }
  if (!(Number.isInteger(maxAddresses) && maxAddresses >= 1)) {
    throw new RangeError(`maxAddresses must be a positive integer, got ${maxAddresses}`);
  }
  const perMs = ratePerSecond / 1000;
  // IPv4 keys are numbers, IPv6 /64 keys 8-char latin1 strings: the two
  // kinds never collide in one Map.
  const buckets = new Map<number | string, Bucket>();

  return {
    take(family: 4 | 6, address: Buffer, nowMs: number): boolean {
      const key = keyOf(family, address);
      const b = buckets.get(key);
      if (b === undefined) {
        if (buckets.size >= maxAddresses) {
          // The first key is the least recently seen (to the second).
          const oldest = buckets.keys().next();
          if (!oldest.done) buckets.delete(oldest.value);
        }
        buckets.set(key, { tokens: burst - 1, lastMs: nowMs, seenMs: nowMs });
        return true;
      }
      if (nowMs - b.seenMs >= RECENCY_MS) {
        buckets.delete(key);
        buckets.set(key, b);
        b.seenMs = nowMs;
      }
      // Lazy refill; a clock that steps back adds nothing.
      const elapsed = nowMs - b.lastMs;
      if (elapsed > 0) {
        b.tokens = Math.min(burst, b.tokens + elapsed * perMs);
        b.lastMs = nowMs;
      }
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return true;
      }
      return false;
    },
    get size() {
      return buckets.size;
    },
  };
}

/** The Map key of an address: a number for IPv4 (and IPv4-mapped IPv6), 8 latin1 chars of the /64 for IPv6. */
export function keyOf(family: 4 | 6, a: Buffer): number | string {
  if (family === 4) return a.readUInt32BE(0);
  if (
    a.length === 16 &&
    a.readUInt32BE(0) === 0 &&
    a.readUInt32BE(4) === 0 &&
    a.readUInt32BE(8) === 0x0000ffff
  ) {
    return a.readUInt32BE(12);
  }
  return a.toString('latin1', 0, 8);
}
