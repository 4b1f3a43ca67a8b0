// A failover drill: steady load, one injected fault, and how long the
// system takes to answer again and what failed meanwhile. Transport-agnostic,
// so the same drill runs against a driver or a gateway.

export interface FailoverOptions {
  /** One request (a driver call, or an HTTP/UDP announce to a gateway). Its rejection is an error. */
  announce: (i: number) => Promise<unknown>;
  /** The fault to inject, e.g. `() => set.killPrimary()`. */
  fail: () => Promise<unknown>;
  /** Requests in flight at once. Default 4. */
  concurrency?: number;
  /** Pause between requests of one worker, ms. Default 2. */
  pauseMs?: number;
  /** Load before the fault, ms. Default 1000. */
  warmupMs?: number;
  /** Recovered = this long of uninterrupted successes after the fault, ms. Default 1000. */
  steadyMs?: number;
  /** Give up this long after the fault, ms (the load always stops by then). */
  recoveryWindowMs: number;
  /** A request slower than this counts as a hang, ms. Default 5000. */
  hangMs?: number;
}

export interface FailoverReport {
  total: number;
  ok: number;
  errors: number;
  /** Errors by `err.code` ('timeout' for hangs, 'unknown' when uncoded). */
  errorsByCode: Record<string, number>;
  /** ms from the fault to the first success of the steady run, or undefined when never recovered. */
  recoveredAfterMs: number | undefined;
  maxLatencyMs: number;
}

/**
 * Runs steady load, injects a fault, and measures how long the system takes
 * to answer again and how many requests failed meanwhile. Transport-agnostic
 * so the same drill runs against a driver or a gateway.
 */
export async function measureFailover(opts: FailoverOptions): Promise<FailoverReport> {
  const concurrency = opts.concurrency ?? 4;
  const pauseMs = opts.pauseMs ?? 2;
  const steadyMs = opts.steadyMs ?? 1000;
  const hangMs = opts.hangMs ?? 5000;
  const report: FailoverReport = {
    total: 0,
    ok: 0,
    errors: 0,
    errorsByCode: {},
    recoveredAfterMs: undefined,
    maxLatencyMs: 0,
  };
  // Set once, when the fault is injected; read by the workers meanwhile.
  const fault: { at: number | undefined } = { at: undefined };
  let lastErrorAt = 0;
  let stopAt = Number.POSITIVE_INFINITY;
  let i = 0;
  const countError = (code: string): void => {
    report.errors++;
    report.errorsByCode[code] = (report.errorsByCode[code] ?? 0) + 1;
    lastErrorAt = performance.now();
  };
  const worker = async (): Promise<void> => {
    while (performance.now() < stopAt) {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          opts.announce(i++),
          new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(Object.assign(new Error('hang'), { code: 'timeout' })),
              hangMs,
            );
          }),
        ]);
        report.ok++;
        const failedAt = fault.at;
        if (
          failedAt !== undefined &&
          report.recoveredAfterMs === undefined &&
          started > lastErrorAt
        ) {
          // The steady run starts at the first success after the last error.
          if (performance.now() - Math.max(lastErrorAt, failedAt) >= steadyMs) {
            report.recoveredAfterMs = Math.max(lastErrorAt, failedAt) - failedAt;
            stopAt = Math.min(stopAt, performance.now());
          }
        }
      } catch (err) {
        const code = (err as { code?: unknown } | null)?.code;
        countError(typeof code === 'string' ? code : 'unknown');
      } finally {
        clearTimeout(timer);
        report.total++;
        report.maxLatencyMs = Math.max(report.maxLatencyMs, performance.now() - started);
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const workers = Array.from({ length: concurrency }, () => worker());
  await new Promise((r) => setTimeout(r, opts.warmupMs ?? 1000));
  // The fault counts from when it has landed, not from when injecting it
  // began: finding and killing a process can take longer than steadyMs on a
  // loaded machine, and successes meanwhile must not read as a recovery.
  await opts.fail();
  fault.at = performance.now();
  stopAt = fault.at + opts.recoveryWindowMs;
  await Promise.all(workers);
  return report;
}
