// Shoal / Overview: request rates, errors, latency and swarm sizes across
// all services, for the first look.
import { GW, RI, SA, q, stat, ts, type Dashboard } from './panels.ts';

export const OVERVIEW_DASHBOARD: Dashboard = {
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
