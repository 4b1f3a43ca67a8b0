// The WebTorrent WebSocket tracker: the gateway's third frontend of the
// tracker core (docs/architecture.md, docs/webtorrent.md). It takes the
// upgrades of the announce routes on the HTTP (and HTTPS) port, decodes JSON
// messages, runs each announce, answer and scrape through the core (the same
// policy chain as HTTP and UDP) over the WebSocket swarms, and relays offers
// and answers to the gateway holding the recipient's socket.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { LEFT_UNKNOWN, type AnnounceRequest, type PeerAnnounce } from '@shoal/protocol';
import { PolicyError } from '@shoal/policy';
import {
  decodeWsRequest,
  encodeWsAnnounceResponse,
  encodeWsAnswer,
  encodeWsFailure,
  encodeWsOfferWithTail,
  encodeWsScrapeResponse,
  wsFailureTarget,
  wsRelayTail,
  type WsAnnounce,
  type WsScrape,
} from '@shoal/protocol/websocket';
import type { ClientAddressResolver, PeerAddress } from '../client-address.ts';
import type { GatewayConfig } from '../config.ts';
import { queryParam } from '../credentials.ts';
import type { GatewayMetrics } from '../metrics.ts';
import { Tracker, type TrackerStore } from '../tracker/core.ts';
import { describeRefusal, refusalCounter, type RefusalCounter } from '../tracker/refusal.ts';
import type { AnnounceContext, ScrapeContext, Step } from '../tracker/types.ts';
import type { WsMetrics } from './metrics.ts';
import {
  MemoryWsSwarms,
  isWsAnnounceResult,
  relayNow,
  type RelayMessage,
  type WsPeerKey,
  type WsRelay,
  type WsSwarmStore,
} from '@shoal/storage/ws';

export interface WsFrontendDeps {
  config: GatewayConfig;
  logger: Logger;
  metrics: GatewayMetrics;
  wsMetrics: WsMetrics;
  /** The gateway's steps: the WebSocket core shares them (and their rate-limit buckets) with HTTP and UDP. */
  steps: readonly Step[];
  swarms: WsSwarmStore;
  relay: WsRelay;
  /** This process's id in the swarms and on the relay (docs/webtorrent.md "Design"). */
  gateway: string;
  resolveAddress: ClientAddressResolver;
  clock: () => number;
}

const RATE_LIMITED = new PolicyError('POLICY_ERR_RATE_LIMITED');
/** How long close() waits for clients to answer the close frame before cutting the rest. */
const CLOSE_GRACE_MS = 2000;

/** One client socket; kept small: a gateway holds tens of thousands (docs/webtorrent.md "Limits"). */
class Connection {
  readonly socket: WebSocket;
  /** The upgraded TCP (or TLS) stream under `socket`: corked while frames for it gather (#write). */
  readonly stream: Duplex;
  /** Frames written since the stream was corked, uncorked at the end of this event-loop turn. */
  corked = false;
  readonly source: PeerAddress;
  readonly port: number;
  readonly passkey: string | undefined;
  readonly jwt: string | undefined;
  tokens: number;
  refilledAt: number;
  lastMessageAt: number;
  alive = true;
  closed = false;
  /** The swarms this socket announced in: index key -> its peer. */
  joined: Map<string, WsPeerKey> | undefined;

  constructor(
    socket: WebSocket,
    stream: Duplex,
    source: PeerAddress,
    port: number,
    credentials: { passkey: string | undefined; jwt: string | undefined },
    burst: number,
    now: number,
  ) {
    this.socket = socket;
    this.stream = stream;
    this.source = source;
    this.port = port;
    this.passkey = credentials.passkey;
    this.jwt = credentials.jwt;
    this.tokens = burst;
    this.refilledAt = now;
    this.lastMessageAt = now;
  }
}

/** What an announce and a scrape of one connection share: its address and credentials. */
class WsRequestContext<M> {
  readonly now: number;
  protected readonly conn: Connection;
  protected readonly message: M;

