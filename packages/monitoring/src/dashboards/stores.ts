// The stores dashboard: Redis from the redis_exporter sidecar and CockroachDB
// from its /_status/vars, both off by default in the chart
// (docs/kubernetes.md, "The stores have their own exporters"). Its names are
// the exporters', catalogued in external-metrics.ts, not Shoal's.
import { STORE_JOBS } from '../external-metrics.ts';
import { RI, q, stat, ts, type Dashboard } from './panels.ts';

const REDIS = `job="${STORE_JOBS.redis}"`;
const CRDB = `job="${STORE_JOBS.cockroachdb}"`;

export const STORES_DASHBOARD: Dashboard = {
  uid: 'shoal-stores',
  title: 'Shoal / Stores',
  description:
    'Redis (redis_exporter sidecar, job shoal-redis) and CockroachDB (/_status/vars, job shoal-cockroachdb); empty unless redis.metrics.enabled / cockroachdb.metrics.enabled.',
  rows: [
    {
      title: 'Redis',
      panels: [
        stat(
          'Redis up',
          'short',
          'Redis servers the exporter reaches (redis_up), out of the exporters scraped.',
          q(`sum(redis_up{${REDIS}})`, 'up'),
          q(`count(redis_up{${REDIS}})`, 'scraped'),
        ),
        ts(
          'Role',
          'short',
          'Instances by replication role (redis_instance_info): exactly one master is expected.',
          q(`count by (role) (redis_instance_info{${REDIS}})`, '{{role}}'),
        ),
        ts(
          'Replication',
          'short',
          'Replicas connected to each master, and whether each replica has its link to the master up (1).',
          q(`max by (instance) (redis_connected_slaves{${REDIS}})`, '{{instance}} replicas'),
          q(`max by (instance) (redis_master_link_up{${REDIS}})`, '{{instance}} link up'),
        ),
        ts(
          'Connected clients',
          'short',
          'Client connections per instance (Shoal services, Sentinel and the exporter).',
          q(`max by (instance) (redis_connected_clients{${REDIS}})`, '{{instance}}'),
        ),
        ts(
          'Commands',
          'ops',
          'Commands processed per second per instance.',
          q(
            `sum by (instance) (rate(redis_commands_processed_total{${REDIS}}[${RI}]))`,
            '{{instance}}',
          ),
        ),
        ts(
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
        stat(
          'Live nodes',
          'short',
          'Nodes the cluster sees live (liveness_livenodes, the lowest any node reports).',
          q(`min(liveness_livenodes{${CRDB}})`, 'live'),
        ),
        ts(
          'SQL connections',
          'short',
          'Open SQL connections per node.',
          q(`max by (instance) (sql_conns{${CRDB}})`, '{{instance}}'),
        ),
        ts(
          'SQL statements',
          'ops',
          'SELECT, INSERT, UPDATE and DELETE statements per second over the cluster.',
          q(`sum(rate(sql_select_count{${CRDB}}[${RI}]))`, 'select'),
          q(`sum(rate(sql_insert_count{${CRDB}}[${RI}]))`, 'insert'),
          q(`sum(rate(sql_update_count{${CRDB}}[${RI}]))`, 'update'),
          q(`sum(rate(sql_delete_count{${CRDB}}[${RI}]))`, 'delete'),
        ),
        ts(
          'Ranges under-replicated or unavailable',
          'short',
          'Ranges with fewer replicas than configured, and without a quorum; both should be 0.',
          q(`sum(ranges_underreplicated{${CRDB}})`, 'under-replicated'),
          q(`sum(ranges_unavailable{${CRDB}})`, 'unavailable'),
        ),
        ts(
          'Storage available',
          'percentunit',
          'Available share of each node store capacity.',
          q(`min by (instance) (capacity_available{${CRDB}} / capacity{${CRDB}})`, '{{instance}}'),
        ),
      ],
    },
  ],
};
