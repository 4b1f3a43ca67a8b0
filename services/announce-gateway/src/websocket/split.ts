// WebSocket peers of the split topology (docs/webtorrent.md "The split
// topology"): the swarms are storage-api's, reached with the batch's ws ops
// (batched and behind the breaker like announces), and offers and answers
// for other gateways travel on one long-lived WebSocket to storage-api, which
// also pushes this gateway's on it. storage-api down or restarting does not
// take WebSocket serving down: announces answer the coded "retry later" of
// any store failure, relays fail (counted) and the stream is opened again
// with backoff.
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { WebSocket, type RawData } from 'ws';
import { StoreError } from '@shoal/storage';
import { ROUTES } from '@shoal/storage-api-contract';
import {
  STREAM_MAX_PAYLOAD,
  decodeStreamFrame,
  encodeSendFrame,
  frameBatches,
  type RelayHandler,
  type RelayMessage,
  type WsPlace,
  type WsRelay,
  type WsSwarmStore,
} from '@shoal/storage/ws';
import type { RemoteStore } from '../remote/store.ts';

/** The WebSocket swarms in storage-api, through the remote store's batcher. */
export function remoteWsSwarms(store: RemoteStore, peerLifetimeSeconds: number): WsSwarmStore {
  return {
    driver: 'remote',
    announce: async (a) => {
      const r = await store.ws({
        op: 'wsAnnounce',
        infoHash: a.infoHash,
        peerId: a.peerId,
        seeder: a.seeder,
        event: a.event,
        numWant: Math.min(a.numWant, 0xffff),
        lifetimeSeconds: Math.max(1, Math.round(a.lifetimeSeconds ?? peerLifetimeSeconds)),
        gateway: a.gateway,
      });
      if (r.op !== 'wsAnnounce') throw mismatch();
      return {
        seeders: r.seeders,
        leechers: r.leechers,
        downloaded: r.downloaded,
        peers: NO_PEERS,
        peerIds: undefined,
        targets: r.targets,
      };
    },
    scrape: async (infoHashes) => {
      const counts = [];
      // One op carries at most 255 hashes (u8 n).
      for (let i = 0; i < infoHashes.length; i += 255) {
        const r = await store.ws({ op: 'wsScrape', infoHashes: infoHashes.slice(i, i + 255) });
        if (r.op !== 'wsScrape') throw mismatch();
        counts.push(...r.counts);
      }
      return counts;
    },
    holder: async (infoHash, peerId) => {
      const r = await store.ws({ op: 'wsHolder', infoHash, peerId });
      if (r.op !== 'wsHolder') throw mismatch();
      return r.gateway;
    },
    leave: async (gateway, peers) => {
      for (let i = 0; i < peers.length; i += 0xffff)
        await store.ws({ op: 'wsLeave', gateway, peers: peers.slice(i, i + 0xffff) });
    },
    close: () => Promise.resolve(),
  };
}

function mismatch(): StoreError {
  return new StoreError('STORE_ERR_UNAVAILABLE', 'storage-api answered another kind of result');
}

const NO_PEERS = Buffer.alloc(0);

export interface RelayStreamMetrics {
  open(up: boolean): void;
  connect(outcome: 'opened' | 'failed' | 'lost'): void;
}

