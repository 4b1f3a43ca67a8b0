// gc-worker metrics (contract-wave2 §4) on the injected registry.
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';

export type RunOutcome = 'ok' | 'error' | 'skipped_not_leader';

export interface GcMetrics {
  runs: Counter<'outcome'>;
  duration: Histogram;
  peersRemoved: Counter;
  swarmsRemoved: Counter;
  lastSuccess: Gauge;
  leader: Gauge;
  leaderTransitions: Counter;
}

export function createGcMetrics(registry: Registry): GcMetrics {
  if (registry.getSingleMetric('process_cpu_user_seconds_total') === undefined) {
    collectDefaultMetrics({ register: registry });
  }
  const registers = [registry];
  const runs = new Counter({
    name: 'shoal_gc_runs_total',
    help: 'GC ticks by outcome: ok, error, or skipped because this worker does not lead',
    labelNames: ['outcome'] as const,
    registers,
  });
  // Every outcome present from the start, so rate() works before the first error.
  for (const outcome of ['ok', 'error', 'skipped_not_leader'] as const) runs.labels(outcome).inc(0);
  return {
    runs,
    duration: new Histogram({
      name: 'shoal_gc_duration_seconds',
      help: 'Duration of GC runs (POST /v1/gc round trip), successful or not',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    peersRemoved: new Counter({
      name: 'shoal_gc_peers_removed_total',
      help: 'Expired peers deleted by GC',
      registers,
    }),
    swarmsRemoved: new Counter({
      name: 'shoal_gc_swarms_removed_total',
      help: 'Empty swarms deleted by GC',
      registers,
    }),
    lastSuccess: new Gauge({
      name: 'shoal_gc_last_success_timestamp_seconds',
      help: 'Unix time of the last successful GC run by this worker (0: none yet)',
      registers,
    }),
    leader: new Gauge({
      name: 'shoal_gc_leader',
      help: '1 while this worker is the elected leader, else 0',
      registers,
    }),
    leaderTransitions: new Counter({
      name: 'shoal_gc_leader_transitions_total',
      help: 'Times this worker started or stopped leading',
      registers,
    }),
  };
}
