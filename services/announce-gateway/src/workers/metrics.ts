// One /metrics for a gateway with workers (docs/workers.md "Metrics"): each
// worker's registry as JSON (prom-client getMetricsAsJSON), merged by
// AggregatorRegistry.aggregate with the main thread's registry (process
// metrics, swarm gauges, the workers' own series). Counters and histograms
// add up; each gauge says how it combines in GAUGE_AGGREGATION, so a gauge
// that every worker reports alike is not multiplied by the number of workers.
import { AggregatorRegistry, Counter, Gauge, type Aggregator, type Registry } from 'prom-client';
import type { MetricsJson } from './protocol.ts';

/** How each gauge a worker registers combines across workers; a test keeps it complete. */
export const GAUGE_AGGREGATION: Readonly<Record<string, Aggregator>> = {
  // Every worker holds the same snapshot; the oldest one is the one to alert on.
  shoal_policy_revision_age_seconds: 'max',
  shoal_policy_entries: 'max',
  // Each worker runs its own load loop (docs/load.md): the most loaded one speaks.
  shoal_gateway_announce_interval_seconds: 'max',
  shoal_gateway_load: 'max',
  shoal_gateway_load_signal: 'max',
  // Each worker caches the same full scrape.
  shoal_full_scrape_torrents: 'max',
  shoal_full_scrape_truncated: 'max',
  shoal_full_scrape_bytes: 'max',
  // Each worker reloads the same files: the earliest expiry is the one to renew.
  shoal_tls_certificate_expiry_timestamp_seconds: 'min',
  // Each worker has its own breaker and queue toward storage-api.
  shoal_storage_client_circuit_state: 'max',
  shoal_storage_client_queue_depth: 'sum',
  // Each worker runs its own shared-limit window (docs/workers.md): addresses tracked add up.
  shoal_rate_limit_shared_addresses: 'sum',
  // Each worker holds its own WebSocket connections (docs/webtorrent.md).
  shoal_ws_connections: 'sum',
  // Each worker holds its own relay stream to storage-api (docs/webtorrent.md "The split topology").
  shoal_ws_relay_streams_open: 'sum',
};

export interface WorkerMetrics {
  /** Workers serving now. */
  serving(count: number): void;
  /** A worker was replaced after it exited unasked. */
  restarted(): void;
  /** Each live worker's shoal_requests_total, for the per-worker series at the next collect. */
  perWorker(byWorker: ReadonlyMap<number, MetricsJson>): void;
}

/** The main thread's series about its workers (docs/metrics.md). */
export function createWorkerMetrics(registry: Registry, configured: number): WorkerMetrics {
  new Gauge({
    name: 'shoal_gateway_workers_configured',
    help: 'Worker threads this gateway runs (GATEWAY_WORKERS, or the cores it may use).',
    registers: [registry],
  }).set(configured);
  const serving = new Gauge({
    name: 'shoal_gateway_workers',
    help: 'Worker threads serving now; below shoal_gateway_workers_configured while one is replaced.',
    registers: [registry],
  });
  const restarts = new Counter({
    name: 'shoal_gateway_worker_restarts_total',
    help: 'Workers replaced after they exited unasked (a crash, or POST /v1/admin/workers/<index>/terminate).',
    registers: [registry],
  });
  restarts.inc(0);
  let latest: ReadonlyMap<number, MetricsJson> = new Map();
  new Counter({
    name: 'shoal_gateway_worker_requests_total',
    help: 'Requests answered by each worker (its shoal_requests_total by protocol); restarts from 0 when the worker is replaced. worker: 0 to GATEWAY_WORKERS - 1.',
    labelNames: ['worker', 'protocol'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [index, metrics] of latest) {
        const requests = metrics.find((m) => m.name === 'shoal_requests_total');
        const byProtocol = new Map<string, number>([
          ['http', 0],
          ['udp', 0],
        ]);
        for (const v of requests?.values ?? []) {
          const protocol = String(v.labels.protocol);
          byProtocol.set(protocol, (byProtocol.get(protocol) ?? 0) + v.value);
        }
        for (const [protocol, value] of byProtocol)
          this.inc({ worker: String(index), protocol }, value);
      }
    },
  });
  return {
    serving: (count) => serving.set(count),
    restarted: () => restarts.inc(),
    perWorker: (byWorker) => {
      latest = byWorker;
    },
  };
}

/** Applies GATEWAY_AGGREGATION to a worker's JSON; a gauge missing from the table keeps prom-client's default (sum). */
function withAggregators(metrics: MetricsJson): MetricsJson {
  return metrics.map((m) => {
    const aggregator = String(m.type) === 'gauge' ? GAUGE_AGGREGATION[m.name] : undefined;
    return aggregator === undefined ? m : { ...m, aggregator };
  });
}

/** Counters and histograms only: what a gone worker had counted stays in the totals (they must never go down). */
export function countersOf(metrics: MetricsJson): MetricsJson {
  return metrics.filter((m) => String(m.type) === 'counter' || String(m.type) === 'histogram');
}

/** The Prometheus text of the main thread's registry and the workers' registries merged. */
export async function aggregateMetrics(
  main: MetricsJson,
  workers: readonly MetricsJson[],
): Promise<{ text: string; contentType: string }> {
  const merged = AggregatorRegistry.aggregate([main, ...workers.map(withAggregators)]);
  return { text: await merged.metrics(), contentType: merged.contentType };
}

/** The counters of several gone workers as one JSON, so the retired totals stay one entry. */
export async function mergeCounters(parts: readonly MetricsJson[]): Promise<MetricsJson> {
  return AggregatorRegistry.aggregate(parts.map(countersOf)).getMetricsAsJSON();
}
