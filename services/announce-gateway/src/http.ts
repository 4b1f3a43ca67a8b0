// The HTTP tracker (BEP 3, 23, 7, 48) on fastify: a frontend of the tracker
// core (docs/architecture.md). It decodes the query, resolves the client's
// address, calls the core and encodes. Answers are always HTTP 200 with a
// bencoded body: clients ignore the body of any other status, so a refusal
// travels as `failure reason` carrying its error code.
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import {
  capConnections,
  fastifyLimits,
  judgeDeadlinesAfterReads,
  type HttpLimits,
} from '@shoal/service/http-limits';
import {
  encodeFailure,
  encodeHttpAnnounceResponse,
  type FailureTiming,
  encodeHttpScrapeResponse,
  parseAddressParam,
  parseAnnounceQuery,
  parseScrapeQuery,
  type AddressParam,
  type AnnounceRequest,
} from '@shoal/protocol';
import type { ClientAddressResolver, PeerAddress } from './client-address.ts';
import type { GatewayConfig } from './config.ts';
import { queryParam } from './credentials.ts';
import { GatewayError } from './errors.ts';
import type { GatewayMetrics } from './metrics.ts';
import { isPartialSeed, type Tracker, type TrackerAnswer } from './tracker/core.ts';
import { answerFullScrape, type FullScrapeCache } from './full-scrape.ts';
import { describeRefusal, refusalCounter } from './tracker/refusal.ts';
import type { AnnounceContext, ScrapeContext } from './tracker/types.ts';

const NO_QUERY: Record<string, never> = Object.freeze({});
const INFO_HASH_PARAM = /(?:^|&)info_hash=/;

export interface TrackerHttpDeps {
  config: GatewayConfig;
  logger: Logger;
  metrics: GatewayMetrics;
  tracker: Tracker;
  resolveAddress: ClientAddressResolver;
  clock: () => number;
  /** docs/full-scrape.md: answers a scrape with no info_hash; undefined when FULL_SCRAPE_ENABLED is false. */
  fullScrape?: FullScrapeCache;
  /** Serve HTTPS with this certificate and key (docs/tls.md); plain HTTP without. */
  tls?: { cert: Buffer; key: Buffer };
}

function rawQuery(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q + 1);
}

/** What every request context of one HTTP frontend shares. */
interface HttpSettings {
  resolve: ClientAddressResolver;
  allowIpParam: boolean;
  /** ALLOW_IPV4_IPV6_PARAMS: BEP 7 `ipv4=`/`ipv6=` register the peer in the other family too. */
  allowIpv4Ipv6Params: boolean;
  scrapeMaxHashes: number;
  /** HTTP_EXTERNAL_IP: answers carry BEP 24 `external ip`. */
  externalIp: boolean;
}

/** One HTTP request as the core sees it; the address is resolved once, when first asked. */
class HttpRequestContext {
  readonly now: number;
  readonly raw: IncomingMessage;
  readonly query: string;
  readonly #passkey: string | undefined;
  protected readonly settings: HttpSettings;
  #source: PeerAddress | undefined;

  constructor(
    raw: IncomingMessage,
    passkey: string | undefined,
    settings: HttpSettings,
    now: number,
  ) {
    this.raw = raw;
    this.query = rawQuery(raw.url);
    this.#passkey = passkey;
    this.settings = settings;
    this.now = now;
  }

  source(): PeerAddress {
    return (this.#source ??= this.address(undefined));
  }

  passkey(): string | undefined {
    // docs/policy.md: `<route>/<passkey>` routes always exist; the passkey is
    // checked only with PASSKEY_REQUIRED and ignored otherwise.
    return this.#passkey;
  }

  protected address(ipParam: string | undefined): PeerAddress {
    const headers = this.raw.headers;
    const peer = this.settings.resolve({
      socket: this.raw.socket.remoteAddress,
      forwardedFor: headers['x-forwarded-for'],
      realIp: headers['x-real-ip'],
      ipParam,
    });
    if (peer === undefined) throw new GatewayError('GATEWAY_ERR_INTERNAL');
    return peer;
  }
}

/** Keeps what it decoded and resolved: the answer's encoding depends on them. */
class HttpAnnounce extends HttpRequestContext implements AnnounceContext {
  interval = 0;
  shed = false;
  decoded: AnnounceRequest | undefined;
  family: PeerAddress['family'] = 4;

  request(): AnnounceRequest {
    return (this.decoded = parseAnnounceQuery(this.query));
  }

