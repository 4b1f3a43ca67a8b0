// Grafana dashboards as code: the panel list below is the one
// source; generate.ts renders it to deploy/monitoring/dashboards/*.json and
// the Prometheus proof runs every query here against real scrapes.
import { STORES_DASHBOARD } from './stores-dashboard.ts';
import { JOBS } from './rules.ts';

export type Unit = 'reqps' | 'ops' | 's' | 'percentunit' | 'short' | 'bytes' | 'none';

export interface Query {
  expr: string;
  legend: string;
}

export interface Panel {
  title: string;
  description: string;
  kind: 'timeseries' | 'stat';
  unit: Unit;
  queries: readonly Query[];
  /** Value mappings for enumerated gauges (circuit state). */
  mappings?: ReadonlyArray<{ value: number; text: string; color: string }>;
}

export interface Row {
  title: string;
  panels: readonly Panel[];
}

export interface Dashboard {
  /** File name and Grafana uid. */
  uid: string;
  title: string;
  description: string;
  rows: readonly Row[];
}

const RI = '$__rate_interval';
const GW = `job="${JOBS.gateway}"`;
const SA = `job="${JOBS.storageApi}"`;
const GC = `job="${JOBS.gcWorker}"`;

function ts(title: string, unit: Unit, description: string, ...queries: Query[]): Panel {
  return { title, description, kind: 'timeseries', unit, queries };
}

function stat(title: string, unit: Unit, description: string, ...queries: Query[]): Panel {
  return { title, description, kind: 'stat', unit, queries };
}

function q(expr: string, legend: string): Query {
  return { expr, legend };
}

function runtimeRow(job: string): Row {
  return {
    title: 'Runtime',
    panels: [
      ts(
        'Event-loop lag p99',
        's',
        'nodejs_eventloop_lag_p99_seconds per instance: a busy or blocked loop delays every request.',
        q(`max by (instance) (nodejs_eventloop_lag_p99_seconds{${job}})`, '{{instance}}'),
      ),
      ts(
        'CPU',
        'percentunit',
        'CPU seconds per second per instance (1 = one core).',
        q(`sum by (instance) (rate(process_cpu_seconds_total{${job}}[${RI}]))`, '{{instance}}'),
      ),
      ts(
        'Resident memory',
        'bytes',
        'Resident set size per instance.',
        q(`max by (instance) (process_resident_memory_bytes{${job}})`, '{{instance}}'),
      ),
    ],
  };
}

const overview: Dashboard = {
  uid: 'shoal-overview',
  title: 'Shoal / Overview',
  description: 'Request rates, errors, latency and swarm sizes across all Shoal services.',
  rows: [
    {
      title: 'Traffic',
      panels: [
        ts(
          'Requests by protocol, action and outcome',
          'reqps',
          "Tracker requests answered per second. outcome=rejected is the client's fault, failed is ours.",
          q(
            `sum by (protocol, action, outcome) (rate(shoal_requests_total[${RI}]))`,
            '{{protocol}} {{action}} {{outcome}}',
          ),
        ),
        stat(
          'Gateway replicas up',
          'short',
          'Gateway targets Prometheus scrapes successfully.',
          q(`sum(up{${GW}})`, 'up'),
        ),
      ],
    },
    {
      title: 'Errors',
      panels: [
        ts(
          'Failed and rejected ratio',
          'percentunit',
          "Share of requests that failed (ours, alerting above 1%/5%) or were rejected (the client's), over 5 minutes.",
          q('shoal:request_failed_ratio:rate5m', 'failed {{protocol}}'),
          q('shoal:request_rejected_ratio:rate5m', 'rejected {{protocol}}'),
        ),
        ts(
          'Errors by code',
          'reqps',
          'Refused and failed requests per second by catalog error code.',
          q(
            `sum by (protocol, code) (rate(shoal_request_errors_total[${RI}]))`,
            '{{protocol}} {{code}}',
          ),
        ),
      ],
    },
    {
      title: 'Latency',
      panels: [
        ts(
          'Request latency p50 / p99',
          's',
          'From arrival to the answer handed to the socket, over 5 minutes (recorded).',
          q('shoal:request_duration_seconds:p50_5m', 'p50 {{protocol}} {{action}}'),
          q('shoal:request_duration_seconds:p99_5m', 'p99 {{protocol}} {{action}}'),
        ),
      ],
    },
    {
      title: 'Swarms',
      panels: [
        stat(
          'Torrents',
          'short',
          'Swarms with a live peer, as storage-api last counted them (every replica reports the same store: max, not sum).',
          q(`max(shoal_swarm_torrents{${SA}})`, 'torrents'),
        ),
        ts(
          'Peers by kind and family',
          'short',
          'Live seeders and leechers per address family.',
          q(`max by (kind, family) (shoal_swarm_peers{${SA}})`, '{{kind}} {{family}}'),
        ),
      ],
    },
  ],
};

