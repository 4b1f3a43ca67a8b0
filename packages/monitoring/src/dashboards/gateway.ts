// Shoal / Gateway: the announce-gateway replicas, their UDP health and
// their remote storage client (batches, circuit, queue).
import { GW, RI, q, runtimeRow, stat, ts, type Dashboard } from './panels.ts';

export const GATEWAY_DASHBOARD: Dashboard = {
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
      // docs/load.md: what the gateway tells clients, why, and what it sheds.
      title: 'Load',
      panels: [
        ts(
          'Announce interval',
          's',
          'The interval each replica answers now, before jitter: ANNOUNCE_INTERVAL_SECONDS until sustained load raises it, up to ANNOUNCE_INTERVAL_MAX_SECONDS.',
          q(`max by (instance) (shoal_gateway_announce_interval_seconds{${GW}})`, '{{instance}}'),
        ),
        ts(
          'Load figure and signals',
          'short',
          'The load figure (1 = at target) and the signal ratios it is the largest of: lag, queue, breaker, storage. The leading signal says where capacity is missing.',
          q(`max by (instance) (shoal_gateway_load{${GW}})`, 'load {{instance}}'),
          q(
            `max by (instance, signal) (shoal_gateway_load_signal{${GW}})`,
            '{{signal}} {{instance}}',
          ),
        ),
        ts(
          'Shed announces',
          'ops',
          'Announces answered without the store because too many were waiting on it, by kind: seeder updates go first, then leecher updates, events last.',
          q(`sum by (kind) (rate(shoal_gateway_shed_announces_total{${GW}}[${RI}]))`, '{{kind}}'),
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
      // docs/policy.md "Shared rate limits" (RATE_LIMIT_SHARED).
      title: 'Shared rate limit',
      panels: [
        ts(
          'Shared refusals',
          'ops',
          'Announces and scrapes refused by the limit all replicas share, after passing the replica’s own bucket.',
          q(
            `sum by (instance) (rate(shoal_rate_limit_shared_refusals_total{${GW}}[${RI}]))`,
            '{{instance}}',
          ),
        ),
        ts(
          'Syncs by outcome',
          'ops',
          'Count syncs with the store per second: ok, failed. While they fail a replica limits with the counts it knows.',
          q(
            `sum by (instance, outcome) (rate(shoal_rate_limit_syncs_total{${GW}}[${RI}]))`,
            '{{instance}} {{outcome}}',
          ),
        ),
        ts(
          'Sync p99',
          's',
          'p99 time of one sync; the bound on how far over the limit the cluster goes grows with RATE_LIMIT_SHARED_SYNC_MS plus this.',
          q(
            `histogram_quantile(0.99, sum by (instance, le) (rate(shoal_rate_limit_sync_seconds_bucket{${GW}}[${RI}])))`,
            '{{instance}}',
          ),
        ),
      ],
    },
    {
      // docs/webtorrent.md "Metrics": browsers on the WebSocket tracker and the relay of their offers.
      title: 'WebSocket (WebTorrent)',
      panels: [
        ts(
          'WebSocket connections',
          'short',
          'Open WebTorrent connections per replica (WS_MAX_CONNECTIONS caps each).',
          q(`sum by (instance) (shoal_ws_connections{${GW}})`, '{{instance}}'),
        ),
        ts(
          'Offers and answers relayed',
          'ops',
          'Offers and answers written to recipients, by kind and scope (remote: from another replica).',
          q(
            `sum by (kind, scope) (rate(shoal_ws_relayed_total{${GW}}[${RI}]))`,
            '{{kind}} {{scope}}',
          ),
        ),
        ts(
          'Relay p50 / p99',
          's',
          "Time from an offer or answer reaching the sender's replica to its hand-over to the recipient's socket.",
          q(
            `histogram_quantile(0.5, sum by (scope, le) (rate(shoal_ws_relay_latency_seconds_bucket{${GW}}[${RI}])))`,
            'p50 {{scope}}',
          ),
          q(
            `histogram_quantile(0.99, sum by (scope, le) (rate(shoal_ws_relay_latency_seconds_bucket{${GW}}[${RI}])))`,
            'p99 {{scope}}',
          ),
        ),
        ts(
          'Dropped offers and answers',
          'ops',
          'Not delivered, by reason: backpressure (a slow browser), no_peer, gone (a replica that died), no_socket, unavailable (the relay store failed).',
          q(
            `sum by (kind, reason) (rate(shoal_ws_relay_dropped_total{${GW}}[${RI}]))`,
            '{{kind}} {{reason}}',
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
