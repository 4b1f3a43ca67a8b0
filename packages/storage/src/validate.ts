// Input checks every driver runs before touching its backend, so a bad
// announce is the same coded STORE_ERR_BAD_INPUT on memory, Redis and
// PostgreSQL (the conformance suite holds them to it).
import { StoreError } from './errors.ts';
import { PEER_KEY_HASH_SIZE } from '@shoal/protocol';
import type { PeerAnnounce } from './types.ts';

export const INFO_HASH_LEN = 20;
export const PEER_ID_LEN = 20;

export function badInput(detail: string): StoreError {
  return new StoreError('STORE_ERR_BAD_INPUT', detail);
}

export function validateAnnounce(a: PeerAnnounce): void {
  if (a.infoHash.length !== INFO_HASH_LEN) throw badInput('infoHash must be 20 bytes');
  if (a.peerId.length !== PEER_ID_LEN) throw badInput('peerId must be 20 bytes');
  if (a.family === 4) {
    if (a.address.length !== 4) throw badInput('an IPv4 address must be 4 bytes');
  } else if (a.family === 6) {
    if (a.address.length !== 16) throw badInput('an IPv6 address must be 16 bytes');
  } else {
    throw badInput('family must be 4 or 6');
  }
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 0xffff)
    throw badInput('port out of range');
  if (!Number.isInteger(a.numWant) || a.numWant < 0)
    throw badInput('numWant must be a non-negative integer');
  if (a.keyHash !== undefined && a.keyHash.length !== PEER_KEY_HASH_SIZE)
    throw badInput(`keyHash must be ${PEER_KEY_HASH_SIZE} bytes`);
  const life = a.lifetimeSeconds;
  if (life !== undefined && (!Number.isInteger(life) || life < 1 || life > MAX_LIFETIME_SECONDS))
    throw badInput(`lifetimeSeconds must be an integer in 1..${MAX_LIFETIME_SECONDS}`);
}

/** A promised lifetime longer than a day is a bug, not a promise (docs/load.md). */
export const MAX_LIFETIME_SECONDS = 86_400;

/** The seconds a driver keeps this peer: its promise, or the store's lifetime. */
export function lifetimeOf(a: PeerAnnounce, storeLifetimeSeconds: number): number {
  return a.lifetimeSeconds ?? storeLifetimeSeconds;
}

/** The hashes of a scrape or a download-count lookup: each must be 20 bytes. */
export function validateInfoHashes(infoHashes: readonly Buffer[]): void {
  for (const h of infoHashes)
    if (h.length !== INFO_HASH_LEN) throw badInput('infoHash must be 20 bytes');
}

/** Most swarms a topSwarms() call may ask for: a full scrape's 100,000 plus the one that tells whether more were left out (full-scrape.ts). */
export const TOP_SWARMS_MAX = 100_001;

export function validateTopLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > TOP_SWARMS_MAX)
    throw badInput(`limit must be an integer in 1..${TOP_SWARMS_MAX}`);
}

/**
 * Keeps the `limit` largest swarms seen in a walk without holding them all:
 * candidates pile up to twice the limit, then the smaller half is dropped
 * (amortized O(n log limit) for n swarms).
 */
export class TopSwarms {
  readonly #limit: number;
  #items: Array<{ infoHash: Buffer; seeders: number; leechers: number }> = [];
  /** Peers the smallest kept swarm has after the last trim; smaller swarms cannot enter. */
  #floor = 0;
  constructor(limit: number) {
    this.#limit = limit;
  }
  add(infoHash: Buffer, seeders: number, leechers: number): void {
    const peers = seeders + leechers;
    if (peers === 0 || peers < this.#floor) return;
    this.#items.push({ infoHash, seeders, leechers });
    if (this.#items.length >= this.#limit * 2 + 64) this.#trim();
  }
  result(): Array<{ infoHash: Buffer; seeders: number; leechers: number }> {
    this.#trim();
    return this.#items;
  }
  #trim(): void {
    this.#items.sort((a, b) => b.seeders + b.leechers - (a.seeders + a.leechers));
    if (this.#items.length > this.#limit) this.#items.length = this.#limit;
    const last = this.#items[this.#limit - 1];
    if (last !== undefined) this.#floor = last.seeders + last.leechers;
  }
}

/** Most keys one addRateCounts() call may carry. */
export const RATE_COUNT_KEYS_MAX = 10_000;
/** The longest rate-limit window, an hour. */
export const RATE_WINDOW_MS_MAX = 3_600_000;
const RATE_KEY = /^[A-Za-z0-9:_-]{1,64}$/;

/** An addRateCounts() call (docs/policy.md "Shared rate limits"). */
export function validateRateCounts(
  window: number,
  windowMs: number,
  keys: readonly string[],
  deltas: readonly number[],
): void {
  if (!Number.isSafeInteger(window) || window < 0)
    throw badInput('window must be a non-negative integer');
  if (!Number.isInteger(windowMs) || windowMs < 1 || windowMs > RATE_WINDOW_MS_MAX)
    throw badInput(`windowMs must be an integer in 1..${RATE_WINDOW_MS_MAX}`);
  if (keys.length !== deltas.length) throw badInput('one delta per key');
  if (keys.length > RATE_COUNT_KEYS_MAX)
    throw badInput(`at most ${RATE_COUNT_KEYS_MAX} keys per call`);
  for (const k of keys)
    if (typeof k !== 'string' || !RATE_KEY.test(k))
      throw badInput('a rate-limit key is 1-64 of [A-Za-z0-9:_-]');
  for (const d of deltas)
    if (!Number.isInteger(d) || d < 1 || d > 1_000_000)
      throw badInput('a rate-limit delta is an integer in 1..1000000');
}
