// storage-api metrics on an injected prom-client Registry (contract §4).
// Labels are bounded: driver, operation, endpoint, outcome and catalog codes;
// never an infohash, a KV context or an address. Observations happen once per
// operation kind per batch, not per op, so prom-client's labelled histograms
// are cheap enough here (the gateway needed FastHistogram for per-packet work).
import { Counter, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import { createSwarmGauges } from '@shoal/service/swarm-metrics';
import { storeErrors, type StoreStats } from '@shoal/storage';

export type Operation =
  | 'announce'
  | 'scrape'
  | 'kv_get'
  | 'kv_put'
  | 'kv_delete'
  | 'kv_list'
  | 'gc'
  | 'stats'
  | 'full_scrape'
  | 'lease'
  | 'downloads'
  | 'rate_counts'
  | 'ws_announce'
  | 'ws_scrape'
  | 'ws_holder'
  | 'ws_leave';
export type Endpoint =
  | 'batch'
  | 'kv'
  | 'downloads'
  | 'stats'
  | 'full_scrape'
  | 'gc'
  | 'leases'
  | 'policy'
  | 'rate_limits'
  | 'ws_relay'
  | 'admin'
  | 'other';
/** ok: 2xx; rejected: the caller's fault (4xx); failed: ours or a backend's (5xx). */
export type RpcOutcome = 'ok' | 'rejected' | 'failed';

export interface ApiMetrics {
  /** Seconds since `startMs` (performance.now()) for one operation, or `count` of them done together. */
  observe(driver: string, operation: Operation, startMs: number): void;
  error(driver: string, operation: Operation, code: string): void;
  batchOps(n: number): void;
  request(endpoint: Endpoint, status: number): void;
  swarm(stats: StoreStats): void;
}

const OPERATION_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384];

const ENDPOINTS: readonly Endpoint[] = [
  'batch',
  'kv',
  'downloads',
  'stats',
  'full_scrape',
  'gc',
  'leases',
  'policy',
  'rate_limits',
  'ws_relay',
  'admin',
  'other',
];
const OUTCOMES: readonly RpcOutcome[] = ['ok', 'rejected', 'failed'];
const PEER_OPERATIONS: readonly Operation[] = [
  'announce',
  'scrape',
  'gc',
  'stats',
  'full_scrape',
  'downloads',
  'rate_counts',
];
/** The WebSocket swarms' ops (docs/webtorrent.md "The split topology"), on their own driver. */
const WS_OPERATIONS: readonly Operation[] = ['ws_announce', 'ws_scrape', 'ws_holder', 'ws_leave'];
const DATA_OPERATIONS: readonly Operation[] = [
  'kv_get',
  'kv_put',
  'kv_delete',
  'kv_list',
  'lease',
  'downloads',
];

/**
 * `drivers` names the backends in use so every series they can produce exists
 * from the start at 0 (docs/observability.md: a panel on a healthy service reads
 * 0, not "no data").
 */
export function createApiMetrics(
  registry: Registry,
  drivers: { peers: string; data: string; ws?: string },
): ApiMetrics {
  if (registry.getSingleMetric('process_cpu_user_seconds_total') === undefined) {
    collectDefaultMetrics({ register: registry });
  }
  const duration = new Histogram({
    name: 'shoal_storage_operation_duration_seconds',
    help: 'Time a storage operation took, by driver and operation (a batch times each op).',
    labelNames: ['driver', 'operation'] as const,
    buckets: OPERATION_BUCKETS,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'shoal_storage_operation_errors_total',
    help: 'Storage operations that failed, by driver, operation and error code.',
    labelNames: ['driver', 'operation', 'code'] as const,
    registers: [registry],
  });
  const batchOps = new Histogram({
    name: 'shoal_storage_batch_ops',
    help: 'Ops carried by one POST /v1/batch.',
    buckets: BATCH_BUCKETS,
    registers: [registry],
  });
  const requests = new Counter({
    name: 'shoal_storage_rpc_requests_total',
    help: 'Requests to the storage-api API, by endpoint and outcome.',
    labelNames: ['endpoint', 'outcome'] as const,
    registers: [registry],
  });
  const swarm = createSwarmGauges(registry);
  const timers = new Map<string, { observe(seconds: number): void }>();
  for (const endpoint of ENDPOINTS)
    for (const outcome of OUTCOMES) requests.labels(endpoint, outcome).inc(0);
  const pairs: Array<[string, Operation]> = [
    ...PEER_OPERATIONS.map((op): [string, Operation] => [drivers.peers, op]),
    ...DATA_OPERATIONS.map((op): [string, Operation] => [drivers.data, op]),
    ...(drivers.ws === undefined
      ? []
      : WS_OPERATIONS.map((op): [string, Operation] => [drivers.ws!, op])),
  ];
  for (const [driver, operation] of pairs) {
    duration.zero({ driver, operation });
    for (const code of Object.keys(storeErrors)) errors.labels(driver, operation, code).inc(0);
  }
  return {
    observe(driver, operation, startMs) {
      // Once per op of a batch: a bound child skips prom-client's label-key building.
      const key = `${driver}\0${operation}`;
      let child = timers.get(key);
      if (child === undefined) {
        child = duration.labels(driver, operation);
        timers.set(key, child);
      }
      child.observe((performance.now() - startMs) / 1000);
    },
    error(driver, operation, code) {
      errors.labels(driver, operation, code).inc();
    },
    batchOps(n) {
      batchOps.observe(n);
    },
    request(endpoint, status) {
      requests.labels(endpoint, status < 400 ? 'ok' : status < 500 ? 'rejected' : 'failed').inc();
    },
    swarm: (stats) => swarm.set(stats),
  };
}