export function createRelayStreamMetrics(registry: Registry): RelayStreamMetrics {
  const open = new Gauge({
    name: 'shoal_ws_relay_streams_open',
    help: 'WebSocket relay streams to storage-api open now (STORAGE_DRIVER=remote; one per worker thread).',
    registers: [registry],
  });
  open.set(0);
  const connects = new Counter({
    name: 'shoal_ws_relay_stream_connects_total',
    help: 'Relay stream events: opened, failed (an attempt that did not open), lost (an open stream that ended).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const o of ['opened', 'failed', 'lost']) connects.labels(o).inc(0);
  return {
    open: (up) => open.set(up ? 1 : 0),
    connect: (outcome) => connects.labels(outcome).inc(),
  };
}

export interface StreamRelayOptions {
  /** storage-api's `http(s)://host:port` (STORAGE_API_URL). */
  url: string;
  token: string;
  /** An acknowledgement not back within this is a lost stream (REMOTE_TIMEOUT_MS). */
  timeoutMs: number;
  /** Messages waiting to be sent or acknowledged (WS_RELAY_QUEUE_MAX). */
  queueMax: number;
  /** Longest backoff between attempts (WS_RELAY_RECONNECT_MAX_MS). */
  reconnectMaxMs: number;
  metrics: RelayStreamMetrics;
  logger: Logger;
  random?: () => number;
}

interface Outgoing {
  gateway: string;
  message: RelayMessage;
  resolve: (delivered: boolean) => void;
  reject: (err: Error) => void;
}

interface Awaiting {
  items: Outgoing[];
  timer: NodeJS.Timeout;
}

const RECONNECT_MIN_MS = 100;

/**
 * The WsRelay of a gateway of the split topology: one stream, opened by
 * listen() and kept open (reconnecting with backoff) until unlisten(). Sends
 * of one turn leave in one frame; storage-api acknowledges each message as
 * handed on or gone.
 */
export class StreamRelay implements WsRelay {
  readonly #o: StreamRelayOptions;
  readonly #log: Logger;
  readonly #random: () => number;
  #gateway: string | undefined;
  #handler: RelayHandler | undefined;
  #ws: WebSocket | undefined;
  #open = false;
  #attempt = 0;
  #retry: NodeJS.Timeout | undefined;
  #queue: Outgoing[] = [];
  readonly #awaiting = new Map<number, Awaiting>();
  #awaitingCount = 0;
  #seq = 0;
  #scheduled = false;
  readonly #flush = (): void => {
    this.#scheduled = false;
    this.#sendQueued();
  };

  constructor(options: StreamRelayOptions) {
    this.#o = options;
    this.#log = options.logger.child({ module: 'ws-relay-stream' });
    this.#random = options.random ?? Math.random;
  }

  /** Whether the stream is open now. */
  get isOpen(): boolean {
    return this.#open;
  }

  send(gateway: string, message: RelayMessage): Promise<boolean> {
    if (!this.#open) return Promise.reject(UNAVAILABLE);
    if (this.#queue.length + this.#awaitingCount >= this.#o.queueMax)
      return Promise.reject(QUEUE_FULL);
    return new Promise<boolean>((resolve, reject) => {
      this.#queue.push({ gateway, message, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  /**
   * Opens the stream for `gateway` and resolves once the first attempt has
   * opened or failed: a storage-api that is down delays nothing, the stream
   * keeps trying in the background.
   */
  listen(gateway: string, handler: RelayHandler): Promise<void> {
    this.#gateway = gateway;
    this.#handler = handler;
    return new Promise((resolve) => this.#connect(resolve));
  }

  unlisten(): Promise<void> {
    return this.close();
  }

  close(): Promise<void> {
    this.#gateway = undefined;
    this.#handler = undefined;
    clearTimeout(this.#retry);
    const ws = this.#ws;
    this.#ws = undefined;
    this.#lost();
    if (ws === undefined || ws.readyState === ws.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1001, 'gateway stopping');
      // A storage-api that does not answer the close handshake.
      setTimeout(() => ws.terminate(), this.#o.timeoutMs).unref();
    });
  }

  #connect(settled?: () => void): void {
    const gateway = this.#gateway;
    if (gateway === undefined) {
      settled?.();
      return;
    }
    const url = new URL(this.#o.url);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.pathname = ROUTES.wsRelayPrefix + gateway;
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.#o.token}` },
      handshakeTimeout: this.#o.timeoutMs,
      perMessageDeflate: false,
      maxPayload: STREAM_MAX_PAYLOAD,
    });
    this.#ws = ws;
    let opened = false;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      opened = true;
      this.#open = true;
      this.#attempt = 0;
      this.#o.metrics.open(true);
      this.#o.metrics.connect('opened');
      this.#log.info({ gateway }, 'relay stream to storage-api open');
      settled?.();
    });
    ws.on('message', (data: RawData, isBinary: boolean) => this.#message(ws, data, isBinary));
    ws.on('unexpected-response', (_req, res) => {
      this.#log.warn({ status: res.statusCode }, 'storage-api refused the relay stream');
      ws.terminate();
    });
    ws.on('error', (err) => this.#log.debug({ err }, 'relay stream error'));
    ws.on('close', () => {
      settled?.();
      // A stream replaced since (close() then listen() again) ends without touching the new one.
      if (this.#ws !== ws && this.#ws !== undefined) return;
      this.#ws = undefined;
      this.#lost();
      if (this.#gateway === undefined) return;
      if (opened) {
        this.#o.metrics.connect('lost');
        this.#log.warn({ gateway }, 'relay stream to storage-api lost; opening it again');
      } else this.#o.metrics.connect('failed');
      this.#scheduleReconnect();
    });
  }

  #scheduleReconnect(): void {
    const ceiling = Math.min(this.#o.reconnectMaxMs, RECONNECT_MIN_MS * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    const delay = Math.round(ceiling * (0.5 + this.#random() / 2));
    this.#retry = setTimeout(() => this.#connect(), delay);
    this.#retry.unref();
  }

  /** The stream ended: everything waiting on it fails (the browsers announce again). */
  #lost(): void {
    if (this.#open) this.#o.metrics.open(false);
    this.#open = false;
    const queue = this.#queue;
    this.#queue = [];
    for (const item of queue) item.reject(UNAVAILABLE);
    for (const awaiting of this.#awaiting.values()) {
      clearTimeout(awaiting.timer);
      for (const item of awaiting.items) item.reject(UNAVAILABLE);
    }
    this.#awaiting.clear();
    this.#awaitingCount = 0;
  }

  #sendQueued(): void {
    const ws = this.#ws;
    const queue = this.#queue;
    this.#queue = [];
    if (ws === undefined || !this.#open) {
      for (const item of queue) item.reject(UNAVAILABLE);
      return;
    }
    // The frame text's UTF-16 length: within 3x of its bytes, enough to keep frames near 1 MiB.
    for (const items of frameBatches(queue, (item) => 80 + item.message.frame.length)) {
      const seq = (this.#seq = (this.#seq + 1) >>> 0);
      const timer = setTimeout(() => {
        // No acknowledgement in time: the stream is as good as lost.
        this.#log.warn('storage-api acknowledged no relay batch in time; reopening the stream');
        ws.terminate();
      }, this.#o.timeoutMs);
      this.#awaiting.set(seq, { items, timer });
      this.#awaitingCount += items.length;
      ws.send(encodeSendFrame(seq, items));
    }
  }

  #message(ws: WebSocket, data: RawData, isBinary: boolean): void {
    const frame = isBinary && Buffer.isBuffer(data) ? decodeStreamFrame(data) : undefined;
    if (frame === undefined || frame.type === 'send') {
      this.#log.warn('storage-api sent a relay frame that does not decode; reopening the stream');
      ws.terminate();
      return;
    }
    if (frame.type === 'deliver') {
      const handler = this.#handler;
      if (handler !== undefined) for (const m of frame.messages) handler(m);
      return;
    }
    const awaiting = this.#awaiting.get(frame.seq);
    if (awaiting === undefined) return;
    this.#awaiting.delete(frame.seq);
    clearTimeout(awaiting.timer);
    this.#awaitingCount -= awaiting.items.length;
    awaiting.items.forEach((item, k) => item.resolve(frame.gone[k] !== true));
  }
}

const UNAVAILABLE = new StoreError('STORE_ERR_UNAVAILABLE', 'relay stream to storage-api is down');
const QUEUE_FULL = new StoreError(
  'STORE_ERR_UNAVAILABLE',
  'too many relayed messages waiting for storage-api (WS_RELAY_QUEUE_MAX)',
);

/** The split topology's place for a gateway's WebSocket peers. */
export function remoteWsPlace(
  store: RemoteStore,
  options: Omit<StreamRelayOptions, 'metrics'> & {
    registry: Registry;
    peerLifetimeSeconds: number;
  },
): WsPlace {
  const relay = new StreamRelay({
    ...options,
    metrics: createRelayStreamMetrics(options.registry),
  });
  return {
    swarms: remoteWsSwarms(store, options.peerLifetimeSeconds),
    relay,
    close: () => relay.close(),
  };
}
