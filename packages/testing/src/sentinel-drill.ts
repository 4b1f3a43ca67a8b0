// The Sentinel failover drill (docs/redis.md, "Failover drill"), whether it
// runs against a driver or through a gateway, and what it must show: the
// tracker answers again within a bound, nothing hangs, and every failure
// meanwhile was a coded "retry later" answer. Kept apart from ./failover.ts
// and ./redis.ts, which processes outside vitest import.
import { expect } from 'vitest';
import { measureFailover, type FailoverReport } from './failover.ts';

/** The storage error codes a client may see while a store fails over. */
export const FAILOVER_ERROR_CODES = ['STORE_ERR_UNAVAILABLE', 'STORE_ERR_TIMEOUT'] as const;

/**
 * Four workers announce through `announce` while the set's primary is
 * SIGKILLed (a process, or a container: anything with `killPrimary`); a call
 * slower than 3 s counts as a hang, and recovery is the last failure before
 * 3 s without one. The drill stops at recovery, or gives up
 * `recoveryWindowMs` after the kill (default two minutes: a cap, not a
 * bound; on a loaded machine a Sentinel election can fail and is retried
 * only twice the failover-timeout after it began, see `sentinelRecoveryBoundMs`).
 * The report is logged (`label`) for BENCHMARKS.md and returned.
 */
export async function killPrimaryUnderLoad(
  set: { killPrimary(): Promise<unknown> },
  announce: (i: number) => Promise<unknown>,
  label: string,
  recoveryWindowMs = 120_000,
): Promise<FailoverReport> {
  const report = await measureFailover({
    announce,
    fail: () => set.killPrimary(),
    concurrency: 4,
    warmupMs: 500,
    // Recovered means after every sentinel has switched: the others announce
    // +switch-master up to a hello period (2 s) after the leader, and each
    // announcement makes ioredis reconnect connections that already reached
    // the new primary (docs/redis.md "Failover drill"), a second short blip.
    steadyMs: 3000,
    recoveryWindowMs,
    hangMs: 3000,
  });
  console.log(`sentinel failover drill (${label}):`, JSON.stringify(report));
  return report;
}

/**
 * The longest a failover may take and still count as working, from the
 * sentinels' own timing: the primary is declared down after
 * down-after-milliseconds; an election that fails (votes split or late on a
 * loaded machine) is retried only 2 x failover-timeout after it began. This
 * allows two such retries plus 10 s for promotion, every sentinel's switch
 * and the clients' reconnect. An unloaded run recovers in ~3.5 s
 * (docs/redis.md "Failover drill"); the drill logs the measured time.
 */
export function sentinelRecoveryBoundMs(set: {
  downAfterMs: number;
  failoverTimeoutMs: number;
}): number {
  return set.downAfterMs + 2 * 2 * set.failoverTimeoutMs + 10_000;
}

export function expectRecovered(
  report: FailoverReport,
  bounds: { recoveredWithinMs: number; maxLatencyMs: number },
): void {
  expect(report.recoveredAfterMs).toBeDefined();
  expect(report.recoveredAfterMs!).toBeLessThan(bounds.recoveredWithinMs);
  for (const code of Object.keys(report.errorsByCode))
    expect(FAILOVER_ERROR_CODES as readonly string[]).toContain(code);
  expect(report.maxLatencyMs).toBeLessThan(bounds.maxLatencyMs);
}
