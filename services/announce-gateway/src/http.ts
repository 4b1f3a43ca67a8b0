// The HTTP tracker (BEP 3, 23, 7, 48) on fastify: a frontend of the tracker
// core (docs/architecture.md). It decodes the query, resolves the client's
// address, calls the core and encodes. Answers are always HTTP 200 with a
// bencoded body: clients ignore the body of any other status, so a refusal
// travels as `failure reason` carrying its error code.
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
  protected readonly http: FastifyRequest;
  readonly query: string;
  protected readonly settings: HttpSettings;
  #source: PeerAddress | undefined;

  constructor(http: FastifyRequest, settings: HttpSettings, now: number) {
    this.http = http;
    this.query = rawQuery(http.raw.url);
    this.settings = settings;
    this.now = now;
  }

  source(): PeerAddress {
    return (this.#source ??= this.address(undefined));
  }

  passkey(): string | undefined {
    // docs/policy.md: `<route>/<passkey>` routes always exist; the passkey is
    // checked only with PASSKEY_REQUIRED and ignored otherwise.
    return (this.http.params as { passkey?: string }).passkey;
  }

  protected address(ipParam: string | undefined): PeerAddress {
    const headers = this.http.headers;
    const peer = this.settings.resolve({
      socket: this.http.raw.socket.remoteAddress,
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
  const options = {
    ...timeouts,
    // Request logging would cost a child logger per announce; failures are logged below.
    logger: false,
    // info_hash and peer_id are raw bytes: the protocol parsers decode the raw query (docs/decisions.md "Sources").
    routerOptions: { querystringParser: () => NO_QUERY, ignoreTrailingSlash: true },
    requestIdHeader: 'x-request-id',
  } as const;
  const tls = deps.tls;
  // Typed as the HTTP app: the routes are the same; gateway.ts hands the TLS server to tls.ts.
  const app =
    tls === undefined
      ? Fastify({ ...options, http: serverOptions })
      : (Fastify({
          ...options,
          https: { ...serverOptions, cert: tls.cert, key: tls.key },
        }) as unknown as FastifyInstance);
  capConnections(app.server, limits, () => metrics.httpConnectionDropped());
  judgeDeadlinesAfterReads(app.server);

  function refuse(reply: FastifyReply, action: 'announce' | 'scrape', err: unknown): Buffer {
    const refusal = describeRefusal(err);
    // The request id is a proxy's X-Request-Id when one was sent.
    refusals.count(action, refusal, err, { reqId: reply.request.id });
    reply.header('content-type', 'text/plain');
    return encodeFailure(refusal.reason, refusal.later ? retryLater : refusedTiming);
  }

  /**
   * Returns the answer itself when the tracker answered in the same turn
   * (embedded stores): fastify then sends it at once, without the Promise,
   * the thenable wrapper and the microtask an async handler costs.
   */
  function announce(request: FastifyRequest, reply: FastifyReply): Buffer | Promise<Buffer> {
    const start = performance.now();
    try {
      const ctx = new HttpAnnounce(request, settings, clock());
      const result = tracker.announce(ctx);
      if (result instanceof Promise) return announceLater(ctx, result, reply, start);
      return answerAnnounce(ctx, result, reply, start);
    } catch (err) {
      metrics.observe('http', 'announce', start);
      return refuse(reply, 'announce', err);
    }
  }

  async function announceLater(
    ctx: HttpAnnounce,
    pending: Promise<TrackerAnswer>,
    reply: FastifyReply,
    start: number,
  ): Promise<Buffer> {
    try {
      return answerAnnounce(ctx, await pending, reply, start);
    } catch (err) {
      metrics.observe('http', 'announce', start);
      return refuse(reply, 'announce', err);
    }
  }

  function answerAnnounce(
    ctx: HttpAnnounce,
    result: TrackerAnswer,
    reply: FastifyReply,
    start: number,
  ): Buffer {
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
    reply.header('content-type', 'text/plain');
    return body;
  }

  async function scrape(request: FastifyRequest, reply: FastifyReply): Promise<Buffer> {
    const start = performance.now();
    try {
      const ctx = new HttpScrape(request, settings, clock());
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
      return refuse(reply, 'scrape', err);
    }
  }

  for (const route of config.ANNOUNCE_ROUTES) {
    app.get(route, announce);
    app.get(passkeyRoute(route), announce);
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
