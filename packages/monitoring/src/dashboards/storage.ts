// Shoal / Storage: storage-api, its backend operations by driver, the
// batches it receives, and the swarms.
import { RI, SA, q, runtimeRow, ts, type Dashboard } from './panels.ts';

export const STORAGE_DASHBOARD: Dashboard = {
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
