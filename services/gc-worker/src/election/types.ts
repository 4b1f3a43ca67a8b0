// One interface over the three ways to pick the single active gc-worker
//: a Kubernetes Lease, a lease behind storage-api (Redis or
// PostgreSQL lock), or none (a single worker that always leads).
import type { ElectionMode } from '../config.ts';

export interface LeaderElector {
  readonly mode: ElectionMode;
  /** This worker's identity in the lease. */
  readonly identity: string;
  /** Begins campaigning (and renewing once leading). */
  start(): void;
  /**
   * True only while the last successful renewal is younger than the renew
   * deadline: a leader that cannot renew stops working before the lease can
   * pass to another worker.
   */
  isLeader(): boolean;
  /** Called on every change of isLeader() noticed by the election loop. */
  onChange(listener: (leading: boolean) => void): void;
  /** Stops campaigning and releases the lease if this worker holds it (SIGTERM). */
  stop(): Promise<void>;
}

/** A lease store seen by one candidate. */
export interface LeaseBackend {
  /**
   * Acquires the lease, or renews it when this candidate holds it. true: this
   * candidate holds it now; false: another holder has a live lease. Throws
   * when the store cannot be asked (the leader keeps leading until its renew
   * deadline).
   */
  tryAcquireOrRenew(signal: AbortSignal): Promise<boolean>;
  /** Gives the lease up if this candidate holds it. */
  release(signal: AbortSignal): Promise<void>;
}

export interface ElectionTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}
