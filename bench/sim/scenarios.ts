// The scenarios and settings of the reliability simulation, as reported in
// RELIABILITY.md "Simulation". The simulated tracker is one whose store
// completes 4,000 announces/s (PostgreSQL on these machines, BENCHMARKS.md)
// scaled down (1:200 by default) so a run takes seconds: the store's rate,
// the peers and every threshold counted in announces are divided by `scale`,
// while times (intervals, timeouts, client backoffs) keep their real values.
import type { Disturbance, SimOptions } from './simulate.ts';
import type { PolicyName } from './gateway.ts';

export interface Scenario {
  readonly name: string;
  readonly title: string;
  readonly disturbance: Disturbance;
}

const FAULT_AT_SECONDS = 900;
export const DEFAULT_SCALE = 200;

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'a-step',
    title: '(a) traffic steps to 4x (the new peers join over one 30 min interval)',
    disturbance: { kind: 'step', at: FAULT_AT_SECONDS, factor: 4, rampSeconds: 1800 },
  },
  {
    name: 'b-outage',
    title: '(b) store down 10 min, then the herd',
    disturbance: { kind: 'outage', at: FAULT_AT_SECONDS, seconds: 600 },
  },
  {
    name: 'c-failover',
    title: '(c) Redis failover: store down 6 s',
    disturbance: { kind: 'outage', at: FAULT_AT_SECONDS, seconds: 6 },
  },
];

export const POLICY_TITLES: Readonly<Record<PolicyName, string>> = {
  today: 'today (failure, `retry in` only)',
  'failure-interval': 'failure with `interval`',
  adaptive: 'adaptive interval',
  'adaptive-shed': 'adaptive interval + shedding',
};

export function defaultOptions(
  policy: PolicyName,
  disturbance: Disturbance,
  seed: number,
  scale = DEFAULT_SCALE,
): SimOptions {
  return {
    seed,
    durationSeconds: FAULT_AT_SECONDS + 3 * 3600,
    binSeconds: 10,
    population: {
      peers: 2_000_000 / scale,
      mix: { libtorrent: 0.65, transmission: 0.25, aria2: 0.1 },
      udpShare: { libtorrent: 0.5, transmission: 0.5, aria2: 0 },
      seederShare: 0.6,
      meanSessionSeconds: 6 * 3600,
      meanDownloadSeconds: 3600,
    },
    // About 1,600 announces/s (before scaling) offered before the fault: 40% of the store.
    store: { opsPerSecond: 4000 / scale, queueMax: 20_000 / scale, timeoutSeconds: 2 },
    // docs/load.md's defaults; the counts of announces and operations scaled
    // 1:100 like the store (see the header).
    gateway: {
      ANNOUNCE_INTERVAL_SECONDS: 1800,
      MIN_INTERVAL_SECONDS: 900,
      ANNOUNCE_INTERVAL_JITTER_SECONDS: 0,
      ANNOUNCE_INTERVAL_MAX_SECONDS: 7200,
      PEER_LIFETIME_SECONDS: 1860,
      PEER_LIFETIME_MAX_SECONDS: 10_860,
      RETRY_LATER_INTERVAL_SECONDS: 300,
      LOAD_SAMPLE_MS: 1000,
      LOAD_HIGH: 1,
      LOAD_LOW: 0.5,
      LOAD_RAISE_AFTER_MS: 60_000,
      LOAD_RAISE_FACTOR: 1.5,
      LOAD_LOWER_AFTER_MS: 300_000,
      LOAD_LOWER_FACTOR: 1.25,
      LOAD_QUEUE_TARGET: 2000 / scale,
      LOAD_BATCH_TARGET_MS: 50,
      LOAD_QUEUE_TARGET_OPS: 4096 / scale,
      SHED_SEEDER_UPDATES_AT: 2000 / scale,
      SHED_LEECHER_UPDATES_AT: 4000 / scale,
      SHED_EVENTS_AT: 8000 / scale,
      SHED_INTERVAL_MIN_SECONDS: 300,
    },
    clients: { transmissionHonoursFailureInterval: false },
    policy,
    disturbance,
    recovery: { maxDegradedShare: 0.01, maxP99Seconds: 1, minPresentOfBaseline: 0.99 },
  };
}
