// The HTTP tracker (BEP 3, 23, 7, 48) on fastify. Answers are always HTTP 200
// with a bencoded body: clients ignore the body of any other status, so a
// refusal travels as `failure reason` carrying its error code.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { capConnections, fastifyLimits, type HttpLimits } from '@shoal/service/http-limits';
import {
  encodeFailure,
  encodeHttpAnnounceResponse,
  encodeHttpScrapeResponse,
  parseAnnounceQuery,
  parseScrapeQuery,
} from '@shoal/protocol';
import { describeRefusal, toPeerAnnounce } from './announce.ts';
import type { ClientAddressResolver, PeerAddress } from './client-address.ts';
import type { GatewayConfig } from './config.ts';
import { GatewayError } from './errors.ts';
import type { GatewayMetrics } from './metrics.ts';
import { queryParam, type PolicyChain } from './policy/chain.ts';
import type { GatewayStorage } from './storage.ts';

/** BEP 31: how long a client should wait after a failure that is our fault. */
const RETRY_IN_SECONDS = 60;
const NO_QUERY: Record<string, never> = Object.freeze({});

export interface TrackerHttpDeps {
  config: GatewayConfig;
  logger: Logger;
  metrics: GatewayMetrics;
  storage: GatewayStorage;
  resolveAddress: ClientAddressResolver;
  /** undefined when every policy step is off (the default): nothing below runs then. */
  chain?: PolicyChain | undefined;
  clock: () => number;
}

function rawQuery(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q + 1);
}

export function buildTrackerHttp(deps: TrackerHttpDeps): FastifyInstance {
  const { config, logger, metrics, storage, resolveAddress, chain, clock } = deps;
  const policy = { numWantDefault: config.NUMWANT_DEFAULT, numWantMax: config.NUMWANT_MAX };
  const interval = config.ANNOUNCE_INTERVAL_SECONDS;
  const jitter = config.ANNOUNCE_INTERVAL_JITTER_SECONDS;
  const allowIpParam = config.ALLOW_IP_PARAM;
  const minInterval = config.MIN_INTERVAL_SECONDS;
  const sync = storage.announceSync?.bind(storage);
  const announceOk = metrics.request('http', 'announce', 'ok');
  const scrapeOk = metrics.request('http', 'scrape', 'ok');

  const limits = httpLimitsOf(config);
  const app = Fastify({
    // docs/limits.md: what one slow or hostile client can hold.
    ...fastifyLimits(limits),
    // Request logging would cost a child logger per announce; failures are logged below.
    logger: false,
    // info_hash and peer_id are raw bytes: the protocol parsers decode the raw query (docs/decisions.md "Sources").
    routerOptions: { querystringParser: () => NO_QUERY, ignoreTrailingSlash: true },
    requestIdHeader: 'x-request-id',
  });
  capConnections(app.server, limits, () => metrics.httpConnectionDropped());

  function refuse(reply: FastifyReply, action: 'announce' | 'scrape', err: unknown): Buffer {
    const refusal = describeRefusal(err);
    metrics.request('http', action, refusal.ours ? 'failed' : 'rejected').inc();
    metrics.error('http', refusal.code);
    // One line per failure of ours, with its code and the request id (a proxy's X-Request-Id when sent).
    if (refusal.ours && refusal.quiet !== true)
      logger.error(
        { err, action, code: refusal.code, reqId: reply.request.id },
        'http request failed',
      );
    reply.header('content-type', 'text/plain');
    return encodeFailure(refusal.reason, refusal.ours ? { retryInSeconds: RETRY_IN_SECONDS } : {});
  }

  async function announce(request: FastifyRequest, reply: FastifyReply): Promise<Buffer> {
    const start = performance.now();
    try {
      const query = rawQuery(request.raw.url);
      let peer: PeerAddress | undefined;
      let now: number | undefined;
      if (chain?.limitRequests !== undefined) {
        now = clock();
        peer = sourceAddress(request);
        chain.limitRequests(peer, now);
      }
      const parsed = parseAnnounceQuery(query);
      if (peer === undefined || (allowIpParam && parsed.ip !== undefined)) {
        const headers = request.headers;
        peer = resolveAddress({
          socket: request.raw.socket.remoteAddress,
          forwardedFor: headers['x-forwarded-for'],
          realIp: headers['x-real-ip'],
          ipParam: parsed.ip,
        });
        if (peer === undefined) throw new GatewayError('GATEWAY_ERR_INTERNAL');
      }
      if (chain !== undefined) {
        now ??= clock();
        chain.checkPasskey(passkeyOf(request), now);
        if (chain.jwt !== undefined)
          await chain.jwt.verify(queryParam(query, 'jwt'), parsed.infoHash, now);
        chain.checkApproval(parsed.infoHash, parsed.peerId);
      }
      const wanted = toPeerAnnounce(parsed, peer, policy);
      const result = sync !== undefined ? sync(wanted) : await storage.announce(wanted);
      const body = encodeHttpAnnounceResponse({
        interval: jitter === 0 ? interval : interval + Math.floor(Math.random() * (jitter + 1)),
        minInterval,
        complete: result.seeders,
        incomplete: result.leechers,
        downloaded: result.downloaded,
        family: peer.family,
        peers: result.peers,
        peerIds: result.peerIds,
        compact: parsed.compact,
        noPeerId: parsed.noPeerId,
      });
      announceOk.inc();
      metrics.observe('http', 'announce', start);
      reply.header('content-type', 'text/plain');
      return body;
    } catch (err) {
      metrics.observe('http', 'announce', start);
      return refuse(reply, 'announce', err);
    }
  }

  async function scrape(request: FastifyRequest, reply: FastifyReply): Promise<Buffer> {
    const start = performance.now();
    try {
      if (chain !== undefined) {
        const now = clock();
        chain.limitRequests?.(sourceAddress(request), now);
        chain.checkScrape(passkeyOf(request), now);
      }
      const hashes = parseScrapeQuery(rawQuery(request.raw.url), config.SCRAPE_MAX_HASHES);
      const counts = await storage.scrape(hashes);
      const hidden = chain?.scrapeHidden;
      const body = encodeHttpScrapeResponse(
        hashes.map((infoHash, i) => {
          const c = hidden?.(infoHash) === true ? undefined : counts[i];
          return {
            infoHash,
            complete: c?.seeders ?? 0,
            incomplete: c?.leechers ?? 0,
            downloaded: c?.downloaded ?? 0,
          };
        }),
      );
      scrapeOk.inc();
      metrics.observe('http', 'scrape', start);
      reply.header('content-type', 'text/plain');
      return body;
    } catch (err) {
      metrics.observe('http', 'scrape', start);
      return refuse(reply, 'scrape', err);
    }
  }

  /** The client's own address (never the `ip` parameter): what rate limits count. */
  function sourceAddress(request: FastifyRequest): PeerAddress {
    const headers = request.headers;
    const peer = resolveAddress({
      socket: request.raw.socket.remoteAddress,
      forwardedFor: headers['x-forwarded-for'],
      realIp: headers['x-real-ip'],
      ipParam: undefined,
    });
    if (peer === undefined) throw new GatewayError('GATEWAY_ERR_INTERNAL');
    return peer;
  }

  // docs/policy.md: `<route>/<passkey>` routes always exist; the passkey is
  // checked only with PASSKEY_REQUIRED and ignored otherwise.
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

function passkeyOf(request: FastifyRequest): string | undefined {
  return (request.params as { passkey?: string }).passkey;
}
