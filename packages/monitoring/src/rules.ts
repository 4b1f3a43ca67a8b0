// Prometheus recording and alerting rules for Shoal. Rendered to
// deploy/monitoring/rules/shoal.rules.yml; `promtool check rules` runs on the
// result in promtool.test.ts, and the Prometheus proof evaluates every
// recording expression against real scrapes.

/** Scrape job names the rules select on; Prometheus configs and ServiceMonitors must use them. */
export const JOBS = {
  gateway: 'shoal-gateway',
  storageApi: 'shoal-storage-api',
  gcWorker: 'shoal-gc-worker',
} as const;

export interface RecordingRule {
  record: string;
  expr: string;
}

export type Severity = 'warning' | 'critical';

export interface AlertRule {
  alert: string;
  expr: string;
  /** Prometheus duration the condition must hold before firing. */
  for: string;
  severity: Severity;
  summary: string;
  description: string;
}

export interface RuleGroup {
  name: string;
  interval?: string;
  rules: ReadonlyArray<RecordingRule | AlertRule>;
}

// Windows for recorded rates: 5m smooths a 1m scrape into a usable quantile.
const W = '5m';

/**
 * Labels that tell one deployment from another when several share one
 * Prometheus (docs/kubernetes.md "Monitoring"): every aggregation keeps them,
 * so one release's failures are not diluted by another's traffic and two
 * releases' gc leaders are not summed into a split brain.
 */
export const DEPLOYMENT_LABELS = ['namespace', 'job'] as const;
const by = (...labels: string[]): string => `by (${[...DEPLOYMENT_LABELS, ...labels].join(', ')})`;
const on = `on (${DEPLOYMENT_LABELS.join(', ')})`;

export const RECORDING_RULES: readonly RecordingRule[] = [
  {
    record: 'shoal:requests:rate5m',
    expr: `sum ${by('protocol', 'action', 'outcome')} (rate(shoal_requests_total[${W}]))`,
  },
  {
    // Failed (our fault) over all requests; rejected requests are clients' mistakes and are kept apart.
    record: 'shoal:request_failed_ratio:rate5m',
    // `or ... * 0`: a protocol with no failure yet has no failed series (prom-client creates a
    // labelled series on its first inc()), and its ratio must read 0, not vanish.
    expr: `(sum ${by('protocol')} (shoal:requests:rate5m{outcome="failed"}) or sum ${by('protocol')} (shoal:requests:rate5m) * 0) / sum ${by('protocol')} (shoal:requests:rate5m)`,
  },
  {
    record: 'shoal:request_rejected_ratio:rate5m',
    expr: `(sum ${by('protocol')} (shoal:requests:rate5m{outcome="rejected"}) or sum ${by('protocol')} (shoal:requests:rate5m) * 0) / sum ${by('protocol')} (shoal:requests:rate5m)`,
  },
  {
    record: 'shoal:request_duration_seconds_bucket:rate5m',
    expr: `sum ${by('protocol', 'action', 'le')} (rate(shoal_request_duration_seconds_bucket[${W}]))`,
  },
  {
    record: 'shoal:request_duration_seconds:p50_5m',
    expr: 'histogram_quantile(0.5, shoal:request_duration_seconds_bucket:rate5m)',
  },
  {
    record: 'shoal:request_duration_seconds:p99_5m',
    expr: 'histogram_quantile(0.99, shoal:request_duration_seconds_bucket:rate5m)',
  },
  {
    record: 'shoal:storage_operation_duration_seconds_bucket:rate5m',
    expr: `sum ${by('driver', 'operation', 'le')} (rate(shoal_storage_operation_duration_seconds_bucket[${W}]))`,
  },
  {
    record: 'shoal:storage_operation_duration_seconds:p99_5m',
    expr: 'histogram_quantile(0.99, shoal:storage_operation_duration_seconds_bucket:rate5m)',
  },
  {
    record: 'shoal:storage_operation_errors:rate5m',
    expr: `sum ${by('driver', 'operation', 'code')} (rate(shoal_storage_operation_errors_total[${W}]))`,
  },
  {
    record: 'shoal:storage_client_requests:rate5m',
    expr: `sum ${by('outcome')} (rate(shoal_storage_client_requests_total[${W}]))`,
  },
  {
    // Every instance reports the leader gauge; the sum is how many of one deployment believe they lead.
    record: 'shoal:gc_leaders:sum',
    expr: `sum ${by()} (shoal_gc_leader{job="${JOBS.gcWorker}"})`,
  },
  {
    record: 'shoal:gc_last_success_age_seconds',
    expr: `time() - max ${by()} (shoal_gc_last_success_timestamp_seconds{job="${JOBS.gcWorker}"})`,
  },
];

