// The remote client's metrics (contract §4) on the gateway's registry. The
// per-batch histograms are FastHistograms: a batch is cut every tick under
// load, and prom-client's observe() would cost more than the batching saves.
import { Counter, Gauge, type Registry } from 'prom-client';
import { FastHistogram, REQUEST_BUCKETS } from '../metrics.ts';
import type { BatcherMetrics, ClientOutcome } from './batcher.ts';

const BATCH_SIZE_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const OUTCOMES: readonly ClientOutcome[] = [
  'ok',
  'error',
  'rejected_open_circuit',
  'queue_full',
  'timeout',
];

export interface RemoteClientGauges {
  circuitState(): number;
  queueDepth(): number;
}

export function createRemoteClientMetrics(
  registry: Registry,
  gauges: RemoteClientGauges,
): BatcherMetrics {
  const batchSize = new FastHistogram(
    'shoal_storage_client_batch_size',
    'Operations (announces, scrapes) carried by one request to storage-api.',
    BATCH_SIZE_BUCKETS,
  );
  registry.registerMetric(batchSize.asMetric());
  const duration = new FastHistogram(
    'shoal_storage_client_request_duration_seconds',
    'Time from sending a batch to storage-api to its answer (or failure).',
    REQUEST_BUCKETS,
  );
  registry.registerMetric(duration.asMetric());
  const outcomes = new Counter({
    name: 'shoal_storage_client_requests_total',
    help: 'Storage operations (one per announce or scrape) by outcome: ok, error (storage-api or its backend failed), rejected_open_circuit, queue_full, timeout.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'shoal_storage_client_circuit_state',
    help: 'Circuit breaker in front of storage-api: 0 closed, 1 half-open, 2 open.',
    registers: [registry],
    collect() {
      this.set(gauges.circuitState());
    },
  });
  new Gauge({
    name: 'shoal_storage_client_queue_depth',
    help: 'Storage operations waiting for or in a request to storage-api.',
    registers: [registry],
    collect() {
      this.set(gauges.queueDepth());
    },
  });
  const sizeSeries = batchSize.series({});
  const durationSeries = duration.series({});
  const outcomeSeries = Object.fromEntries(OUTCOMES.map((o) => [o, outcomes.labels(o)])) as Record<
    ClientOutcome,
    { inc(n: number): void }
  >;
  // labels() alone creates no series: start each at 0 so rate() and the alerts see the first change.
  for (const series of Object.values(outcomeSeries)) series.inc(0);
  return {
    outcome: (outcome, operations) => {
      if (operations > 0) outcomeSeries[outcome].inc(operations);
    },
    request: (operations, seconds) => {
      sizeSeries.observe(operations);
      durationSeries.observe(seconds);
    },
  };
}
