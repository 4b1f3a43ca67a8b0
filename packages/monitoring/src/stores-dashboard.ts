// The stores dashboard: Redis from the redis_exporter sidecar and CockroachDB
// from its /_status/vars, both off by default in the chart
// (docs/kubernetes.md, "The stores have their own exporters"). Its names are
// the exporters', catalogued in external-metrics.ts, not Shoal's.
import type { Dashboard, Panel, Query, Unit } from './dashboards.ts';
import { STORE_JOBS } from './external-metrics.ts';

const RI = '$__rate_interval';
const REDIS = `job="${STORE_JOBS.redis}"`;
const CRDB = `job="${STORE_JOBS.cockroachdb}"`;

function panel(
  kind: Panel['kind'],
  title: string,
  unit: Unit,
  description: string,
  ...queries: Query[]
): Panel {
  return { title, description, kind, unit, queries };
}

function q(expr: string, legend: string): Query {
  return { expr, legend };
}

export const STORES_DASHBOARD: Dashboard = {
  uid: 'shoal-stores',
  title: 'Shoal / Stores',
  description:
    'Redis (redis_exporter sidecar, job shoal-redis) and CockroachDB (/_status/vars, job shoal-cockroachdb); empty unless redis.metrics.enabled / cockroachdb.metrics.enabled.',
  rows: [
    {
      title: 'Redis',
      panels: [
        panel(
          'stat',
          'Redis up',
          'short',
          'Redis servers the exporter reaches (redis_up), out of the exporters scraped.',
          q(`sum(redis_up{${REDIS}})`, 'up'),
          q(`count(redis_up{${REDIS}})`, 'scraped'),
        ),
        panel(
          'timeseries',
          'Role',
          'short',
          'Instances by replication role (redis_instance_info): exactly one master is expected.',
          q(`count by (role) (redis_instance_info{${REDIS}})`, '{{role}}'),
        ),
        panel(
          'timeseries',
          'Replication',
          'short',
          'Replicas connected to each master, and whether each replica has its link to the master up (1).',
          q(`max by (instance) (redis_connected_slaves{${REDIS}})`, '{{instance}} replicas'),
          q(`max by (instance) (redis_master_link_up{${REDIS}})`, '{{instance}} link up'),
        ),
        panel(
          'timeseries',
          'Connected clients',
          'short',
          'Client connections per instance (Shoal services, Sentinel and the exporter).',
          q(`max by (instance) (redis_connected_clients{${REDIS}})`, '{{instance}}'),
        ),
        panel(
          'timeseries',
          'Commands',
          'ops',
          'Commands processed per second per instance.',
          q(
            `sum by (instance) (rate(redis_commands_processed_total{${REDIS}}[${RI}]))`,
            '{{instance}}',
          ),
        ),
        panel(
          'timeseries',
          'Memory',
          'bytes',
          'Memory Redis uses per instance, and its maxmemory (0 = no limit).',
          q(`max by (instance) (redis_memory_used_bytes{${REDIS}})`, '{{instance}} used'),
          q(`max by (instance) (redis_memory_max_bytes{${REDIS}})`, '{{instance}} max'),
        ),
      ],
    },
    {
      title: 'CockroachDB',
      panels: [
        panel(
          'stat',
          'Live nodes',
          'short',
          'Nodes the cluster sees live (liveness_livenodes, the lowest any node reports).',
          q(`min(liveness_livenodes{${CRDB}})`, 'live'),
        ),
        panel(
          'timeseries',
          'SQL connections',
          'short',
          'Open SQL connections per node.',
          q(`max by (instance) (sql_conns{${CRDB}})`, '{{instance}}'),
        ),
        panel(
          'timeseries',
          'SQL statements',
          'ops',
          'SELECT, INSERT, UPDATE and DELETE statements per second over the cluster.',
          q(`sum(rate(sql_select_count{${CRDB}}[${RI}]))`, 'select'),
          q(`sum(rate(sql_insert_count{${CRDB}}[${RI}]))`, 'insert'),
          q(`sum(rate(sql_update_count{${CRDB}}[${RI}]))`, 'update'),
          q(`sum(rate(sql_delete_count{${CRDB}}[${RI}]))`, 'delete'),
        ),
        panel(
          'timeseries',
          'Ranges under-replicated or unavailable',
          'short',
          'Ranges with fewer replicas than configured, and without a quorum; both should be 0.',
          q(`sum(ranges_underreplicated{${CRDB}})`, 'under-replicated'),
          q(`sum(ranges_unavailable{${CRDB}})`, 'unavailable'),
        ),
        panel(
          'timeseries',
          'Storage available',
          'percentunit',
          'Available share of each node store capacity.',
          q(`min by (instance) (capacity_available{${CRDB}} / capacity{${CRDB}})`, '{{instance}}'),
        ),
      ],
    },
  ],
};