export const ALERT_RULES: readonly AlertRule[] = [
  {
    alert: 'ShoalRequestsFailing',
    expr: 'shoal:request_failed_ratio:rate5m > 0.05',
    for: '5m',
    severity: 'critical',
    summary: 'More than 5% of {{ $labels.protocol }} tracker requests fail',
    description:
      '{{ $value | humanizePercentage }} of {{ $labels.protocol }} requests ended with outcome="failed" (storage or internal errors) over 5 minutes. See the Shoal overview dashboard, "Errors by code".',
  },
  {
    alert: 'ShoalRequestsFailingWarning',
    expr: 'shoal:request_failed_ratio:rate5m > 0.01',
    for: '15m',
    severity: 'warning',
    summary: 'More than 1% of {{ $labels.protocol }} tracker requests fail',
    description:
      '{{ $value | humanizePercentage }} of {{ $labels.protocol }} requests ended with outcome="failed" for 15 minutes.',
  },
  {
    alert: 'ShoalAnnounceLatencyHigh',
    expr: 'shoal:request_duration_seconds:p99_5m{action="announce"} > 0.25',
    for: '10m',
    severity: 'warning',
    summary: '{{ $labels.protocol }} announce p99 latency above 250 ms',
    description:
      'The 99th percentile of {{ $labels.protocol }} announce latency has been {{ $value | humanizeDuration }} for 10 minutes. Check storage latency on the Shoal storage dashboard and event-loop lag on the gateway dashboard.',
  },
  {
    alert: 'ShoalStorageUnavailable',
    expr: `sum ${by('instance')} (rate(shoal_request_errors_total{code="STORE_ERR_UNAVAILABLE"}[2m])) > 0`,
    for: '2m',
    severity: 'critical',
    summary: 'Gateway {{ $labels.instance }} answers "storage unavailable"',
    description:
      'Gateway {{ $labels.instance }} refused {{ $value | humanize }} requests/s with STORE_ERR_UNAVAILABLE for 2 minutes: the storage backend or storage-api is unreachable.',
  },
  {
    alert: 'ShoalStorageCircuitOpen',
    expr: `max ${by('instance')} (shoal_storage_client_circuit_state{job="${JOBS.gateway}"}) == 2`,
    for: '1m',
    severity: 'critical',
    summary: 'Gateway {{ $labels.instance }} stopped calling storage-api (circuit open)',
    description:
      'The remote storage client of {{ $labels.instance }} has kept its circuit breaker open for a minute: storage-api fails or times out.',
  },
  {
    alert: 'ShoalGatewayOverloaded',
    // docs/load.md: a load figure at or over 1 for this long has raised the interval to its ceiling.
    expr: `avg_over_time(shoal_gateway_load{job="${JOBS.gateway}"}[15m]) >= 1`,
    for: '15m',
    severity: 'warning',
    summary: 'Gateway {{ $labels.instance }} has been overloaded for 30 minutes',
    description:
      'The load figure of {{ $labels.instance }} averaged {{ $value | humanize }} (1 = at target) for 30 minutes, so its announce interval has been raised toward ANNOUNCE_INTERVAL_MAX_SECONDS. Add capacity where shoal_gateway_load_signal leads (docs/load.md).',
  },
  {
    alert: 'ShoalAnnouncesShed',
    expr: `sum ${by('instance')} (rate(shoal_gateway_shed_announces_total{job="${JOBS.gateway}"}[5m])) > 0`,
    for: '10m',
    severity: 'warning',
    summary: 'Gateway {{ $labels.instance }} sheds announces',
    description:
      'Gateway {{ $labels.instance }} has answered {{ $value | humanize }} announces/s without the store for 10 minutes: too many wait on its store (docs/load.md "Shedding"). Those peers are not refreshed.',
  },
  {
    alert: 'ShoalSharedRateLimitNotSyncing',
    expr: `sum ${by('instance')} (rate(shoal_rate_limit_syncs_total{job="${JOBS.gateway}",outcome="failed"}[5m])) > 0 and sum ${by('instance')} (rate(shoal_rate_limit_syncs_total{job="${JOBS.gateway}",outcome="ok"}[5m])) == 0`,
    for: '10m',
    severity: 'warning',
    summary: 'Gateway {{ $labels.instance }} cannot sync the shared rate limit',
    description:
      'Every shared rate limit sync of {{ $labels.instance }} has failed for 10 minutes: it limits each address with its own counts only, so the cluster allows up to replicas x the limit (docs/policy.md "Shared rate limits"). Announces are still served.',
  },
  {
    alert: 'ShoalWsRelayDropping',
    // docs/webtorrent.md "Metrics": browsers that miss offers connect to fewer peers.
    expr: `sum ${by('instance')} (rate(shoal_ws_relay_dropped_total{job="${JOBS.gateway}",reason=~"backpressure|gone"}[5m])) / (sum ${by('instance')} (rate(shoal_ws_relayed_total{job="${JOBS.gateway}"}[5m])) + sum ${by('instance')} (rate(shoal_ws_relay_dropped_total{job="${JOBS.gateway}",reason=~"backpressure|gone"}[5m]))) > 0.1`,
    for: '15m',
    severity: 'warning',
    summary: 'Gateway {{ $labels.instance }} drops WebSocket offers and answers',
    description:
      'Gateway {{ $labels.instance }} dropped {{ $value | humanizePercentage }} of the offers and answers it had to deliver for 15 minutes, to full socket buffers or to replicas that are gone (docs/webtorrent.md "Metrics").',
  },
  {
    alert: 'ShoalStorageBackendErrors',
    expr: `sum ${by('instance', 'driver')} (rate(shoal_storage_operation_errors_total{code="STORE_ERR_UNAVAILABLE"}[2m])) > 0`,
    for: '2m',
    severity: 'critical',
    summary: 'storage-api {{ $labels.instance }} cannot reach its {{ $labels.driver }} backend',
    description:
      'storage-api {{ $labels.instance }} has failed {{ $value | humanize }} {{ $labels.driver }} operations/s with STORE_ERR_UNAVAILABLE for 2 minutes.',
  },
  {
    alert: 'ShoalStorageApiDown',
    expr: `up{job="${JOBS.storageApi}"} == 0`,
    for: '2m',
    severity: 'critical',
    summary: 'storage-api {{ $labels.instance }} is down',
    description: 'Prometheus has not scraped storage-api {{ $labels.instance }} for 2 minutes.',
  },
  {
    alert: 'ShoalGcNoLeader',
    // A deployment whose gc-workers are all down has no leader series, only up == 0: that
    // case reads 0. With no gc-worker series anywhere (not even up), absent() catches it.
    expr: `(shoal:gc_leaders:sum or ${on} sum ${by()} (up{job="${JOBS.gcWorker}"}) * 0 or on (job) absent(shoal_gc_leader{job="${JOBS.gcWorker}"}) * 0) < 1`,
    for: '5m',
    severity: 'critical',
    summary: 'No gc-worker holds the GC lease',
    description:
      'For 5 minutes no gc-worker instance reported shoal_gc_leader=1: expired peers are not deleted and swarm memory grows.',
  },
  {
    alert: 'ShoalGcSplitBrain',
    expr: 'shoal:gc_leaders:sum > 1',
    for: '2m',
    severity: 'warning',
    summary: '{{ $value }} gc-worker instances believe they lead',
    description:
      'More than one gc-worker reported shoal_gc_leader=1 for 2 minutes: the lease is not exclusive (clock skew, or a lease backend that lost writes).',
  },
  {
    alert: 'ShoalGcNotSucceeding',
    // Computed here rather than from shoal:gc_last_success_age_seconds: a
    // recording rule of another group may be one evaluation behind, which
    // moved the alert by a minute from run to run (a flaky promtool test).
    expr: `time() - max ${by()} (shoal_gc_last_success_timestamp_seconds{job="${JOBS.gcWorker}"}) > 900`,
    for: '5m',
    severity: 'warning',
    summary: 'No successful garbage collection for {{ $value | humanizeDuration }}',
    description:
      'The newest shoal_gc_last_success_timestamp_seconds is older than 15 minutes (15 GC_INTERVAL_SECONDS at the default). Check shoal_gc_runs_total{outcome="error"} and the gc-worker logs.',
  },
  {
    alert: 'ShoalGatewayReplicaDown',
    expr: `up{job="${JOBS.gateway}"} == 0`,
    for: '2m',
    severity: 'warning',
    summary: 'Gateway replica {{ $labels.instance }} is down',
    description: 'Prometheus has not scraped gateway {{ $labels.instance }} for 2 minutes.',
  },
  {
    alert: 'ShoalGatewayAllDown',
    expr: `sum ${by()} (up{job="${JOBS.gateway}"}) == 0 or absent(up{job="${JOBS.gateway}"})`,
    for: '1m',
    severity: 'critical',
    summary: 'No gateway replica is up',
    description: 'No announce-gateway target answers scrapes: the tracker is offline.',
  },
  {
    alert: 'ShoalGcWorkerDown',
    expr: `up{job="${JOBS.gcWorker}"} == 0`,
    for: '5m',
    severity: 'warning',
    summary: 'gc-worker {{ $labels.instance }} is down',
    description: 'Prometheus has not scraped gc-worker {{ $labels.instance }} for 5 minutes.',
  },
];

export const RULE_GROUPS: readonly RuleGroup[] = [
  // No group interval: the global evaluation_interval applies, so a test Prometheus can evaluate every second.
  { name: 'shoal.recording', rules: RECORDING_RULES },
  { name: 'shoal.alerts', rules: ALERT_RULES },
];

export function isAlert(rule: RecordingRule | AlertRule): rule is AlertRule {
  return 'alert' in rule;
}

/** The rules file as Prometheus reads it (plain objects, ready for YAML). */
export function rulesDocument(groups: readonly RuleGroup[] = RULE_GROUPS): unknown {
  return {
    groups: groups.map((g) => ({
      name: g.name,
      ...(g.interval === undefined ? {} : { interval: g.interval }),
      rules: g.rules.map((r) =>
        isAlert(r)
          ? {
              alert: r.alert,
              expr: r.expr,
              for: r.for,
              labels: { severity: r.severity },
              annotations: { summary: r.summary, description: r.description },
            }
          : { record: r.record, expr: r.expr },
      ),
    })),
  };
}