const gateway: Dashboard = {
  uid: 'shoal-gateway',
  title: 'Shoal / Gateway',
  description:
    'announce-gateway replicas: per-instance traffic, UDP health and the remote storage client.',
  rows: [
    {
      title: 'Traffic per instance',
      panels: [
        ts(
          'Requests per instance',
          'reqps',
          'Requests answered per second by each replica and protocol.',
          q(
            `sum by (instance, protocol) (rate(shoal_requests_total{${GW}}[${RI}]))`,
            '{{instance}} {{protocol}}',
          ),
        ),
        ts(
          'Announce p99 per instance',
          's',
          'p99 announce latency per replica.',
          q(
            `histogram_quantile(0.99, sum by (instance, le) (rate(shoal_request_duration_seconds_bucket{${GW},action="announce"}[${RI}])))`,
            '{{instance}}',
          ),
        ),
      ],
    },
    {
      title: 'UDP',
      panels: [
        ts(
          'Dropped packets',
          'ops',
          'UDP packets not answered, by reason (malformed, closing, send_failed).',
          q(
            `sum by (instance, reason) (rate(shoal_udp_dropped_packets_total{${GW}}[${RI}]))`,
            '{{instance}} {{reason}}',
          ),
        ),
        ts(
          'Connection-id rejections',
          'ops',
          'Announces and scrapes refused for an expired or forged connection id. A rise after a deploy means replicas do not share UDP_CONNECTION_ID_SECRET.',
          q(
            `sum by (instance) (rate(shoal_udp_connection_id_rejections_total{${GW}}[${RI}]))`,
            '{{instance}}',
          ),
        ),
      ],
    },
    {
      title: 'Remote storage client',
      panels: [
        ts(
          'Batch size',
          'short',
          'Operations per batch sent to storage-api: mean and p99.',
          q(
            `sum by (instance) (rate(shoal_storage_client_batch_size_sum{${GW}}[${RI}])) / sum by (instance) (rate(shoal_storage_client_batch_size_count{${GW}}[${RI}]))`,
            'mean {{instance}}',
          ),
          q(
            `histogram_quantile(0.99, sum by (instance, le) (rate(shoal_storage_client_batch_size_bucket{${GW}}[${RI}])))`,
            'p99 {{instance}}',
          ),
        ),
        ts(
          'Storage operations by outcome',
          'ops',
          'Announces and scrapes sent to storage-api per second: ok, error, rejected_open_circuit, queue_full, timeout.',
          q(
            `sum by (outcome) (rate(shoal_storage_client_requests_total{${GW}}[${RI}]))`,
            '{{outcome}}',
          ),
        ),
        ts(
          'Batch round trip p99',
          's',
          'p99 round trip of a batch request to storage-api, per instance.',
          q(
            `histogram_quantile(0.99, sum by (instance, le) (rate(shoal_storage_client_request_duration_seconds_bucket{${GW}}[${RI}])))`,
            '{{instance}}',
          ),
        ),
        {
          ...stat(
            'Circuit state',
            'none',
            'Circuit breaker towards storage-api per instance: closed, half-open, open.',
            q(`max by (instance) (shoal_storage_client_circuit_state{${GW}})`, '{{instance}}'),
          ),
          mappings: [
            { value: 0, text: 'closed', color: 'green' },
            { value: 1, text: 'half-open', color: 'orange' },
            { value: 2, text: 'open', color: 'red' },
          ],
        },
        ts(
          'Queue depth',
          'short',
          'Operations waiting for the next batch.',
          q(`max by (instance) (shoal_storage_client_queue_depth{${GW}})`, '{{instance}}'),
        ),
      ],
    },
    runtimeRow(GW),
  ],
};

