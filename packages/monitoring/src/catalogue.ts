// The metric catalogue: every metric a Shoal service exports, with
// its type, labels and meaning. docs/metrics.md is rendered from this list and
// catalogue.test.ts compares it with the registries the services build, so the
// page, the dashboards and the code cannot drift apart.

export type Service = 'gateway' | 'storage-api' | 'gc-worker';
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary';

export interface MetricSpec {
  name: string;
  type: MetricType;
  /** Label names, bucket `le` excluded. Values must stay bounded: never an infohash or an IP. */
  labels: readonly string[];
  services: readonly Service[];
  meaning: string;
}

const ALL: readonly Service[] = ['gateway', 'storage-api', 'gc-worker'];

export const SHOAL_METRICS: readonly MetricSpec[] = [
  // announce-gateway
  {
    name: 'shoal_requests_total',
    type: 'counter',
    labels: ['protocol', 'action', 'outcome'],
    services: ['gateway'],
    meaning:
      "Tracker requests answered. protocol: http|udp|ws; action: announce|scrape|connect; outcome: ok, rejected (the client's fault: bad input, bad connection id), failed (ours: storage, bug).",
  },
  {
    name: 'shoal_request_duration_seconds',
    type: 'histogram',
    labels: ['protocol', 'action'],
    services: ['gateway'],
    meaning: 'Time from a request arriving to its answer being handed to the socket.',
  },
  {
    name: 'shoal_request_errors_total',
    type: 'counter',
    labels: ['protocol', 'code'],
    services: ['gateway'],
    meaning:
      'Requests refused or failed, by catalog error code (`PROTO_ERR_*`, `GATEWAY_ERR_*`, `STORE_ERR_*` such as `STORE_ERR_UNAVAILABLE`). A code appears with its first occurrence.',
  },
  {
    name: 'shoal_udp_dropped_packets_total',
    type: 'counter',
    labels: ['reason'],
    services: ['gateway'],
    meaning:
      'UDP packets not answered. reason: malformed (no transaction id to answer), closing (arrived during shutdown), send_failed, banned (from a banned source, docs/policy.md "Abuse control").',
  },
  {
    name: 'shoal_http_connections_dropped_total',
    type: 'counter',
    labels: [],
    services: ['gateway'],
    meaning:
      'HTTP connections closed on accept because the process already held `HTTP_MAX_CONNECTIONS` (docs/limits.md). A steady rate means the cap is too low for the traffic, or a flood.',
  },
  {
    name: 'shoal_full_scrape_refreshes_total',
    type: 'counter',
    labels: ['outcome'],
    services: ['gateway'],
    meaning:
      'Rebuilds of the full scrape cache from the store (docs/full-scrape.md), at most one per `FULL_SCRAPE_REFRESH_SECONDS` and only when a full scrape is asked for. outcome: ok, failed (the previous answer is served).',
  },
  {
    name: 'shoal_full_scrape_served_total',
    type: 'counter',
    labels: ['encoding'],
    services: ['gateway'],
    meaning:
      'Full scrapes answered from the cache. encoding: gzip (the client sent `Accept-Encoding: gzip`), identity.',
  },
  {
    name: 'shoal_full_scrape_rate_limited_total',
    type: 'counter',
    labels: [],
    services: ['gateway'],
    meaning: 'Full scrapes refused because the address was over `FULL_SCRAPE_PER_MINUTE`.',
  },
  {
    name: 'shoal_full_scrape_torrents',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning: 'Swarms in the cached full scrape (0 before the first one is asked for).',
  },
  {
    name: 'shoal_full_scrape_truncated',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning:
      '1 when the cached full scrape left swarms out: more were live than `FULL_SCRAPE_MAX_TORRENTS`, and the answer carries `flags` `truncated: 1`.',
  },
  {
    name: 'shoal_full_scrape_bytes',
    type: 'gauge',
    labels: ['encoding'],
    services: ['gateway'],
    meaning: 'Size of the cached full scrape answer in bytes, by encoding (identity, gzip).',
  },
  {
    name: 'shoal_tls_reloads_total',
    type: 'counter',
    labels: ['outcome'],
    services: ['gateway'],
    meaning:
      'Re-reads of the HTTPS certificate and key that found them changed (docs/tls.md). outcome: changed (the new pair is served to new connections), failed (unreadable, or a key that does not match: the running pair is kept).',
  },
  {
    name: 'shoal_tls_certificate_expiry_timestamp_seconds',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning:
      "The served HTTPS certificate's notAfter, seconds since the epoch; 0 while TLS is off. `(this - time()) / 86400` is the days left: a value that stops moving forward means renewals are not reaching the gateway.",
  },
  {
    name: 'shoal_partial_seed_announces_total',
    type: 'counter',
    labels: [],
    services: ['gateway'],
    meaning:
      'Announces answered for BEP 21 partial seeds (HTTP `event=paused`, not a seeder): peers counted in scrapes as `incomplete` but not as `downloaders` (docs/decisions.md "Client features beyond BEP 3"). UDP has no paused event and never counts here.',
  },
  {
    name: 'shoal_bep7_address_announces_total',
    type: 'counter',
    labels: ['outcome'],
    services: ['gateway'],
    meaning:
      'Answered HTTP announces carrying BEP 7 `ipv4=` or `ipv6=`. outcome: used (ALLOW_IPV4_IPV6_PARAMS is on and the peer was also registered at the address of the other family), ignored (the setting is off, or only the family the client was seen in was named). docs/decisions.md "BEP 7 addresses".',
  },
  {
    name: 'shoal_ws_connections',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning:
      'WebTorrent WebSocket tracker connections open on this gateway (docs/webtorrent.md). Each holds a browser in its swarms; capped by `WS_MAX_CONNECTIONS`.',
  },
  {
    name: 'shoal_ws_connections_opened_total',
    type: 'counter',
    labels: [],
    services: ['gateway'],
    meaning: 'WebSocket tracker connections accepted.',
  },
  {
    name: 'shoal_ws_connections_refused_total',
    type: 'counter',
    labels: ['reason'],
    services: ['gateway'],
    meaning:
      'WebSocket upgrades refused. reason: capacity (`WS_MAX_CONNECTIONS` held: 503), not_found (no announce route: 404), closing (the gateway drains).',
  },
  {
    name: 'shoal_ws_connections_closed_total',
    type: 'counter',
    labels: ['reason'],
    services: ['gateway'],
    meaning:
      'WebSocket connections the gateway closed. reason: idle (no message for `WS_IDLE_TIMEOUT_SECONDS`), pong (no answer to a ping), too_big (a message over `WS_MAX_MESSAGE_BYTES`, close 1009), backpressure (a client that reads none of its own answers).',
  },
  {
    name: 'shoal_ws_relayed_total',
    type: 'counter',
    labels: ['kind', 'scope'],
    services: ['gateway'],
    meaning:
      "WebRTC offers and answers written to the recipient's socket, counted by the gateway holding it. kind: offer, answer; scope: local (the sender is on the same gateway), remote (relayed from another gateway).",
  },
  {
    name: 'shoal_ws_relay_dropped_total',
    type: 'counter',
    labels: ['kind', 'reason'],
    services: ['gateway'],
    meaning:
      "Offers and answers not delivered. reason: backpressure (the recipient's socket held `WS_MAX_BUFFERED_BYTES` unsent), no_peer (an answer to a peer in no swarm), gone (the holding gateway no longer listens: its peer is taken out), no_socket (the socket closed while the message travelled), unavailable (the relay or its store could not tell: a Redis ring shard down, a timeout, storage-api's stream down; the peer stays).",
  },
  {
    name: 'shoal_ws_relay_latency_seconds',
    type: 'histogram',
    labels: ['scope'],
    services: ['gateway'],
    meaning:
      "Time from an offer's or answer's arrival at the sender's gateway to its hand-over to the recipient's socket. scope: local, remote (through the relay between gateways; clocks of different machines add their skew).",
  },
  {
    name: 'shoal_ws_relay_streams_open',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning:
      'STORAGE_DRIVER=remote: WebSocket relay streams to storage-api open now, one per worker thread; 0 while storage-api is unreachable (offers to other gateways are then dropped as unavailable).',
  },
  {
    name: 'shoal_ws_relay_stream_connects_total',
    type: 'counter',
    labels: ['outcome'],
    services: ['gateway'],
    meaning:
      'STORAGE_DRIVER=remote: relay stream events. outcome: opened, failed (an attempt that did not open; retried with backoff up to WS_RELAY_RECONNECT_MAX_MS), lost (an open stream that ended).',
  },
  {
    name: 'shoal_ws_relay_streams',
    type: 'gauge',
    labels: [],
    services: ['storage-api'],
    meaning: "Gateways' WebSocket relay streams this storage-api replica holds.",
  },
  {
    name: 'shoal_ws_relay_stream_messages_total',
    type: 'counter',
    labels: ['outcome'],
    services: ['storage-api'],
    meaning:
      "Offers and answers storage-api relayed between gateways. outcome: local (pushed on a stream this replica holds), forwarded (published to the replica holding it, on Redis), gone (nobody holds the gateway's stream: the sender takes its peer out), dropped (the stream held `WS_RELAY_MAX_BUFFERED_BYTES` unsent), failed (Redis did not take it).",
  },
  {
    name: 'shoal_ws_rate_limited_total',
    type: 'counter',
    labels: [],
    services: ['gateway'],
    meaning:
      'WebSocket messages over `WS_MESSAGES_PER_SECOND` on their connection, answered with `POLICY_ERR_RATE_LIMITED` and otherwise ignored.',
  },
  {
    name: 'shoal_udp_connection_id_rejections_total',
    type: 'counter',
    labels: [],
    services: ['gateway'],
    meaning: 'UDP announces and scrapes refused for an unknown or expired connection id (BEP 15).',
  },
  {
    name: 'shoal_policy_refresh_total',
    type: 'counter',
    labels: ['outcome'],
    services: ['gateway'],
    meaning:
      'Reloads of the approval lists and passkeys (docs/policy.md), every POLICY_REFRESH_SECONDS while a list or passkey step is on. outcome: changed, unchanged (304 / same revision), failed (the last snapshot is kept).',
  },
  {
    name: 'shoal_policy_revision_age_seconds',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning:
      'Seconds since the policy snapshot was last loaded or confirmed unchanged (since start before the first load; 0 while no list or passkey step is on). Growing past a few POLICY_REFRESH_SECONDS: refreshes are failing.',
  },
  {
    name: 'shoal_policy_entries',
    type: 'gauge',
    labels: ['list'],
    services: ['gateway'],
    meaning:
      'Entries in the cached policy snapshot. list: torrents, clients, passkeys, links (linked swarms of hybrid torrents).',
  },
  {
    name: 'shoal_abuse_bans_total',
    type: 'counter',
    labels: ['reason'],
    services: ['gateway'],
    meaning:
      'Sources this gateway banned by itself for ABUSE_BAN_SECONDS (docs/policy.md "Abuse control"). reason: bad_connection_id, malformed (UDP packets).',
  },
  {
    name: 'shoal_rate_limit_shared_refusals_total',
    type: 'counter',
    labels: [],
    services: ['gateway'],
    meaning:
      'Announces and scrapes refused by the rate limit all gateway replicas share (RATE_LIMIT_SHARED, docs/policy.md "Shared rate limits"), after passing the replica’s own bucket; also counted in shoal_policy_refusals_total{code="POLICY_ERR_RATE_LIMITED"}.',
  },
  {
    name: 'shoal_rate_limit_syncs_total',
    type: 'counter',
    labels: ['outcome'],
    services: ['gateway'],
    meaning:
      'Syncs of the shared rate limit counts with the store (Redis, storage-api), every RATE_LIMIT_SHARED_SYNC_MS when there is something to send. outcome: ok, failed (the replica limits with the counts it knows).',
  },
  {
    name: 'shoal_rate_limit_sync_seconds',
    type: 'histogram',
    labels: [],
    services: ['gateway'],
    meaning:
      'Time of one shared rate limit sync, failed ones included; with RATE_LIMIT_SHARED_SYNC_MS it sets how far over the limit the cluster can go (docs/policy.md "Shared rate limits").',
  },
  {
    name: 'shoal_rate_limit_shared_addresses',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning:
      'Addresses the shared rate limit tracks in this replica (at most RATE_LIMIT_MAX_ADDRESSES).',
  },
  {
    name: 'shoal_hybrid_links_learned_total',
    type: 'counter',
    labels: ['outcome'],
    services: ['gateway'],
    meaning:
      'Links of hybrid torrents learned from a client announcing both hashes with one peer_id and key (HYBRID_LINKS_LEARN, docs/policy.md "Hybrid torrents"). outcome: learned (stored), known (already stored), conflict (a hash already in another link), failed (not written; retried on a later announce).',
  },
  {
    name: 'shoal_policy_refusals_total',
    type: 'counter',
    labels: ['code'],
    services: ['gateway'],
    meaning:
      "Announces, scrapes and UDP connects refused by the gateway's policy chain, by code (`POLICY_ERR_*`: rate limited, passkey, jwt, client or torrent approval, not loaded).",
  },
  {
    name: 'shoal_storage_client_batch_size',
    type: 'histogram',
    labels: [],
    services: ['gateway'],
    meaning:
      'Operations per batch request the remote storage client (STORAGE_DRIVER=remote) sends to storage-api.',
  },
  {
    name: 'shoal_storage_client_requests_total',
    type: 'counter',
    labels: ['outcome'],
    services: ['gateway'],
    meaning:
      'Storage operations (one per announce or scrape) sent through the remote client, by outcome: ok, error (storage-api or its backend failed), rejected_open_circuit, queue_full, timeout.',
  },
  {
    name: 'shoal_storage_client_request_duration_seconds',
    type: 'histogram',
    labels: [],
    services: ['gateway'],
    meaning: 'Round trip of one batch request to storage-api.',
  },
  {
    name: 'shoal_storage_client_circuit_state',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning: 'Circuit breaker in front of storage-api: 0 closed, 1 half-open, 2 open.',
  },
  {
    name: 'shoal_storage_client_queue_depth',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning: 'Storage operations waiting for, or in, a request to storage-api.',
  },
  {
    name: 'shoal_gateway_announce_interval_seconds',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning:
      'The announce interval this gateway answers now, before jitter: `ANNOUNCE_INTERVAL_SECONDS` unless load raised it (docs/load.md).',
  },
  {
    name: 'shoal_gateway_workers_configured',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning:
      'Worker threads the gateway runs: GATEWAY_WORKERS, or the cores it may use (docs/workers.md). Absent with one worker in the main thread.',
  },
  {
    name: 'shoal_gateway_workers',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning:
      'Worker threads serving now; below shoal_gateway_workers_configured while one is replaced (docs/workers.md).',
  },
  {
    name: 'shoal_gateway_worker_restarts_total',
    type: 'counter',
    labels: [],
    services: ['gateway'],
    meaning:
      'Workers replaced after they exited unasked: a crash, or POST /v1/admin/workers/<index>/terminate (docs/workers.md).',
  },
  {
    name: 'shoal_gateway_worker_requests_total',
    type: 'counter',
    labels: ['worker', 'protocol'],
    services: ['gateway'],
    meaning:
      "Requests each worker answered (its share of shoal_requests_total): how SO_REUSEPORT spreads clients. worker: 0 to GATEWAY_WORKERS - 1; protocol: http|udp. A replaced worker's series starts again from 0.",
  },
  {
    name: 'shoal_gateway_load',
    type: 'gauge',
    labels: [],
    services: ['gateway'],
    meaning:
      "The latest sample's load figure: the largest of the signal ratios, 1 = a signal at its target (docs/load.md).",
  },
  {
    name: 'shoal_gateway_load_signal',
    type: 'gauge',
    labels: ['signal'],
    services: ['gateway'],
    meaning:
      "Each ratio of the latest load sample. signal: lag (event loop p99), queue (announces waiting on the store), breaker (1 while storage-api's breaker is not closed), storage (storage-api's reports).",
  },
  {
    name: 'shoal_gateway_shed_announces_total',
    type: 'counter',
    labels: ['kind'],
    services: ['gateway'],
    meaning:
      'Announces answered without the store because too many were waiting on it (docs/load.md "Shedding"). kind: seeder_update, leecher_update, event.',
  },
  // storage-api
  {
    name: 'shoal_storage_operation_duration_seconds',
    type: 'histogram',
    labels: ['driver', 'operation'],
    services: ['storage-api'],
    meaning:
      'Backend operation latency. driver: memory|redis|postgres; operation: announce, scrape, kv_get, kv_put, kv_delete, kv_list, gc, stats, full_scrape, lease, downloads, rate_counts, ws_announce, ws_scrape, ws_holder, ws_leave (the WebSocket swarms, driver memory|redis).',
  },
  {
    name: 'shoal_storage_operation_errors_total',
    type: 'counter',
    labels: ['driver', 'operation', 'code'],
    services: ['storage-api'],
    meaning: 'Backend operations that failed, by storage error code (`STORE_ERR_*`).',
  },
  {
    name: 'shoal_storage_batch_ops',
    type: 'histogram',
    labels: [],
    services: ['storage-api'],
    meaning: 'Operations per /v1/batch request received.',
  },
  {
    name: 'shoal_storage_rpc_requests_total',
    type: 'counter',
    labels: ['endpoint', 'outcome'],
    services: ['storage-api'],
    meaning:
      "HTTP requests to the storage-api API, by endpoint (batch, kv, downloads, stats, full_scrape, gc, leases, policy, rate_limits, ws_relay (the gateways' relay stream upgrades; 101 counts as ok), admin, other) and outcome: ok (2xx), rejected (4xx, the caller's fault), failed (5xx).",
  },
  {
    name: 'shoal_swarm_torrents',
    type: 'gauge',
    labels: [],
    services: ['storage-api', 'gateway'],
    meaning:
      'Swarms with at least one live peer, refreshed every STATS_INTERVAL_SECONDS; on a gateway, from its embedded store.',
  },
  {
    name: 'shoal_swarm_peers',
    type: 'gauge',
    labels: ['kind', 'family'],
    services: ['storage-api', 'gateway'],
    meaning:
      'Live peers, refreshed every STATS_INTERVAL_SECONDS. kind: seeders|leechers; family: v4|v6.',
  },
  // gc-worker
  {
    name: 'shoal_gc_runs_total',
    type: 'counter',
    labels: ['outcome'],
    services: ['gc-worker'],
    meaning: 'Garbage-collection ticks. outcome: ok, error, skipped_not_leader.',
  },
  {
    name: 'shoal_gc_duration_seconds',
    type: 'histogram',
    labels: [],
    services: ['gc-worker'],
    meaning: 'Duration of one garbage collection (POST /v1/gc round trip).',
  },
  {
    name: 'shoal_gc_peers_removed_total',
    type: 'counter',
    labels: [],
    services: ['gc-worker'],
    meaning: 'Expired peers deleted by garbage collection.',
  },
  {
    name: 'shoal_gc_swarms_removed_total',
    type: 'counter',
    labels: [],
    services: ['gc-worker'],
    meaning: 'Empty swarms deleted by garbage collection.',
  },
  {
    name: 'shoal_gc_last_success_timestamp_seconds',
    type: 'gauge',
    labels: [],
    services: ['gc-worker'],
    meaning: 'Unix time of the last successful collection by this instance; 0 until the first.',
  },
  {
    name: 'shoal_gc_leader',
    type: 'gauge',
    labels: [],
    services: ['gc-worker'],
    meaning:
      '1 while this instance holds the GC lease, else 0. Summed over instances it must be 1.',
  },
  {
    name: 'shoal_gc_leader_transitions_total',
    type: 'counter',
    labels: [],
    services: ['gc-worker'],
    meaning: 'Times this instance gained or lost leadership.',
  },
];

