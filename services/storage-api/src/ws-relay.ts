// WebSocket (WebTorrent) peers of the split topology (docs/webtorrent.md "The
// split topology"): storage-api keeps the swarms of the gateways' WebSocket
// peers (the batch's ws ops) and relays their offers and answers. Each
// gateway holds one stream to storage-api (GET /v1/ws-relay/<gateway id>,
// upgraded to a WebSocket; frames in @shoal/storage/ws stream.ts). A message
// for a gateway whose stream this replica holds is pushed on it; otherwise,
// on a Redis peer backend, it is published on that gateway's channel, which
// the replica holding the stream subscribes to; nobody subscribed, or no
// Redis, means the gateway is gone and the sender takes its peer out.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { openRedisClients } from '@shoal/storage/redis';
import {
  MemoryWsSwarms,
  RedisRelay,
  RedisWsRoutes,
  RedisWsSwarms,
  STREAM_MAX_PAYLOAD,
  decodeStreamFrame,
  encodeAckFrame,
  encodeDeliverFrame,
  encodeRelayMessage,
  frameBatches,
  type RelayMessage,
  type WsSwarmStore,
} from '@shoal/storage/ws';
import type { StorageApiConfig } from './config.ts';

/** Where storage-api keeps WebSocket peers, and how it reaches the other replicas' streams. */
export interface WsBackend {
  swarms: WsSwarmStore;
  /** Redis pub/sub between replicas; undefined when this replica is the only place streams end. */
  replicas: RedisRelay | undefined;
  close(): Promise<void>;
}

/** How often expired peers of the in-process swarms are dropped (their expiry already hides them from picks). */
const SWEEP_EVERY_MS = 30_000;

/**
 * On a Redis peer backend (every mode): the Redis layout the embedded
 * topology uses, shared by every replica, and pub/sub between the
 * replicas. Anywhere else (memory, PostgreSQL, CockroachDB): in this process, so the swarms are whole only with one storage-api replica
 * (docs/webtorrent.md "The split topology").
 */
export function openWsBackend(config: StorageApiConfig, logger: Logger): WsBackend {
  const log = logger.child({ module: 'ws-swarms' });
  // The ops carry each peer's lifetime; this is only the stores' fallback.
  const peerLifetimeSeconds = config.PEER_LIFETIME_SECONDS;
  if (config.PEER_STORE_DRIVER === 'redis') {
    const routes = new RedisWsRoutes(
      openRedisClients(config, (err) =>
        log.warn({ err }, 'redis connection error (WebSocket swarms)'),
      ),
      config.REDIS_COMMAND_TIMEOUT_MS,
    );
    const replicas = new RedisRelay(routes);
    return {
      swarms: new RedisWsSwarms(routes, { peerLifetimeSeconds }),
      replicas,
      close: async () => {
        await replicas.close();
        for (const client of routes.all()) client.disconnect();
      },
    };
  }
  const swarms = new MemoryWsSwarms({ peerLifetimeSeconds });
  const timer = setInterval(() => swarms.sweep(), SWEEP_EVERY_MS);
  timer.unref();
  return {
    swarms,
    replicas: undefined,
    close: async () => {
      clearInterval(timer);
      await swarms.close();
    },
  };
}

/** local: pushed on a stream of this replica; forwarded: published to another replica; gone: nobody holds the gateway's stream; dropped: the stream had WS_RELAY_MAX_BUFFERED_BYTES unsent; failed: Redis did not take it. */
export type StreamMessageOutcome = 'local' | 'forwarded' | 'gone' | 'dropped' | 'failed';
const OUTCOMES: readonly StreamMessageOutcome[] = [
  'local',
  'forwarded',
  'gone',
  'dropped',
  'failed',
];

export interface RelayStreamMetrics {
  streams(n: number): void;
  message(outcome: StreamMessageOutcome): void;
}

