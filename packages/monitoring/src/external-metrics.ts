// Metrics the stores' own exporters publish, not Shoal: the stores dashboard
// reads them, and generated.test.ts accepts each name only in a query on its
// own job. The jobs are the stores ServiceMonitor's (docs/kubernetes.md,
// "The stores have their own exporters").

export const STORE_JOBS = {
  redis: 'shoal-redis',
  cockroachdb: 'shoal-cockroachdb',
} as const;

export type StoreJob = (typeof STORE_JOBS)[keyof typeof STORE_JOBS];

export interface ExternalMetric {
  name: string;
  job: StoreJob;
  /** Who publishes it, to look the name up again after an upgrade. */
  source: string;
}

const REDIS_EXPORTER = 'redis_exporter (oliver006/redis_exporter, exporter/exporter.go)';
const COCKROACHDB = 'CockroachDB /_status/vars (cockroachlabs.com/docs, "metrics")';

function redis(name: string): ExternalMetric {
  return { name, job: STORE_JOBS.redis, source: REDIS_EXPORTER };
}

function crdb(name: string): ExternalMetric {
  return { name, job: STORE_JOBS.cockroachdb, source: COCKROACHDB };
}

export const EXTERNAL_METRICS: readonly ExternalMetric[] = [
  redis('redis_up'),
  redis('redis_instance_info'),
  redis('redis_connected_clients'),
  redis('redis_commands_processed_total'),
  redis('redis_memory_used_bytes'),
  redis('redis_memory_max_bytes'),
  redis('redis_connected_slaves'),
  redis('redis_master_link_up'),
  crdb('liveness_livenodes'),
  crdb('sql_conns'),
  crdb('sql_select_count'),
  crdb('sql_insert_count'),
  crdb('sql_update_count'),
  crdb('sql_delete_count'),
  crdb('ranges_underreplicated'),
  crdb('ranges_unavailable'),
  crdb('capacity'),
  crdb('capacity_available'),
];