/** prom-client collectDefaultMetrics(), registered by every service (Node 24, prom-client 15). */
export const RUNTIME_METRICS: readonly MetricSpec[] = [
  ['process_cpu_user_seconds_total', 'counter', [], 'User CPU time spent, seconds.'],
  ['process_cpu_system_seconds_total', 'counter', [], 'System CPU time spent, seconds.'],
  ['process_cpu_seconds_total', 'counter', [], 'User and system CPU time spent, seconds.'],
  ['process_start_time_seconds', 'gauge', [], 'Process start time, Unix seconds.'],
  ['process_resident_memory_bytes', 'gauge', [], 'Resident memory size.'],
  ['process_virtual_memory_bytes', 'gauge', [], 'Virtual memory size.'],
  ['process_heap_bytes', 'gauge', [], 'Process heap size.'],
  ['process_open_fds', 'gauge', [], 'Open file descriptors.'],
  ['process_max_fds', 'gauge', [], 'Maximum open file descriptors.'],
  ['nodejs_eventloop_lag_seconds', 'gauge', [], 'Event loop lag measured by a timer.'],
  ['nodejs_eventloop_lag_min_seconds', 'gauge', [], 'Minimum recorded event loop delay.'],
  ['nodejs_eventloop_lag_max_seconds', 'gauge', [], 'Maximum recorded event loop delay.'],
  ['nodejs_eventloop_lag_mean_seconds', 'gauge', [], 'Mean recorded event loop delay.'],
  ['nodejs_eventloop_lag_stddev_seconds', 'gauge', [], 'Standard deviation of event loop delays.'],
  ['nodejs_eventloop_lag_p50_seconds', 'gauge', [], 'Median event loop delay.'],
  ['nodejs_eventloop_lag_p90_seconds', 'gauge', [], '90th percentile event loop delay.'],
  ['nodejs_eventloop_lag_p99_seconds', 'gauge', [], '99th percentile event loop delay.'],
  [
    'nodejs_active_resources',
    'gauge',
    ['type'],
    'Resources keeping the event loop alive, by type.',
  ],
  ['nodejs_active_resources_total', 'gauge', [], 'Resources keeping the event loop alive.'],
  ['nodejs_active_handles', 'gauge', ['type'], 'Active libuv handles, by type.'],
  ['nodejs_active_handles_total', 'gauge', [], 'Active libuv handles.'],
  ['nodejs_active_requests', 'gauge', ['type'], 'Active libuv requests, by type.'],
  ['nodejs_active_requests_total', 'gauge', [], 'Active libuv requests.'],
  ['nodejs_heap_size_total_bytes', 'gauge', [], 'V8 heap size.'],
  ['nodejs_heap_size_used_bytes', 'gauge', [], 'V8 heap used.'],
  [
    'nodejs_external_memory_bytes',
    'gauge',
    [],
    'Memory of C++ objects bound to JavaScript (Buffers).',
  ],
  ['nodejs_heap_space_size_total_bytes', 'gauge', ['space'], 'V8 heap space size, by space.'],
  ['nodejs_heap_space_size_used_bytes', 'gauge', ['space'], 'V8 heap space used, by space.'],
  [
    'nodejs_heap_space_size_available_bytes',
    'gauge',
    ['space'],
    'V8 heap space available, by space.',
  ],
  [
    'nodejs_version_info',
    'gauge',
    ['version', 'major', 'minor', 'patch'],
    'Node.js version (value 1).',
  ],
  [
    'nodejs_gc_duration_seconds',
    'histogram',
    ['kind'],
    'V8 garbage collection pauses, by kind (major, minor, incremental, weakcb).',
  ],
].map(([name, type, labels, meaning]) => ({
  name: name as string,
  type: type as MetricType,
  labels: labels as string[],
  services: ALL,
  meaning: meaning as string,
}));

export const CATALOGUE: readonly MetricSpec[] = [...SHOAL_METRICS, ...RUNTIME_METRICS];

export function findMetric(name: string): MetricSpec | undefined {
  return CATALOGUE.find((m) => m.name === name);
}

/** The names under which a metric's samples appear: a histogram's _bucket/_sum/_count. */
export function sampleNames(spec: MetricSpec): string[] {
  if (spec.type === 'histogram')
    return [`${spec.name}_bucket`, `${spec.name}_sum`, `${spec.name}_count`];
  if (spec.type === 'summary') return [spec.name, `${spec.name}_sum`, `${spec.name}_count`];
  return [spec.name];
}

/** The catalogue entry a sample name belongs to (`x_bucket` -> histogram `x`). */
export function metricOfSample(sample: string): MetricSpec | undefined {
  return CATALOGUE.find((m) => sampleNames(m).includes(sample));
}