export function createRelayStreamMetrics(registry: Registry): RelayStreamMetrics {
  const streams = new Gauge({
    name: 'shoal_ws_relay_streams',
    help: "Gateways' WebSocket relay streams this storage-api replica holds.",
    registers: [registry],
  });
  streams.set(0);
  const messages = new Counter({
    name: 'shoal_ws_relay_stream_messages_total',
    help: 'Offers and answers storage-api relayed between gateways, by outcome: local, forwarded, gone, dropped, failed.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const o of OUTCOMES) messages.labels(o).inc(0);
  return {
    streams: (n) => streams.set(n),
    message: (outcome) => messages.labels(outcome).inc(),
  };
}

interface Stream {
  gateway: string;
  ws: WebSocket;
  /** Encoded messages waiting for this turn's deliver frame. */
  queue: Buffer[];
  queuedBytes: number;
  alive: boolean;
}

export interface RelayStreamsOptions {
  replicas: RedisRelay | undefined;
  /** A stream with this much unsent loses the messages for it (WS_RELAY_MAX_BUFFERED_BYTES). */
  maxBufferedBytes: number;
  /** Ping period; a stream that answered no ping since the previous one is cut (WS_RELAY_PING_INTERVAL_SECONDS). */
  pingIntervalMs: number;
  metrics: RelayStreamMetrics;
  logger: Logger;
}

/** The gateways' streams this replica holds, and the relay between them. */
export class RelayStreams {
  readonly #options: RelayStreamsOptions;
  readonly #log: Logger;
  readonly #wss: WebSocketServer;
  readonly #streams = new Map<string, Stream>();
  readonly #timer: NodeJS.Timeout;
  readonly #flushing = new Set<Stream>();
  #scheduled = false;
  readonly #flush = (): void => {
    this.#scheduled = false;
    for (const stream of this.#flushing) this.#write(stream);
    this.#flushing.clear();
  };

  constructor(options: RelayStreamsOptions) {
    this.#options = options;
    this.#log = options.logger.child({ module: 'ws-relay' });
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: STREAM_MAX_PAYLOAD,
      perMessageDeflate: false,
    });
    this.#timer = setInterval(() => this.#ping(), options.pingIntervalMs);
    this.#timer.unref();
  }

  /** The streams held now. */
  get size(): number {
    return this.#streams.size;
  }

  /** Takes an authenticated upgrade for `gateway`'s stream. */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer, gateway: string): void {
    this.#wss.handleUpgrade(request, socket, head, (ws) => this.#open(gateway, ws));
  }

  /** Closes every stream with 1001: the gateways reconnect, to another replica. */
  close(): Promise<void> {
    clearInterval(this.#timer);
    for (const stream of this.#streams.values()) stream.ws.close(1001, 'storage-api stopping');
    return new Promise((resolve) => {
      this.#wss.close(() => resolve());
    });
  }

  #open(gateway: string, ws: WebSocket): void {
    // A gateway that reconnected before this replica saw its old stream end: the new one wins.
    this.#streams.get(gateway)?.ws.close(4000, 'replaced by a newer stream');
    const stream: Stream = { gateway, ws, queue: [], queuedBytes: 0, alive: true };
    this.#streams.set(gateway, stream);
    this.#options.metrics.streams(this.#streams.size);
    const replicas = this.#options.replicas;
    replicas
      ?.listen(gateway, (m) => {
        const current = this.#streams.get(gateway);
        if (current !== undefined) this.#push(current, encodeRelayMessage(m));
      })
      // Subscribed after the stream ended (Redis was slow to come back): nobody here holds it.
      .then(() => (this.#streams.has(gateway) ? undefined : replicas.unlisten(gateway)))
      .catch((err: unknown) =>
        this.#log.warn({ err, gateway }, 'cannot subscribe to the relay channel of a gateway'),
      );
    ws.on('message', (data: RawData, isBinary: boolean) => this.#message(stream, data, isBinary));
    ws.on('pong', () => {
      stream.alive = true;
    });
    ws.on('error', (err) => this.#log.debug({ err, gateway }, 'relay stream error'));
    ws.on('close', () => {
      if (this.#streams.get(gateway) !== stream) return;
      this.#streams.delete(gateway);
      this.#options.metrics.streams(this.#streams.size);
      replicas
        ?.unlisten(gateway)
        .catch((err: unknown) =>
          this.#log.debug({ err, gateway }, 'cannot unsubscribe a gateway relay channel'),
        );
    });
    this.#log.info({ gateway }, 'relay stream opened');
  }

  #message(stream: Stream, data: RawData, isBinary: boolean): void {
    const frame = isBinary && Buffer.isBuffer(data) ? decodeStreamFrame(data) : undefined;
    if (frame?.type !== 'send') {
      stream.ws.close(1002, 'not a send frame');
      return;
    }
    const outcomes = frame.items.map((item) => this.#send(item.gateway, item.message));
    const ack = (delivered: boolean[]): void => {
      if (stream.ws.readyState === stream.ws.OPEN)
        stream.ws.send(
          encodeAckFrame(
            frame.seq,
            delivered.map((d) => !d),
          ),
        );
    };
    if (outcomes.every((o): o is boolean => typeof o === 'boolean')) ack(outcomes);
    else void Promise.all(outcomes.map((o) => Promise.resolve(o))).then(ack);
  }

  /** true: handed on (or dropped on a live but backed-up stream); false: the gateway is gone. */
  #send(gateway: string, message: RelayMessage): boolean | Promise<boolean> {
    const { metrics } = this.#options;
    const local = this.#streams.get(gateway);
    if (local !== undefined) {
      this.#push(local, encodeRelayMessage(message));
      return true;
    }
    const replicas = this.#options.replicas;
    if (replicas === undefined) {
      metrics.message('gone');
      return false;
    }
    return replicas.send(gateway, message).then(
      (ok) => {
        metrics.message(ok ? 'forwarded' : 'gone');
        return ok;
      },
      (err: unknown) => {
        // Redis did not say that nobody listens: the peer stays (it expires if really gone).
        metrics.message('failed');
        this.#log.warn({ err }, 'relay to another replica failed');
        return true;
      },
    );
  }

  /** Queues a message for this turn's deliver frame, unless the stream is backed up. */
  #push(stream: Stream, message: Buffer): void {
    const { metrics, maxBufferedBytes } = this.#options;
    if (
      stream.ws.readyState !== stream.ws.OPEN ||
      stream.ws.bufferedAmount + stream.queuedBytes + message.length > maxBufferedBytes
    ) {
      metrics.message('dropped');
      return;
    }
    metrics.message('local');
    stream.queue.push(message);
    stream.queuedBytes += message.length;
    this.#flushing.add(stream);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  #write(stream: Stream): void {
    const queue = stream.queue;
    stream.queue = [];
    stream.queuedBytes = 0;
    if (stream.ws.readyState !== stream.ws.OPEN) return;
    for (const batch of frameBatches(queue, (m) => m.length))
      stream.ws.send(encodeDeliverFrame(batch));
  }

  #ping(): void {
    for (const stream of this.#streams.values()) {
      // Closing already (its close event removes it); ping() would throw.
      if (stream.ws.readyState !== stream.ws.OPEN) continue;
      if (!stream.alive) {
        // docs/webtorrent.md "A gateway that dies": a gateway that vanished without a close.
        this.#log.warn({ gateway: stream.gateway }, 'relay stream answered no ping: cut');
        stream.ws.terminate();
        continue;
      }
      stream.alive = false;
      stream.ws.ping();
    }
  }
}
