// The HTTP tracker (BEP 3, 23, 7, 48) on fastify. Answers are always HTTP 200
// with a bencoded body: clients ignore the body of any other status, so a
// refusal travels as `failure reason` carrying its error code.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import {
  encodeFailure,
  encodeHttpAnnounceResponse,
  encodeHttpScrapeResponse,
  parseAnnounceQuery,
  parseScrapeQuery,
} from '@shoal/protocol';
import { describeRefusal, toPeerAnnounce } from './announce.ts';
import type { ClientAddressResolver } from './client-address.ts';
import type { GatewayConfig } from './config.ts';
import { GatewayError } from './errors.ts';
import type { GatewayMetrics } from './metrics.ts';
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
}

function rawQuery(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q + 1);
}

export function buildTrackerHttp(deps: TrackerHttpDeps): FastifyInstance {
  const { config, logger, metrics, storage, resolveAddress } = deps;
  const policy = { numWantDefault: config.NUMWANT_DEFAULT, numWantMax: config.NUMWANT_MAX };
  const interval = config.ANNOUNCE_INTERVAL_SECONDS;
  const minInterval = config.MIN_INTERVAL_SECONDS;
  const sync = storage.announceSync?.bind(storage);
  const announceOk = metrics.request('http', 'announce', 'ok');
  const scrapeOk = metrics.request('http', 'scrape', 'ok');

  const app = Fastify({
    // Request logging would cost a child logger per announce; failures are logged below.
    logger: false,
    // info_hash and peer_id are raw bytes: the protocol parsers decode the raw query (FIELD-NOTES).
    routerOptions: { querystringParser: () => NO_QUERY, ignoreTrailingSlash: true },
    requestIdHeader: 'x-request-id',
  });

  function refuse(reply: FastifyReply, action: 'announce' | 'scrape', err: unknown): Buffer {
    const refusal = describeRefusal(err);
    metrics.request('http', action, refusal.ours ? 'failed' : 'rejected').inc();
    metrics.error('http', refusal.code);
    // One line per failure of ours, with its code and the request id (a proxy's X-Request-Id when sent).
    if (refusal.ours)
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
      const parsed = parseAnnounceQuery(rawQuery(request.raw.url));
      const headers = request.headers;
      const peer = resolveAddress({
        socket: request.raw.socket.remoteAddress,
        forwardedFor: headers['x-forwarded-for'],
        realIp: headers['x-real-ip'],
        ipParam: parsed.ip,
      });
      if (peer === undefined) throw new GatewayError('GATEWAY_ERR_INTERNAL');
      const wanted = toPeerAnnounce(parsed, peer, policy);
      const result = sync !== undefined ? sync(wanted) : await storage.announce(wanted);
      const body = encodeHttpAnnounceResponse({
        interval,
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
      const hashes = parseScrapeQuery(rawQuery(request.raw.url), config.SCRAPE_MAX_HASHES);
      const counts = await storage.scrape(hashes);
      const body = encodeHttpScrapeResponse(
        hashes.map((infoHash, i) => {
          const c = counts[i];
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

  for (const route of config.ANNOUNCE_ROUTES) app.get(route, announce);
  for (const route of config.SCRAPE_ROUTES) app.get(route, scrape);
  if (!config.ANNOUNCE_ROUTES.includes('/')) {
    const home = `Shoal BitTorrent tracker. Announce at ${config.ANNOUNCE_ROUTES.join(', ')} over HTTP and UDP.\n`;
    app.get('/', async (_request, reply) => {
      reply.header('content-type', 'text/plain; charset=utf-8');
      return home;
    });
  }
  return app;
}