const storage: Dashboard = {
  uid: 'shoal-storage',
  title: 'Shoal / Storage',
  description: 'storage-api: backend operation latency and errors by driver, batch sizes, swarms.',
  rows: [
    {
      title: 'Operations',
      panels: [
        ts(
          'Operation latency p99',
          's',
          'p99 backend latency by driver and operation over 5 minutes (recorded).',
          q('shoal:storage_operation_duration_seconds:p99_5m', '{{driver}} {{operation}}'),
        ),
        ts(
          'Operations per second',
          'ops',
          'Backend operations by driver and operation.',
          q(
            `sum by (driver, operation) (rate(shoal_storage_operation_duration_seconds_count{${SA}}[${RI}]))`,
            '{{driver}} {{operation}}',
          ),
        ),
        ts(
          'Errors by code',
          'ops',
          'Failed backend operations per second by driver, operation and storage error code.',
          q(
            `sum by (driver, operation, code) (rate(shoal_storage_operation_errors_total{${SA}}[${RI}]))`,
            '{{driver}} {{operation}} {{code}}',
          ),
        ),
      ],
    },
    {
      title: 'RPC',
      panels: [
        ts(
          'Ops per batch',
          'short',
          'Operations per /v1/batch request: mean and p99 (how well gateways coalesce).',
          q(
            `sum(rate(shoal_storage_batch_ops_sum{${SA}}[${RI}])) / sum(rate(shoal_storage_batch_ops_count{${SA}}[${RI}]))`,
            'mean',
          ),
          q(
            `histogram_quantile(0.99, sum by (le) (rate(shoal_storage_batch_ops_bucket{${SA}}[${RI}])))`,
            'p99',
          ),
        ),
        ts(
          'API requests',
          'reqps',
          'storage-api HTTP requests by endpoint and outcome.',
          q(
            `sum by (endpoint, outcome) (rate(shoal_storage_rpc_requests_total{${SA}}[${RI}]))`,
            '{{endpoint}} {{outcome}}',
          ),
        ),
      ],
    },
    {
      title: 'Swarms',
      panels: [
        ts(
          'Torrents',
          'short',
          'Swarms with a live peer.',
          q(`max(shoal_swarm_torrents{${SA}})`, 'torrents'),
        ),
        ts(
          'Peers',
          'short',
          'Live peers by kind and address family.',
          q(`max by (kind, family) (shoal_swarm_peers{${SA}})`, '{{kind}} {{family}}'),
        ),
      ],
    },
    runtimeRow(SA),
  ],
};

