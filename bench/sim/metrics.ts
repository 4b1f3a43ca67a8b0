// What one simulated run records, in fixed time bins, and the figures
// RELIABILITY.md "Simulation" reports from them.

export type Outcome = 'ok' | 'shed' | 'failed';

export interface Bin {
  readonly start: number;
  offered: number;
  ok: number;
  shed: number;
  failed: number;
  maxDepth: number;
  readonly latencies: number[];
  /** Share of the live peers the store holds, at the bin's end. */
  present: number;
  /** Live peers at the bin's end. */
  alive: number;
  /** The interval normal answers promised at the bin's end. */
  interval: number;
}

export class Recorder {
  readonly binSeconds: number;
  readonly bins: Bin[] = [];

  constructor(binSeconds: number, durationSeconds: number) {
    this.binSeconds = binSeconds;
    for (let start = 0; start < durationSeconds; start += binSeconds) {
      this.bins.push({
        start,
        offered: 0,
        ok: 0,
        shed: 0,
        failed: 0,
        maxDepth: 0,
        latencies: [],
        present: 0,
        alive: 0,
        interval: 0,
      });
    }
  }

  #bin(t: number): Bin | undefined {
    return this.bins[Math.floor(t / this.binSeconds)];
  }

  arrival(t: number): void {
    const b = this.#bin(t);
    if (b) b.offered++;
  }

  answer(t: number, outcome: Outcome, latencySeconds: number): void {
    const b = this.#bin(t);
    if (!b) return;
    b[outcome]++;
    b.latencies.push(latencySeconds);
  }

  depth(t: number, depth: number): void {
    const b = this.#bin(t);
    if (b && depth > b.maxDepth) b.maxDepth = depth;
  }

  /** Called once at the end of each bin. */
  sample(t: number, present: number, alive: number, interval: number): void {
    const b = this.#bin(t - this.binSeconds / 2);
    if (!b) return;
    b.present = present;
    b.alive = alive;
    b.interval = interval;
  }
}

/** The q-quantile (0..1) of `values`, nearest rank; 0 for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

export interface RecoveryCriteria {
  /** A bin is healthy when at most this share of its answers failed or were shed... */
  readonly maxDegradedShare: number;
  /** ...its p99 latency is at most this... */
  readonly maxP99Seconds: number;
  /** ...and the store holds at least this share of the pre-fault presence. */
  readonly minPresentOfBaseline: number;
}

export interface Summary {
  readonly offeredPeakPerSecond: number;
  readonly servedShare: number;
  readonly shed: number;
  readonly failed: number;
  readonly maxQueueDepth: number;
  readonly p99LatencySeconds: number;
  readonly minPresent: number;
  /** Live peers missing from the store beyond the pre-fault share, summed over time after the fault. */
  readonly missingPeerHours: number;
  readonly maxInterval: number;
  /** Seconds from the fault's end until answers stay healthy; undefined if they never do. */
  readonly answersRecoverSeconds: number | undefined;
  /** Seconds from the fault's end until the store holds the swarms again; undefined if never. */
  readonly swarmsRecoverSeconds: number | undefined;
}

/** Seconds from `from` to the end of the last bin failing `healthy`, 0 if none; undefined if the last bin fails. */
function recoveredAfter(
  bins: readonly Bin[],
  binSeconds: number,
  from: number,
  healthy: (b: Bin) => boolean,
): number | undefined {
  let lastBad: Bin | undefined;
  for (const b of bins) if (b.start + 1e-9 >= from && !healthy(b)) lastBad = b;
  if (lastBad === undefined) return 0;
  if (lastBad === bins[bins.length - 1]) return undefined;
  return lastBad.start + binSeconds - from;
}

export function summarize(
  recorder: Recorder,
  faultStart: number,
  faultEnd: number,
  criteria: RecoveryCriteria,
): Summary {
  const bins = recorder.bins;
  const before = bins.filter((b) => b.start + recorder.binSeconds <= faultStart);
  const baseline = before.reduce((s, b) => s + b.present, 0) / Math.max(1, before.length);
  const after = bins.filter((b) => b.start + recorder.binSeconds > faultStart);
  let offered = 0;
  let ok = 0;
  let shed = 0;
  let failed = 0;
  let peak = 0;
  let maxDepth = 0;
  let minPresent = 1;
  let maxInterval = 0;
  let missingPeerSeconds = 0;
  const latencies: number[] = [];
  for (const b of after) {
    offered += b.offered;
    ok += b.ok;
    shed += b.shed;
    failed += b.failed;
    peak = Math.max(peak, b.offered / recorder.binSeconds);
    maxDepth = Math.max(maxDepth, b.maxDepth);
    minPresent = Math.min(minPresent, b.present);
    maxInterval = Math.max(maxInterval, b.interval);
    missingPeerSeconds += Math.max(0, baseline - b.present) * b.alive * recorder.binSeconds;
    for (const l of b.latencies) latencies.push(l);
  }
  const answersHealthy = (b: Bin): boolean => {
    const answers = b.ok + b.shed + b.failed;
    return (
      (answers === 0 || (b.shed + b.failed) / answers <= criteria.maxDegradedShare) &&
      quantile(b.latencies, 0.99) <= criteria.maxP99Seconds
    );
  };
  return {
    offeredPeakPerSecond: peak,
    servedShare: offered === 0 ? 1 : ok / offered,
    shed,
    failed,
    maxQueueDepth: maxDepth,
    p99LatencySeconds: quantile(latencies, 0.99),
    minPresent,
    missingPeerHours: missingPeerSeconds / 3600,
    maxInterval,
    answersRecoverSeconds: recoveredAfter(bins, recorder.binSeconds, faultEnd, answersHealthy),
    swarmsRecoverSeconds: recoveredAfter(
      bins,
      recorder.binSeconds,
      faultEnd,
      (b) => b.present >= criteria.minPresentOfBaseline * baseline,
    ),
  };
}