  constructor(conn: Connection, message: M, now: number) {
    this.conn = conn;
    this.message = message;
    this.now = now;
  }

  source(): PeerAddress {
    return this.conn.source;
  }

  passkey(): string | undefined {
    return this.conn.passkey;
  }
}

class WsAnnounceContext extends WsRequestContext<WsAnnounce> implements AnnounceContext {
  interval = 0;
  shed?: boolean;

  jwt(): string | undefined {
    return this.conn.jwt;
  }

  request(): AnnounceRequest {
    const m = this.message;
    const offers = m.offers.length;
    return {
      infoHash: m.infoHash,
      peerId: m.peerId,
      // A browser has no listening port; the socket's keeps the core's port-0 rule meaningless here.
      port: this.conn.port,
      uploaded: 0n,
      downloaded: 0n,
      left: m.seeder ? 0n : LEFT_UNKNOWN,
      event: m.event,
      // Offers are what is relayed: never more recipients than offers (bittorrent-tracker, aquatic_ws).
      numWant: m.numWant === undefined ? offers : Math.min(m.numWant, offers),
      compact: true,
      noPeerId: false,
      paused: m.paused,
      key: undefined,
      ip: undefined,
    };
  }

  peer(): PeerAddress {
    return this.conn.source;
  }
}

class WsScrapeContext extends WsRequestContext<WsScrape> implements ScrapeContext {
  infoHashes(): readonly Buffer[] {
    return this.message.infoHashes;
  }
}

/** The local index's key of one peer in one swarm. */
function peerKey(infoHash: Buffer, peerId: Buffer): string {
  return infoHash.toString('latin1') + peerId.toString('latin1');
}

