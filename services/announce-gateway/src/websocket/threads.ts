// WebSocket peers of a gateway's worker threads (docs/webtorrent.md "Worker
// threads"): where no Redis carries them between gateways, the main thread
// keeps the process's one set of WebSocket swarms and its relay, and each
// worker reaches them through a MessagePort. Browsers on two threads of one
// pod then meet as browsers on one thread do.
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { SwarmCounts } from '@shoal/storage';
import type { WsPlace } from '@shoal/storage/ws';
import {
  LocalRelay,
  MemoryWsSwarms,
  type RelayHandler,
  type RelayMessage,
  type WsAnnounceResult,
  type WsPeerAnnounce,
  type WsPeerKey,
  type WsRelay,
  type WsSwarmStore,
} from '@shoal/storage/ws';

type Call =
  | { op: 'announce'; a: WsPeerAnnounce }
  | { op: 'scrape'; infoHashes: readonly Buffer[] }
  | { op: 'holder'; infoHash: Buffer; peerId: Buffer }
  | { op: 'leave'; gateway: string; peers: readonly WsPeerKey[] }
  | { op: 'send'; gateway: string; message: RelayMessage }
  | { op: 'listen'; gateway: string }
  | { op: 'unlisten'; gateway: string };

type Request = Call & { id: number };
type Reply = { id: number; result?: unknown; error?: string };
type Delivery = { deliver: string; message: RelayMessage };

/**
 * Structured clone turns a Buffer into a plain Uint8Array: the Buffers of a
 * message that crossed a port come back as Buffers (same memory, no copy).
 */
function revive(value: unknown, depth = 0): unknown {
  if (value instanceof Uint8Array && !Buffer.isBuffer(value))
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (depth > 3 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => revive(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = revive(v, depth + 1);
  return out;
}

export interface WsThreadHubOptions {
  peerLifetimeSeconds: number;
  /** How often the main thread drops expired WebSocket peers. */
  sweepEveryMs: number;
  clock?: () => number;
}

/** The main thread's side: the swarms and the relay, served to each worker over its own port. */
export class WsThreadHub {
  readonly swarms: MemoryWsSwarms;
  readonly relay = new LocalRelay();
  readonly #ports = new Set<MessagePort>();
  readonly #timer: NodeJS.Timeout;

  constructor(options: WsThreadHubOptions) {
    this.swarms = new MemoryWsSwarms({
      peerLifetimeSeconds: options.peerLifetimeSeconds,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
    this.#timer = setInterval(() => this.swarms.sweep(), options.sweepEveryMs);
    this.#timer.unref();
  }

  /**
   * A port for one worker (pass it in the worker's transferList). When the
   * worker exits its port closes, and the gateways it listened as stop
   * listening: offers to its peers then find nobody, and the senders take
   * those peers out (docs/webtorrent.md "A gateway that dies").
   */
  connect(): MessagePort {
    const { port1, port2 } = new MessageChannel();
    const listening = new Set<string>();
    this.#ports.add(port1);
    port1.on('message', (raw: Request) => {
      const request = revive(raw) as Request;
      void this.#serve(request, port1, listening).then(
        (result) => port1.postMessage({ id: request.id, result } satisfies Reply),
        (err: unknown) =>
          port1.postMessage({
            id: request.id,
            error: err instanceof Error ? err.message : String(err),
          } satisfies Reply),
      );
    });
    port1.once('close', () => {
      this.#ports.delete(port1);
      for (const gateway of listening) void this.relay.unlisten(gateway);
      listening.clear();
    });
    return port2;
  }

  async #serve(call: Call, port: MessagePort, listening: Set<string>): Promise<unknown> {
    switch (call.op) {
      case 'announce':
        return this.swarms.announce(call.a);
      case 'scrape':
        return this.swarms.scrape(call.infoHashes);
      case 'holder':
        return this.swarms.holder(call.infoHash, call.peerId);
      case 'leave':
        return this.swarms.leave(call.gateway, call.peers);
      case 'send':
        return this.relay.send(call.gateway, call.message);
      case 'listen': {
        listening.add(call.gateway);
        const gateway = call.gateway;
        return this.relay.listen(gateway, (message) =>
          port.postMessage({ deliver: gateway, message } satisfies Delivery),
        );
      }
      case 'unlisten':
        listening.delete(call.gateway);
        return this.relay.unlisten(call.gateway);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    for (const port of this.#ports) port.close();
    this.#ports.clear();
    await this.relay.close();
    await this.swarms.close();
  }
}

/** A worker's side: the WsSwarmStore and WsRelay of the main thread's hub, over `port`. */
export function threadWsPlace(port: MessagePort): WsPlace {
  let nextId = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const handlers = new Map<string, RelayHandler>();
  let closed = false;
  port.on('message', (raw: Reply | Delivery) => {
    if ('deliver' in raw) {
      handlers.get(raw.deliver)?.(revive(raw.message) as RelayMessage);
      return;
    }
    const w = waiting.get(raw.id);
    if (w === undefined) return;
    waiting.delete(raw.id);
    if (raw.error !== undefined) w.reject(new Error(raw.error));
    else w.resolve(revive(raw.result));
  });
  port.once('close', () => {
    closed = true;
    for (const w of waiting.values())
      w.reject(new Error('WebSocket swarms of the main thread are gone'));
    waiting.clear();
  });
  const call = <T>(c: Call): Promise<T> => {
    if (closed) return Promise.reject(new Error('WebSocket swarms of the main thread are gone'));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      port.postMessage({ ...c, id });
    });
  };
  const swarms: WsSwarmStore = {
    driver: 'memory',
    announce: (a) => call<WsAnnounceResult>({ op: 'announce', a }),
    scrape: (infoHashes) => call<SwarmCounts[]>({ op: 'scrape', infoHashes }),
    holder: (infoHash, peerId) => call<string | undefined>({ op: 'holder', infoHash, peerId }),
    leave: (gateway, peers) => call<void>({ op: 'leave', gateway, peers }),
    close: () => Promise.resolve(),
  };
  const relay: WsRelay = {
    send: (gateway, message) => call<boolean>({ op: 'send', gateway, message }),
    listen: async (gateway, handler) => {
      handlers.set(gateway, handler);
      await call<void>({ op: 'listen', gateway });
    },
    unlisten: async (gateway) => {
      handlers.delete(gateway);
      if (!closed) await call<void>({ op: 'unlisten', gateway });
    },
    close: () => Promise.resolve(),
  };
  return {
    swarms,
    relay,
    close: () => {
      closed = true;
      port.close();
      return Promise.resolve();
    },
  };
}
