// Lease locks: one holder of a named lease at a time, for the
// gc-worker's leader election outside Kubernetes. storage-api serves them at
// /v1/leases/:name so workers hold no database credentials (docs/decisions.md "Tracker semantics").

/** What acquire() answers: who holds `name` now, and until when (ms since the epoch). */
export interface LeaseState {
  /** true when the caller's `holder` holds the lease after this call. */
  held: boolean;
  /** The current holder, or null when nobody does. */
  holder: string | null;
  /**
   * When the current holder's lease ends, in ms since the epoch, or null.
   * Redis: the caller's clock when the command was sent plus the remaining
   * TTL (never later than the server's expiry). PostgreSQL: the database's clock.
   */
  expiresAt: number | null;
}

export interface LeaseLock {
  /** Acquire, or renew when `holder` already holds it: true while `holder` holds `name` until now + ttlMs. */
  acquire(name: string, holder: string, ttlMs: number): Promise<LeaseState>;
  /** Gives the lease up at once; true only when `holder` held it. */
  release(name: string, holder: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Shared argument checks: names and holders are short printable strings, TTLs positive integers. */
export function checkLeaseArgs(name: string, holder: string, ttlMs?: number): string | undefined {
  if (name.length === 0 || name.length > 128 || !/^[\w.:-]+$/.test(name))
    return 'lease name must be 1-128 of [A-Za-z0-9_.:-]';
  if (holder.length === 0 || holder.length > 256) return 'holder must be 1-256 characters';
  if (ttlMs !== undefined && (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > 86_400_000))
    return 'ttlMs must be an integer in 1..86400000';
  return undefined;
}
