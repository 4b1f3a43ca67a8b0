// How each client family schedules its next announce after each kind of
// answer: the reactions read from the clients' code, listed with their
// sources in RELIABILITY.md "Client reactions", where the real-client matrix
// (docs/client-backoff.md) measured otherwise, the measured reaction. The
// simulation only ever asks `nextAnnounceDelay`.
import type { Rng } from './events.ts';

export type Family = 'libtorrent' | 'transmission' | 'aria2';
export const FAMILIES: readonly Family[] = ['libtorrent', 'transmission', 'aria2'];
export type Transport = 'http' | 'udp';

/**
 * What the tracker answered. `ok` is a normal answer with peers; `shed` a
 * normal answer with no peers (the store was not asked); `failure` an HTTP
 * `failure reason` (with or without `interval`) or, over UDP, an error
 * action, which carries no interval.
 */
export type Answer =
  | { readonly kind: 'ok' | 'shed'; readonly interval: number; readonly minInterval: number }
  | { readonly kind: 'failure'; readonly interval?: number; readonly minInterval?: number };

/** What a client remembers between announces. */
export interface ClientMemory {
  /** Consecutive failed announces. */
  fails: number;
  /** aria2 announces every `min interval` of its last good answer (120 s before one). */
  lastMinInterval: number;
}

export function newClientMemory(): ClientMemory {
  return { fails: 0, lastMinInterval: ARIA2_DEFAULT_MIN_INTERVAL };
}

export interface ClientOptions {
  /**
   * Transmission 4.1 and later wait max(the failure's interval, their own
   * backoff); 3.00 (Debian 12) and 4.0 ignore the interval of a failure.
   */
  readonly transmissionHonoursFailureInterval: boolean;
}

// libtorrent: settings_pack min_announce_interval (300 s) floors the
// interval of a normal answer; a body without `interval` means 1800 s. The
// real-client matrix (docs/client-backoff.md) measured Debian's 2.0.8, the
// version the simulated population runs: it takes a failure's `interval`
// with no floor, and its first retry after a UDP error comes after ~29 s
// (55 and 117 s after the next ones, as the backoff below).
const LT_MIN_ANNOUNCE_INTERVAL = 300;
const LT_DEFAULT_INTERVAL = 1800;
const LT_UDP_FIRST_RETRY_MEASURED = 29;
const LT_RETRY_MIN = 5;
const LT_RETRY_MAX = 3600;
const LT_TRACKER_BACKOFF_PERCENT = 250;
// aria2's BtAnnounce::DEFAULT_ANNOUNCE_INTERVAL.
const ARIA2_DEFAULT_MIN_INTERVAL = 120;

/** libtorrent's backoff after `fails` consecutive failures: 5 + 12.5 * fails^2 s, at most an hour. */
export function libtorrentBackoff(fails: number): number {
  return Math.min(
    LT_RETRY_MAX,
    LT_RETRY_MIN + Math.trunc((fails * fails * LT_RETRY_MIN * LT_TRACKER_BACKOFF_PERCENT) / 100),
  );
}

/** Transmission's retry after `fails` consecutive failures: 20 s, then 5, 15, 30, 60, 120 min plus up to a minute. */
export function transmissionRetry(fails: number, rng: Rng): number {
  const minutes = [0, 0, 5, 15, 30, 60, 120][Math.min(fails, 6)] ?? 120;
  if (fails <= 0) return 0;
  if (fails === 1) return 20;
  return minutes * 60 + Math.floor(rng.uniform(0, 60));
}

/** Seconds until this client's next announce after `answer`; updates `memory`. */
export function nextAnnounceDelay(
  family: Family,
  transport: Transport,
  answer: Answer,
  memory: ClientMemory,
  rng: Rng,
  options: ClientOptions,
): number {
  if (answer.kind !== 'failure') {
    memory.fails = 0;
    switch (family) {
      case 'libtorrent':
        return Math.max(answer.interval, LT_MIN_ANNOUNCE_INTERVAL);
      case 'transmission':
        return answer.interval;
      case 'aria2':
        memory.lastMinInterval = Math.min(answer.minInterval, answer.interval);
        return memory.lastMinInterval;
    }
  }
  memory.fails++;
  // A UDP error action has no interval field; over HTTP the failure's own
  // `interval` (or, without one, its `min interval`) is what a client may use.
  const given = transport === 'udp' ? undefined : (answer.interval ?? answer.minInterval);
  switch (family) {
    case 'libtorrent': {
      // The HTTP body is parsed for `interval` before `failure reason` is seen,
      // so a failure without one sends the client away for 1800 s.
      const retry =
        transport === 'udp'
          ? LT_UDP_FIRST_RETRY_MEASURED
          : (answer.interval ?? LT_DEFAULT_INTERVAL);
      return Math.max(retry, libtorrentBackoff(memory.fails));
    }
    case 'transmission': {
      const own = transmissionRetry(memory.fails, rng);
      return options.transmissionHonoursFailureInterval && given !== undefined
        ? Math.max(given, own)
        : own;
    }
    case 'aria2':
      // The failure is thrown before `interval` is read; the client tries
      // again one `min interval` (of its last good answer) later.
      return memory.lastMinInterval;
  }
}
