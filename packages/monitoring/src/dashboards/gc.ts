// Shoal / GC: gc-worker leadership and its collection runs.
import { GC, RI, q, runtimeRow, stat, ts, type Dashboard } from './panels.ts';

export const GC_DASHBOARD: Dashboard = {
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