const gc: Dashboard = {
  uid: 'shoal-gc',
  title: 'Shoal / GC',
  description: 'gc-worker: leadership, collection runs, duration and what they removed.',
  rows: [
    {
      title: 'Leadership',
      panels: [
        ts(
          'Leader per instance',
          'short',
          '1 while an instance holds the GC lease. Exactly one instance should.',
          q(`max by (instance) (shoal_gc_leader{${GC}})`, '{{instance}}'),
        ),
        stat(
          'Leaders',
          'short',
          'Instances that believe they lead (alerts when not 1).',
          q('shoal:gc_leaders:sum', 'leaders'),
        ),
        ts(
          'Leader transitions',
          'short',
          'Leadership gained or lost per instance over the last hour.',
          q(
            `sum by (instance) (increase(shoal_gc_leader_transitions_total{${GC}}[1h]))`,
            '{{instance}}',
          ),
        ),
      ],
    },
    {
      title: 'Collections',
      panels: [
        ts(
          'Runs by outcome',
          'ops',
          'GC ticks per second: ok, error, skipped_not_leader.',
          q(`sum by (outcome) (rate(shoal_gc_runs_total{${GC}}[${RI}]))`, '{{outcome}}'),
        ),
        ts(
          'Duration',
          's',
          'Mean and p99 collection time.',
          q(
            `sum(rate(shoal_gc_duration_seconds_sum{${GC}}[${RI}])) / sum(rate(shoal_gc_duration_seconds_count{${GC}}[${RI}]))`,
            'mean',
          ),
          q(
            `histogram_quantile(0.99, sum by (le) (rate(shoal_gc_duration_seconds_bucket{${GC}}[${RI}])))`,
            'p99',
          ),
        ),
        ts(
          'Removed',
          'ops',
          'Expired peers and empty swarms deleted per second.',
          q(`sum(rate(shoal_gc_peers_removed_total{${GC}}[${RI}]))`, 'peers'),
          q(`sum(rate(shoal_gc_swarms_removed_total{${GC}}[${RI}]))`, 'swarms'),
        ),
        stat(
          'Last success age',
          's',
          'Seconds since the newest successful collection (alerts above 15 minutes).',
          q('shoal:gc_last_success_age_seconds', 'age'),
        ),
      ],
    },
    runtimeRow(GC),
  ],
};

export const DASHBOARDS: readonly Dashboard[] = [overview, gateway, storage, gc, STORES_DASHBOARD];

/** Every query of every panel, with where it comes from (for tests and reports). */
export function allQueries(
  dashboards: readonly Dashboard[] = DASHBOARDS,
): Array<{ dashboard: string; panel: string; query: Query }> {
  return dashboards.flatMap((d) =>
    d.rows.flatMap((r) =>
      r.panels.flatMap((p) =>
        p.queries.map((query) => ({ dashboard: d.uid, panel: p.title, query })),
      ),
    ),
  );
}

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const GRID_WIDTH = 24;
const PANEL_HEIGHT = 8;

/** Grafana dashboard JSON (schema 39), the datasource a template variable. */
export function renderGrafana(d: Dashboard): unknown {
  const panels: unknown[] = [];
  let id = 1;
  let y = 0;
  for (const row of d.rows) {
    panels.push({
      type: 'row',
      id: id++,
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: GRID_WIDTH, x: 0, y },
      panels: [],
    });
    y += 1;
    // Up to three panels side by side; a row of one or two shares the width.
    const perLine = Math.min(3, row.panels.length);
    const width = GRID_WIDTH / perLine;
    row.panels.forEach((p, i) => {
      const col = i % perLine;
      if (i > 0 && col === 0) y += PANEL_HEIGHT;
      panels.push(renderPanel(p, id++, { h: PANEL_HEIGHT, w: width, x: col * width, y }));
    });
    y += PANEL_HEIGHT;
  }
  return {
    uid: d.uid,
    title: d.title,
    description: d.description,
    tags: ['shoal'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timezone: 'utc',
    annotations: { list: [] },
    links: [],
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          refresh: 1,
          regex: '',
          options: [],
        },
      ],
    },
    panels,
  };
}

function renderPanel(p: Panel, id: number, gridPos: Record<string, number>): unknown {
  return {
    type: p.kind,
    id,
    title: p.title,
    description: p.description,
    datasource: DATASOURCE,
    gridPos,
    fieldConfig: {
      defaults: {
        unit: p.unit,
        ...(p.mappings === undefined
          ? {}
          : {
              mappings: [
                {
                  type: 'value',
                  options: Object.fromEntries(
                    p.mappings.map((m, index) => [
                      String(m.value),
                      { text: m.text, color: m.color, index },
                    ]),
                  ),
                },
              ],
            }),
      },
      overrides: [],
    },
    options:
      p.kind === 'stat'
        ? {
            reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
            colorMode: 'value',
          }
        : {
            legend: { displayMode: 'list', placement: 'bottom' },
            tooltip: { mode: 'multi', sort: 'desc' },
          },
    targets: p.queries.map((query, i) => ({
      datasource: DATASOURCE,
      expr: query.expr,
      legendFormat: query.legend,
      refId: String.fromCharCode(65 + i),
    })),
  };
}
