// The WebSocket frontend's own metrics (docs/webtorrent.md "Metrics"); its
// announces and scrapes are counted with the other frontends' under
// shoal_requests_total{protocol="ws"}. Labels are bounded: kind, reason, scope.
import { Counter, Gauge, type Registry } from 'prom-client';
import { BatchedSeries, FastHistogram } from '../metrics.ts';

export type RelayKind = 'offer' | 'answer';
export type RelayScope = 'local' | 'remote';
/**
 * backpressure: the recipient's socket had WS_MAX_BUFFERED_BYTES unsent;
 * no_peer: the recipient is in no swarm (an answer to a peer that left);
 * gone: the holding gateway no longer listens; no_socket: the holder has no
 * socket for the peer any more (it closed while the message travelled);
 * unavailable: the relay or its store could not tell (a ring shard down, a
 * timeout, storage-api or its stream down), so the peer stays.
 */
export type RelayDropReason = 'backpressure' | 'no_peer' | 'gone' | 'no_socket' | 'unavailable';
/** capacity: WS_MAX_CONNECTIONS held; not_found: no announce route; closing: the gateway drains. */
export type WsRefusedReason = 'capacity' | 'not_found' | 'closing';
/** rate: over WS_MESSAGES_PER_SECOND; idle: WS_IDLE_TIMEOUT_SECONDS without a message; pong: no pong to a ping. */
export type WsCloseReason = 'idle' | 'pong' | 'too_big' | 'backpressure';

export interface WsMetrics {
  connectionOpened(): void;
  connectionClosed(): void;
  refused(reason: WsRefusedReason): void;
  closedBy(reason: WsCloseReason): void;
  relayed(kind: RelayKind, scope: RelayScope, sentAt: number, now: number): void;
  dropped(kind: RelayKind, reason: RelayDropReason): void;
  /** Messages over the per-connection rate, answered with a failure and otherwise ignored. */
  rateLimited(): void;
}

const KINDS: readonly RelayKind[] = ['offer', 'answer'];
const SCOPES: readonly RelayScope[] = ['local', 'remote'];
const DROP_REASONS: readonly RelayDropReason[] = [
  'backpressure',
  'no_peer',
  'gone',
  'no_socket',
  'unavailable',
];
const REFUSED: readonly WsRefusedReason[] = ['capacity', 'not_found', 'closing'];
const CLOSES: readonly WsCloseReason[] = ['idle', 'pong', 'too_big', 'backpressure'];

export const RELAY_LATENCY_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

export function createWsMetrics(registry: Registry): WsMetrics {
  const connections = new Gauge({
    name: 'shoal_ws_connections',
    help: 'WebSocket tracker connections open on this gateway.',
    registers: [registry],
  });
  connections.set(0);
  const opened = new Counter({
    name: 'shoal_ws_connections_opened_total',
    help: 'WebSocket tracker connections accepted.',
    registers: [registry],
  });
  opened.inc(0);
  const refused = new Counter({
    name: 'shoal_ws_connections_refused_total',
    help: 'WebSocket upgrades refused, by reason: capacity (WS_MAX_CONNECTIONS), not_found (no announce route), closing.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  for (const r of REFUSED) refused.labels(r).inc(0);
  const closed = new Counter({
    name: 'shoal_ws_connections_closed_total',
    help: 'WebSocket connections the gateway closed, by reason: idle, pong (no answer to a ping), too_big (a message over WS_MAX_MESSAGE_BYTES), backpressure (the client reads none of its own answers).',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  for (const r of CLOSES) closed.labels(r).inc(0);
  // An offer or answer relayed is one increment and one observation, done as
  // the gateway's per-request series are (../metrics.ts): prom-client's
  // labels() hashes the label object on every call.
  const batched: BatchedSeries[] = [];
  const relayed = new Counter({
    name: 'shoal_ws_relayed_total',
    help: 'Offers and answers written to the recipient socket, by kind and scope: local (the sender is on this gateway), remote (it came from another gateway).',
    labelNames: ['kind', 'scope'] as const,
    registers: [registry],
    collect: () => {
      for (const series of batched) series.flush();
    },
  });
  const dropped = new Counter({
    name: 'shoal_ws_relay_dropped_total',
    help: 'Offers and answers not delivered, by kind and reason: backpressure, no_peer, gone, no_socket, unavailable.',
    labelNames: ['kind', 'reason'] as const,
    registers: [registry],
  });
  const latency = new FastHistogram(
    'shoal_ws_relay_latency_seconds',
    "Time from the sender's message arriving at its gateway to the relayed message being handed to the recipient's socket, by scope (local, remote).",
    RELAY_LATENCY_BUCKETS,
  );
  registry.registerMetric(latency.asMetric());
  const limited = new Counter({
    name: 'shoal_ws_rate_limited_total',
    help: 'WebSocket messages over WS_MESSAGES_PER_SECOND on their connection, refused.',
    registers: [registry],
  });
  limited.inc(0);
  const relayedTable = {} as Record<RelayKind, Record<RelayScope, BatchedSeries>>;
  for (const kind of KINDS) {
    relayedTable[kind] = {} as Record<RelayScope, BatchedSeries>;
    for (const scope of SCOPES) {
      const child = relayed.labels(kind, scope);
      child.inc(0);
      const series = new BatchedSeries(child);
      batched.push(series);
      relayedTable[kind][scope] = series;
    }
    for (const reason of DROP_REASONS) dropped.labels(kind, reason).inc(0);
  }
  // Both series from the start: the relay panels read 0, not "no data", before the first offer.
  const latencyOf = {
    local: latency.series({ scope: 'local' }),
    remote: latency.series({ scope: 'remote' }),
  } satisfies Record<RelayScope, unknown>;
  return {
    connectionOpened: () => {
      connections.inc();
      opened.inc();
    },
    connectionClosed: () => connections.dec(),
    refused: (reason) => refused.labels(reason).inc(),
    closedBy: (reason) => closed.labels(reason).inc(),
    relayed: (kind, scope, sentAt, now) => {
      relayedTable[kind][scope].inc();
      latencyOf[scope].observe(Math.max(0, now - sentAt) / 1000);
    },
    dropped: (kind, reason) => dropped.labels(kind, reason).inc(),
    rateLimited: () => limited.inc(),
  };
}