  peer(request: AnnounceRequest): PeerAddress {
    const ip = request.ip;
    const peer = ip === undefined || !this.settings.allowIpParam ? this.source() : this.address(ip);
    this.family = peer.family;
    return peer;
  }

  /**
   * docs/decisions.md "BEP 7 addresses": with the setting on, every `ipv4=`
   * and `ipv6=` sent must be an address of its family (an empty value is
   * none); the one of the family the peer was seen in is not used, since
   * replacing the seen address is what `ip` and ALLOW_IP_PARAM decide.
   */
  alsoAt(request: AnnounceRequest, peer: PeerAddress): AddressParam | undefined {
    if (!this.settings.allowIpv4Ipv6Params) return undefined;
    const v4 = request.ipv4 === undefined || request.ipv4 === '' ? undefined : request.ipv4;
    const v6 = request.ipv6 === undefined || request.ipv6 === '' ? undefined : request.ipv6;
    const ipv4 = v4 === undefined ? undefined : parseAddressParam(v4, 4);
    const ipv6 = v6 === undefined ? undefined : parseAddressParam(v6, 6);
    return peer.family === 4 ? ipv6 : ipv4;
  }

  jwt(): string | undefined {
    return queryParam(this.query, 'jwt');
  }
}

class HttpScrape extends HttpRequestContext implements ScrapeContext {
  infoHashes(): Buffer[] {
    return parseScrapeQuery(this.query, this.settings.scrapeMaxHashes);
  }
}

export function buildTrackerHttp(deps: TrackerHttpDeps): FastifyInstance {
  const { config, metrics, tracker, clock, fullScrape } = deps;
  const settings: HttpSettings = {
    resolve: deps.resolveAddress,
    allowIpParam: config.ALLOW_IP_PARAM,
    allowIpv4Ipv6Params: config.ALLOW_IPV4_IPV6_PARAMS,
    scrapeMaxHashes: config.SCRAPE_MAX_HASHES,
    externalIp: config.HTTP_EXTERNAL_IP,
  };
  const minInterval = config.MIN_INTERVAL_SECONDS;
  const announceOk = metrics.request('http', 'announce', 'ok');
  const scrapeOk = metrics.request('http', 'scrape', 'ok');
  const refusals = refusalCounter('http', metrics, deps.logger);
  // docs/decisions.md "Failure answers": libtorrent reads `interval` from a
  // failure too (1800 s when absent); BEP 31 `retry in` only on a retry later.
  const later = config.RETRY_LATER_INTERVAL_SECONDS;
  const refused = config.REFUSAL_INTERVAL_SECONDS;
  const retryLater: FailureTiming = {
    intervalSeconds: later,
    minIntervalSeconds: later,
    retryInSeconds: later,
  };
  const refusedTiming: FailureTiming = { intervalSeconds: refused, minIntervalSeconds: refused };

  const limits = httpLimitsOf(config);
  // docs/limits.md: what one slow or hostile client can hold. An HTTPS server takes the same server options beside its certificate.
  const { http: serverOptions, ...timeouts } = fastifyLimits(limits);
  const tls = deps.tls;
  const genReqId = requestIds();
  // docs/decisions.md "HTTP announce beside fastify": a GET of an announce
  // route is answered straight from node:http's request event; everything
  // else (scrape, HEAD, the home page, a path fastify must decode, and every
  // request once the server is closing) goes to fastify's router.
  const fastAnnounce = announceRouteMatcher(config);
  let closing = false;
  const serverFactory = (fastify: (req: IncomingMessage, res: ServerResponse) => void) => {
    const listener = (req: IncomingMessage, res: ServerResponse): void => {
      const passkey = closing || req.method !== 'GET' ? NOT_FAST : fastAnnounce(req.url);
      if (passkey === NOT_FAST) fastify(req, res);
      else sendAnnounce(req, res, passkey);
    };
    return tls === undefined
      ? createHttpServer(serverOptions, listener)
      : createHttpsServer({ ...serverOptions, cert: tls.cert, key: tls.key }, listener);
  };
  const app = Fastify({
    ...timeouts,
    // Request logging would cost a child logger per announce; failures are logged below.
    logger: false,
    // info_hash and peer_id are raw bytes: the protocol parsers decode the raw query (docs/decisions.md "Sources").
    routerOptions: { querystringParser: () => NO_QUERY, ignoreTrailingSlash: true },
    requestIdHeader: 'x-request-id',
    genReqId,
    serverFactory,
  }) as unknown as FastifyInstance;
  // Closing: fastify answers 503 with `Connection: close` from here on.
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  capConnections(app.server, limits, () => metrics.httpConnectionDropped());
  judgeDeadlinesAfterReads(app.server);

  /** The request id is a proxy's X-Request-Id when one was sent. */
  function refuse(action: 'announce' | 'scrape', err: unknown, reqId: () => string): Buffer {
    const refusal = describeRefusal(err);
    refusals.count(action, refusal, err, { reqId: reqId() });
    return encodeFailure(refusal.reason, refusal.later ? retryLater : refusedTiming);
  }

  /**
   * Returns the answer itself when the tracker answered in the same turn
   * (embedded stores): it is then sent at once, without the Promise,
   * the thenable wrapper and the microtask an async handler costs.
   */
  function announce(raw: IncomingMessage, passkey: string | undefined): Buffer | Promise<Buffer> {
    const start = performance.now();
    try {
      const ctx = new HttpAnnounce(raw, passkey, settings, clock());
      const result = tracker.announce(ctx);
      if (result instanceof Promise) return announceLater(ctx, result, start);
      return answerAnnounce(ctx, result, start);
    } catch (err) {
      metrics.observe('http', 'announce', start);
      return refuse('announce', err, () => requestId(raw, genReqId));
    }
  }

  async function announceLater(
    ctx: HttpAnnounce,
    pending: Promise<TrackerAnswer>,
    start: number,
  ): Promise<Buffer> {
    try {
      return answerAnnounce(ctx, await pending, start);
    } catch (err) {
      metrics.observe('http', 'announce', start);
      return refuse('announce', err, () => requestId(ctx.raw, genReqId));
    }
  }

  function answerAnnounce(ctx: HttpAnnounce, result: TrackerAnswer, start: number): Buffer {
    const decoded = ctx.decoded!;
    const body = encodeHttpAnnounceResponse({
      interval: ctx.interval,
      // docs/decisions.md "Failure answers": a shed client is held to the whole interval.
      minInterval: ctx.shed === true ? ctx.interval : minInterval,
      complete: result.seeders,
      incomplete: result.leechers,
      downloaded: result.downloaded,
      family: ctx.family,
      peers: result.peers,
      peerIds: result.peerIds,
      otherPeers: result.other?.peers,
      otherPeerIds: result.other?.peerIds,
      compact: decoded.compact,
      noPeerId: decoded.noPeerId,
      // BEP 24: where the request came from, not where the peer is stored (the `ip` parameter).
      externalIp: settings.externalIp ? ctx.source().bytes : undefined,
    });
    announceOk.inc();
    if (isPartialSeed(decoded)) metrics.partialSeedAnnounced();
    if (result.other !== undefined) metrics.bep7Address('used');
    else if (decoded.ipv4 !== undefined || decoded.ipv6 !== undefined)
      metrics.bep7Address('ignored');
    metrics.observe('http', 'announce', start);
    return body;
  }

  /**
   * The fast path's answer: the same status, headers and body fastify's
   * route sends. announce() turns every refusal into an answer itself; what
   * still throws here is a bug, and it costs this request only (fastify
   * would have answered 500): logged, the socket closed.
   */
  function sendAnnounce(req: IncomingMessage, res: ServerResponse, passkey: string | undefined) {
    try {
      const body = announce(req, passkey);
      if (body instanceof Promise)
        body.then((b) => writeAnswer(res, b)).catch((err: unknown) => answerFailed(res, err));
      else writeAnswer(res, body);
    } catch (err) {
      answerFailed(res, err);
    }
  }

  function answerFailed(res: ServerResponse, err: unknown): void {
    deps.logger.error({ err }, 'http announce failed');
    res.destroy();
  }

  /** What fastify's route answers with a Buffer and `content-type: text/plain`. */
  function announceRoute(request: FastifyRequest, reply: FastifyReply): Buffer | Promise<Buffer> {
    reply.header('content-type', 'text/plain');
    return announce(request.raw, (request.params as { passkey?: string }).passkey);
  }

  async function scrape(request: FastifyRequest, reply: FastifyReply): Promise<Buffer> {
    const start = performance.now();
    try {
      const ctx = new HttpScrape(
        request.raw,
        (request.params as { passkey?: string }).passkey,
        settings,
        clock(),
      );
      if (fullScrape !== undefined && !INFO_HASH_PARAM.test(ctx.query)) {
        const body = await answerFullScrape(fullScrape, ctx.source(), request, reply);
        scrapeOk.inc();
        metrics.observe('http', 'scrape', start);
        return body;
      }
      const body = encodeHttpScrapeResponse(await tracker.scrape(ctx));
      scrapeOk.inc();
      metrics.observe('http', 'scrape', start);
      reply.header('content-type', 'text/plain');
      return body;
    } catch (err) {
      metrics.observe('http', 'scrape', start);
      reply.header('content-type', 'text/plain');
      return refuse('scrape', err, () => request.id);
    }
  }

  for (const route of config.ANNOUNCE_ROUTES) {
    app.get(route, announceRoute);
    app.get(passkeyRoute(route), announceRoute);
  }
  for (const route of config.SCRAPE_ROUTES) {
    app.get(route, scrape);
    app.get(passkeyRoute(route), scrape);
  }
  if (!config.ANNOUNCE_ROUTES.includes('/')) {
    const home = `Shoal BitTorrent tracker. Announce at ${config.ANNOUNCE_ROUTES.join(', ')} over HTTP and UDP.\n`;
    app.get('/', async (_request, reply) => {
      reply.header('content-type', 'text/plain; charset=utf-8');
      return home;
    });
  }
  return app;
}

/** What announceRouteMatcher returns for a request fastify's router must take. */
const NOT_FAST = Symbol('not fast');

/**
 * The requests the fast path may answer, told from the URL alone: a path
 * that is one of ANNOUNCE_ROUTES, or `<route>/<passkey>`, with at most one
 * trailing slash (ignoreTrailingSlash), as fastify's router would match them.
 * Returns the passkey (undefined without one), or NOT_FAST for anything
 * else: another route, a path with a percent-escape or a fragment (the
 * router decodes them), an absolute-form URL, a passkey longer than the
 * router's 100 characters (maxParamLength).
 */
export function announceRouteMatcher(
  config: Pick<GatewayConfig, 'ANNOUNCE_ROUTES' | 'SCRAPE_ROUTES'>,
): (url: string | undefined) => string | undefined | typeof NOT_FAST {
  const announce = new Set(config.ANNOUNCE_ROUTES.map(trimSlash));
  const prefixes = new Set(
    config.ANNOUNCE_ROUTES.map((r) => passkeyRoute(r).slice(0, -':passkey'.length)),
  );
  // Every other route's path: those are the router's, even under an announce prefix.
  const others = new Set(['/', ...config.SCRAPE_ROUTES].map(trimSlash));
  const exact = [...announce];
  return (url) => {
    if (url === undefined || url.charCodeAt(0) !== 47) return NOT_FAST;
    // What clients send: a route, then the query.
    for (let i = 0; i < exact.length; i++) {
      const route = exact[i]!;
      if (
        url.startsWith(route) &&
        (url.length === route.length || url.charCodeAt(route.length) === 63)
      )
        return undefined;
    }
    let end = url.indexOf('?');
    if (end === -1) end = url.length;
    let path = url.slice(0, end);
    if (path.includes('%') || path.includes('#')) return NOT_FAST;
    path = trimSlash(path);
    if (announce.has(path)) return undefined;
    if (others.has(path)) return NOT_FAST;
    const slash = path.lastIndexOf('/');
    const passkey = path.slice(slash + 1);
    if (passkey === '' || passkey.length > MAX_PARAM_LENGTH) return NOT_FAST;
    return prefixes.has(path.slice(0, slash + 1)) ? passkey : NOT_FAST;
  };
}

/** find-my-way's maxParamLength, fastify's default. */
const MAX_PARAM_LENGTH = 100;

function trimSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** fastify's own request ids (`req-<n>`, base 36), shared by its router and the fast path. */
function requestIds(): () => string {
  let next = 0;
  return () => {
    next = (next + 1) & 0x7fffffff;
    return `req-${next.toString(36)}`;
  };
}

function requestId(raw: IncomingMessage, genReqId: () => string): string {
  const header = raw.headers['x-request-id'];
  return typeof header === 'string' && header !== '' ? header : genReqId();
}

/** The headers fastify's reply writes for a Buffer with `content-type: text/plain`, in its order. */
function writeAnswer(res: ServerResponse, body: Buffer): void {
  res.writeHead(200, ['content-type', 'text/plain', 'content-length', String(body.length)]);
  res.end(body);
}

/** The HTTP_* settings of the tracker port (docs/limits.md). */
export function httpLimitsOf(config: GatewayConfig): HttpLimits {
  return {
    requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: config.HTTP_KEEPALIVE_TIMEOUT_SECONDS * 1000,
    maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES,
    maxConnections: config.HTTP_MAX_CONNECTIONS,
  };
}

function passkeyRoute(route: string): string {
  return route.endsWith('/') ? `${route}:passkey` : `${route}/:passkey`;
}