function text(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

function reject(socket: Duplex, status: 404 | 503 | 400, message: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${message.length}\r\n\r\n${message}`,
  );
  socket.destroy();
}

export class WsFrontend {
  readonly gateway: string;
  readonly #deps: WsFrontendDeps;
  readonly #config: GatewayConfig;
  readonly #log: Logger;
  readonly #tracker: Tracker;
  readonly #server: WebSocketServer;
  readonly #connections = new Set<Connection>();
  /** Who holds each peer's socket on this gateway: peerKey -> connection. */
  readonly #index = new Map<string, Connection>();
  readonly #refusals: RefusalCounter;
  readonly #pending = new Set<Promise<void>>();
  readonly #ratePerMs: number;
  /** Connections whose stream #write corked in this event-loop turn. */
  #corked: Connection[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closing = false;
  #disconnecting: Promise<void> | undefined;
  #shutdown: Promise<void> | undefined;

  constructor(deps: WsFrontendDeps) {
    this.#deps = deps;
    this.#config = deps.config;
    this.gateway = deps.gateway;
    this.#log = deps.logger;
    const { config, swarms, gateway } = deps;
    this.#tracker = new Tracker({
      storage: coreStore(swarms, gateway),
      steps: deps.steps,
      policy: { numWantDefault: 0, numWantMax: config.WS_MAX_OFFERS },
      intervalSeconds: config.WS_ANNOUNCE_INTERVAL_SECONDS,
    });
    this.#server = new WebSocketServer({
      noServer: true,
      maxPayload: config.WS_MAX_MESSAGE_BYTES,
      clientTracking: false,
      perMessageDeflate: false,
    });
    this.#refusals = refusalCounter('ws', deps.metrics, deps.logger);
    this.#ratePerMs = config.WS_MESSAGES_PER_SECOND / 1000;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Takes the WebSocket upgrades of `server` (the HTTP or HTTPS tracker's). */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
  }

  /** Starts the ping and idle timer and listens on the relay for this gateway's messages. */
  async start(): Promise<void> {
    await this.#deps.relay.listen(this.gateway, (m) => this.#deliver(m, 'remote'));
    const every = this.#config.WS_PING_INTERVAL_SECONDS * 1000;
    this.#timer = setInterval(() => this.#heartbeat(), every);
    this.#timer.unref();
  }

  /**
   * Closes every socket (1001, going away) and their peers leave their
   * swarms; resolves once every socket is closed. The rest of the gateway
   * drains after this, so it never waits on the relay's store.
   */
  disconnect(): Promise<void> {
    this.#disconnecting ??= this.#disconnect();
    return this.#disconnecting;
  }

  /** disconnect(), then waits for the store work in flight and stops listening on the relay. */
  close(): Promise<void> {
    this.#shutdown ??= (async () => {
      await this.disconnect();
      await Promise.allSettled([...this.#pending]);
      await this.#deps.relay.unlisten(this.gateway);
    })();
    return this.#shutdown;
  }

  async #disconnect(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#timer);
    const open = [...this.#connections];
    await new Promise<void>((resolve) => {
      if (open.length === 0) return resolve();
      let left = open.length;
      const done = () => {
        if (--left === 0) resolve();
      };
      const cut = setTimeout(() => {
        for (const c of open) if (!c.closed) c.socket.terminate();
      }, CLOSE_GRACE_MS);
      cut.unref();
      for (const c of open) {
        if (c.closed) done();
        else {
          c.socket.once('close', done);
          c.socket.close(1001, 'tracker shutting down');
        }
      }
    });
    this.#server.close();
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { wsMetrics } = this.#deps;
    socket.on('error', () => socket.destroy());
    if (this.#closing) {
      wsMetrics.refused('closing');
      return reject(socket, 503, 'Service Unavailable');
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const passkey = this.#route(q === -1 ? url : url.slice(0, q));
    if (passkey === false) {
      wsMetrics.refused('not_found');
      return reject(socket, 404, 'Not Found');
    }
    if (this.#connections.size >= this.#config.WS_MAX_CONNECTIONS) {
      wsMetrics.refused('capacity');
      return reject(socket, 503, 'Service Unavailable');
    }
    const headers = req.headers;
    const source = this.#deps.resolveAddress({
      socket: req.socket.remoteAddress,
      forwardedFor: headers['x-forwarded-for'],
      realIp: headers['x-real-ip'],
      ipParam: undefined,
    });
    if (source === undefined) return reject(socket, 400, 'Bad Request');
    const port = req.socket.remotePort ?? 1;
    const jwt = q === -1 ? undefined : queryParam(url.slice(q + 1), 'jwt');
    this.#server.handleUpgrade(req, socket, head, (ws) => {
      this.#open(ws, socket, source, port, { passkey, jwt });
    });
  }

  /** The passkey of an announce route (`<route>/<passkey>`), undefined on the bare route, false on no route. */
  #route(path: string): string | undefined | false {
    for (const route of this.#config.ANNOUNCE_ROUTES) {
      const base = route.endsWith('/') ? route.slice(0, -1) : route;
      if (path === base || path === `${base}/`) return undefined;
      if (path.startsWith(`${base}/`)) {
        let rest = path.slice(base.length + 1);
        if (rest.endsWith('/')) rest = rest.slice(0, -1);
        if (rest.length > 0 && !rest.includes('/')) {
          try {
            return decodeURIComponent(rest);
          } catch {
            return rest;
          }
        }
      }
    }
    return false;
  }

  #open(
    socket: WebSocket,
    stream: Duplex,
    source: PeerAddress,
    port: number,
    credentials: { passkey: string | undefined; jwt: string | undefined },
  ): void {
    const conn = new Connection(
      socket,
      stream,
      source,
      port,
      credentials,
      this.#config.WS_MESSAGE_BURST,
      this.#deps.clock(),
    );
    this.#connections.add(conn);
    this.#deps.wsMetrics.connectionOpened();
    socket.on('message', (data) => this.#message(conn, data));
    socket.on('pong', () => (conn.alive = true));
    socket.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
        this.#deps.wsMetrics.closedBy('too_big');
    });
    socket.once('close', () => this.#closed(conn));
  }

  #closed(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    this.#connections.delete(conn);
    this.#deps.wsMetrics.connectionClosed();
    const joined = conn.joined;
    if (joined === undefined) return;
    const leaving: WsPeerKey[] = [];
    for (const [key, peer] of joined) {
      // A peer that re-announced through another socket since belongs to that one now.
      if (this.#index.get(key) !== conn) continue;
      this.#index.delete(key);
      leaving.push(peer);
    }
    conn.joined = undefined;
    if (leaving.length > 0) this.#leave(leaving);
  }

  #leave(peers: WsPeerKey[], gateway: string = this.gateway): void {
    let left: void | Promise<void>;
    try {
      left = this.#deps.swarms.leave(gateway, peers);
    } catch (err) {
      this.#log.warn({ err }, 'WebSocket peers could not leave their swarms');
      return;
    }
    if (!(left instanceof Promise)) return;
    const pending: Promise<void> = left.then(
      () => void this.#pending.delete(pending),
      (err: unknown) => {
        this.#pending.delete(pending);
        // docs/webtorrent.md "A gateway that dies": the peers expire after WS_PEER_LIFETIME_SECONDS.
        this.#log.warn({ err }, 'WebSocket peers could not leave their swarms');
      },
    );
    this.#pending.add(pending);
  }

  #message(conn: Connection, data: RawData): void {
    const now = this.#deps.clock();
    conn.lastMessageAt = now;
    conn.alive = true;
    const frame = text(data);
    if (!this.#take(conn, now)) {
      this.#deps.wsMetrics.rateLimited();
      const target = wsFailureTarget(frame);
      this.#refuse(conn, RATE_LIMITED, target.action, target.infoHash);
      return;
    }
    let message;
    try {
      message = decodeWsRequest(frame, {
        maxOffers: this.#config.WS_MAX_OFFERS,
        maxHashes: this.#config.SCRAPE_MAX_HASHES,
      });
    } catch (err) {
      const target = wsFailureTarget(frame);
      this.#refuse(conn, err, target.action, target.infoHash);
      return;
    }
    if (message.action === 'scrape') void this.#scrape(conn, message, now);
    else if (message.answer !== undefined) void this.#answer(conn, message, now);
    else void this.#announce(conn, message, now);
  }

  /** The per-connection token bucket (WS_MESSAGES_PER_SECOND, WS_MESSAGE_BURST). */
  #take(conn: Connection, now: number): boolean {
    const burst = this.#config.WS_MESSAGE_BURST;
    const tokens = Math.min(burst, conn.tokens + (now - conn.refilledAt) * this.#ratePerMs);
    conn.refilledAt = now;
    if (tokens < 1) {
      conn.tokens = tokens;
      return false;
    }
    conn.tokens = tokens - 1;
    return true;
  }

  async #announce(conn: Connection, message: WsAnnounce, now: number): Promise<void> {
    const start = performance.now();
    const arrived = relayNow();
    const { metrics } = this.#deps;
    const ctx = new WsAnnounceContext(conn, message, now);
    try {
      let result = this.#tracker.announce(ctx);
      if (result instanceof Promise) result = await result;
      const key = peerKey(message.infoHash, message.peerId);
      if (message.event === 'stopped') {
        if (this.#index.get(key) === conn) this.#index.delete(key);
        conn.joined?.delete(key);
      } else if (conn.closed) {
        // The socket closed while the store answered: its close found nothing to take out.
        this.#leave([{ infoHash: message.infoHash, peerId: message.peerId }]);
        return;
      } else {
        this.#index.set(key, conn);
        (conn.joined ??= new Map()).set(key, {
          infoHash: message.infoHash,
          peerId: message.peerId,
        });
      }
      this.#answerClient(
        conn,
        encodeWsAnnounceResponse({
          infoHash: message.infoHash,
          interval: ctx.interval,
          complete: result.seeders,
          incomplete: result.leechers,
        }),
      );
      if (isWsAnnounceResult(result) && result.targets.length > 0) {
        const targets = result.targets;
        const tail = wsRelayTail(message.infoHash, message.peerId);
        for (let i = 0; i < targets.length && i < message.offers.length; i++) {
          const target = targets[i]!;
          this.#relay(target.gateway, {
            kind: 'offer',
            infoHash: message.infoHash,
            peerId: target.peerId,
            frame: encodeWsOfferWithTail(message.offers[i]!, tail),
            sentAt: arrived,
          });
        }
      }
      metrics.request('ws', 'announce', 'ok').inc();
      metrics.observe('ws', 'announce', start);
    } catch (err) {
      metrics.observe('ws', 'announce', start);
      this.#refuse(conn, err, 'announce', message.infoHash);
    }
  }

  /** A WebRTC answer: the chain's checks, no swarm change, and no reply (bittorrent-tracker's server sends none). */
  async #answer(conn: Connection, message: WsAnnounce, now: number): Promise<void> {
    const start = performance.now();
    const arrived = relayNow();
    const answer = message.answer!;
    const { metrics, wsMetrics } = this.#deps;
    try {
      const authorized = this.#tracker.authorize(new WsAnnounceContext(conn, message, now));
      if (authorized instanceof Promise) await authorized;
      const relayed: RelayMessage = {
        kind: 'answer',
        infoHash: message.infoHash,
        peerId: answer.toPeerId,
        frame: encodeWsAnswer(message.infoHash, message.peerId, answer),
        sentAt: arrived,
      };
      if (this.#index.has(peerKey(message.infoHash, answer.toPeerId))) {
        this.#deliver(relayed, 'local');
      } else {
        const holder = await this.#deps.swarms.holder(message.infoHash, answer.toPeerId);
        if (holder === undefined) wsMetrics.dropped('answer', 'no_peer');
        else this.#relay(holder, relayed);
      }
      metrics.request('ws', 'announce', 'ok').inc();
      metrics.observe('ws', 'announce', start);
    } catch (err) {
      metrics.observe('ws', 'announce', start);
      this.#refuse(conn, err, 'announce', message.infoHash);
    }
  }

  async #scrape(conn: Connection, message: WsScrape, now: number): Promise<void> {
    const start = performance.now();
    const { metrics } = this.#deps;
    try {
      const files = await this.#tracker.scrape(new WsScrapeContext(conn, message, now));
      this.#answerClient(
        conn,
        encodeWsScrapeResponse(files, this.#config.WS_ANNOUNCE_INTERVAL_SECONDS),
      );
      metrics.request('ws', 'scrape', 'ok').inc();
      metrics.observe('ws', 'scrape', start);
    } catch (err) {
      metrics.observe('ws', 'scrape', start);
      this.#refuse(conn, err, 'scrape', message.infoHashes[0]);
    }
  }

  #refuse(
    conn: Connection,
    err: unknown,
    action: 'announce' | 'scrape' | undefined,
    infoHash: Buffer | undefined,
  ): void {
    const refusal = describeRefusal(err);
    this.#refusals.count(action ?? 'announce', refusal, err, {});
    this.#answerClient(conn, encodeWsFailure(refusal.reason, action, infoHash));
  }

  /** The client's own answers: a client that reads none of them is closed rather than buffered for. */
  #answerClient(conn: Connection, frame: string): void {
    if (conn.closed) return;
    if (conn.socket.bufferedAmount > this.#config.WS_MAX_BUFFERED_BYTES) {
      this.#deps.wsMetrics.closedBy('backpressure');
      conn.socket.terminate();
      return;
    }
    this.#write(conn, frame);
  }

  /**
   * Sends one frame, gathered with the others for the same socket in this
   * event-loop turn into one write (docs/webtorrent.md "Performance"): ws
   * writes each frame with a writev of its own, the larger part of an
   * announce's cost.
   */
  #write(conn: Connection, frame: string): void {
    if (!conn.corked) {
      conn.corked = true;
      conn.stream.cork();
      if (this.#corked.push(conn) === 1) setImmediate(this.#uncork);
    }
    conn.socket.send(frame);
  }

  readonly #uncork = (): void => {
    const corked = this.#corked;
    this.#corked = [];
    for (const conn of corked) {
      conn.corked = false;
      conn.stream.uncork();
    }
  };

  /** To the gateway holding the recipient: this one at once, another through the relay. */
  #relay(gateway: string, message: RelayMessage): void {
    if (gateway === this.gateway) {
      this.#deliver(message, 'local');
      return;
    }
    let sent: boolean | Promise<boolean>;
    try {
      sent = this.#deps.relay.send(gateway, message);
    } catch (err) {
      this.#log.warn({ err }, 'relay failed');
      this.#deps.wsMetrics.dropped(message.kind, 'unavailable');
      return;
    }
    if (sent instanceof Promise)
      sent.then(
        (ok) => this.#sent(gateway, message, ok),
        (err: unknown) => {
          this.#log.warn({ err }, 'relay failed');
          this.#deps.wsMetrics.dropped(message.kind, 'unavailable');
        },
      );
    else this.#sent(gateway, message, sent);
  }

  /** docs/webtorrent.md "A gateway that dies": no gateway listens any more, so its peer leaves the swarm now. */
  #sent(gateway: string, message: RelayMessage, ok: boolean): void {
    if (ok) return;
    this.#deps.wsMetrics.dropped(message.kind, 'gone');
    this.#leave([{ infoHash: message.infoHash, peerId: message.peerId }], gateway);
  }

  /** Writes a relayed offer or answer to the recipient's socket, unless that socket is backed up. */
  #deliver(message: RelayMessage, scope: 'local' | 'remote'): void {
    const { wsMetrics } = this.#deps;
    const conn = this.#index.get(peerKey(message.infoHash, message.peerId));
    if (conn === undefined || conn.closed) {
      wsMetrics.dropped(message.kind, 'no_socket');
      return;
    }
    if (conn.socket.bufferedAmount > this.#config.WS_MAX_BUFFERED_BYTES) {
      wsMetrics.dropped(message.kind, 'backpressure');
      return;
    }
    this.#write(conn, message.frame);
    wsMetrics.relayed(message.kind, scope, message.sentAt, relayNow());
  }

  /** Closes idle and unanswering sockets, pings the others, and sweeps an in-process store. */
  #heartbeat(): void {
    const now = this.#deps.clock();
    const idleMs = this.#config.WS_IDLE_TIMEOUT_SECONDS * 1000;
    const { wsMetrics } = this.#deps;
    for (const conn of this.#connections) {
      if (now - conn.lastMessageAt > idleMs) {
        wsMetrics.closedBy('idle');
        conn.socket.close(1000, 'idle');
        continue;
      }
      if (!conn.alive) {
        wsMetrics.closedBy('pong');
        conn.socket.terminate();
        continue;
      }
      conn.alive = false;
      conn.socket.ping();
    }
    const swarms = this.#deps.swarms;
    if (swarms instanceof MemoryWsSwarms) swarms.sweep();
  }
}

/** The WebSocket swarms as the core's store, each announce marked with this gateway. */
function coreStore(swarms: WsSwarmStore, gateway: string): TrackerStore {
  const scrape = async (infoHashes: readonly Buffer[]) => swarms.scrape(infoHashes);
  if (swarms instanceof MemoryWsSwarms) {
    const announceSync = (a: PeerAnnounce) => swarms.announce({ ...a, gateway });
    const store = {
      announce: (a: PeerAnnounce) => Promise.resolve(announceSync(a)),
      announceSync,
      scrape,
    };
    return store;
  }
  return { announce: async (a) => swarms.announce({ ...a, gateway }), scrape };
}
