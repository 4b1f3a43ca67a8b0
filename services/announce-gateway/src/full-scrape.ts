// The full scrape (docs/full-scrape.md): `/scrape` with no info_hash answers
// every live swarm. The answer is built from the store at most once every
// FULL_SCRAPE_REFRESH_SECONDS, on a request that finds it older, one build at
// a time, and kept plain and gzipped; requests in between are served the
// bytes as they are. Nothing here runs on the announce path, and nothing runs
// at all while nobody asks for a full scrape.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { PolicyError, createRateLimiter, type RateLimiter } from '@shoal/policy';
import { encodeHttpScrapeResponse } from '@shoal/protocol';
import { StoreError, type FullScrapeResult } from '@shoal/storage';
import type { PeerAddress } from './client-address.ts';

const gzipAsync = promisify(gzip);

export interface FullScrapeAnswer {
  plain: Buffer;
  gzip: Buffer;
}

export type FullScrapeEncoding = 'gzip' | 'identity';

export interface FullScrapeMetrics {
  refreshed(outcome: 'ok' | 'failed'): void;
  built(torrents: number, truncated: boolean, plainBytes: number, gzipBytes: number): void;
  served(encoding: FullScrapeEncoding): void;
  limited(): void;
}

/** Registered whether the full scrape is on or not, so dashboards and the catalogue see one set. */
export function createFullScrapeMetrics(registry: Registry): FullScrapeMetrics {
  const refreshes = new Counter({
    name: 'shoal_full_scrape_refreshes_total',
    help: 'Rebuilds of the full scrape cache from the store, by outcome (failed: the previous answer is kept).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const served = new Counter({
    name: 'shoal_full_scrape_served_total',
    help: 'Full scrapes answered, by encoding (gzip when the client accepts it, identity otherwise).',
    labelNames: ['encoding'] as const,
    registers: [registry],
  });
  const limited = new Counter({
    name: 'shoal_full_scrape_rate_limited_total',
    help: 'Full scrapes refused by FULL_SCRAPE_PER_MINUTE.',
    registers: [registry],
  });
  const torrents = new Gauge({
    name: 'shoal_full_scrape_torrents',
    help: 'Swarms in the cached full scrape.',
    registers: [registry],
  });
  const truncatedGauge = new Gauge({
    name: 'shoal_full_scrape_truncated',
    help: '1 when the cached full scrape left swarms out (more live than FULL_SCRAPE_MAX_TORRENTS).',
    registers: [registry],
  });
  const bytes = new Gauge({
    name: 'shoal_full_scrape_bytes',
    help: 'Size of the cached full scrape answer, by encoding.',
    labelNames: ['encoding'] as const,
    registers: [registry],
  });
  const table = {
    ok: refreshes.labels('ok'),
    failed: refreshes.labels('failed'),
    gzip: served.labels('gzip'),
    identity: served.labels('identity'),
  };
  for (const series of Object.values(table)) series.inc(0);
  limited.inc(0);
  for (const encoding of ['identity', 'gzip'] as const) bytes.labels(encoding).set(0);
  return {
    refreshed: (outcome) => table[outcome].inc(),
    built: (n, truncated, plainBytes, gzipBytes) => {
      torrents.set(n);
      truncatedGauge.set(truncated ? 1 : 0);
      bytes.labels('identity').set(plainBytes);
      bytes.labels('gzip').set(gzipBytes);
    },
    served: (encoding) => table[encoding].inc(),
    limited: () => limited.inc(),
  };
}

export interface FullScrapeOptions {
  /** The store's full scrape (fullScrapeOf). */
  source: (limit: number) => Promise<FullScrapeResult>;
  maxTorrents: number;
  refreshSeconds: number;
  perMinute: number;
  burst: number;
  maxAddresses: number;
  metrics: FullScrapeMetrics;
  logger: Logger;
  clock: () => number;
}

export class FullScrapeCache {
  readonly #o: FullScrapeOptions;
  readonly #limiter: RateLimiter;
  #answer: FullScrapeAnswer | undefined;
  /** When the last build began (clock ms); a failed one counts too, so a failing store is asked once a period. */
  #builtAt = Number.NEGATIVE_INFINITY;
  #building: Promise<FullScrapeAnswer> | undefined;

  constructor(options: FullScrapeOptions) {
    this.#o = options;
    this.#limiter = createRateLimiter({
      ratePerSecond: options.perMinute / 60,
      burst: options.burst,
      maxAddresses: options.maxAddresses,
    });
  }

  served(encoding: FullScrapeEncoding): void {
    this.#o.metrics.served(encoding);
  }

  /** Takes one token of the client's bucket; false when it is over FULL_SCRAPE_PER_MINUTE. */
  admit(peer: PeerAddress): boolean {
    const ok = this.#limiter.take(peer.family, peer.bytes, this.#o.clock());
    if (!ok) this.#o.metrics.limited();
    return ok;
  }

  /**
   * The current answer. A stale one starts a rebuild and is served meanwhile;
   * only the first request (no answer yet) waits, and rejects with the
   * store's error when that build fails.
   */
  async answer(): Promise<FullScrapeAnswer> {
    const now = this.#o.clock();
    if (this.#building === undefined && now - this.#builtAt >= this.#o.refreshSeconds * 1000) {
      this.#builtAt = now;
      const building = this.#build().finally(() => (this.#building = undefined));
      // Requests served the stale answer do not wait for it; its failure is logged in #build.
      building.catch(() => undefined);
      this.#building = building;
    }
    if (this.#answer !== undefined) return this.#answer;
    if (this.#building !== undefined) return this.#building;
    // The first build failed less than a period ago: the store is asked again after it.
    throw new StoreError('STORE_ERR_UNAVAILABLE', 'no full scrape built yet');
  }

  async #build(): Promise<FullScrapeAnswer> {
    const { source, maxTorrents, refreshSeconds, metrics, logger } = this.#o;
    try {
      const result = await source(maxTorrents);
      const plain = encodeHttpScrapeResponse(
        result.swarms.map((s) => ({
          infoHash: s.infoHash,
          complete: s.seeders,
          incomplete: s.leechers,
          downloaded: s.downloaded,
        })),
        { minRequestIntervalSeconds: refreshSeconds, truncated: result.truncated },
      );
      const answer = { plain, gzip: await gzipAsync(plain) };
      this.#answer = answer;
      metrics.refreshed('ok');
      metrics.built(result.swarms.length, result.truncated, plain.length, answer.gzip.length);
      return answer;
    } catch (err) {
      metrics.refreshed('failed');
      logger.warn({ err }, 'full scrape rebuild failed; serving the previous answer');
      throw err;
    }
  }
}

/** Whether an Accept-Encoding header admits gzip (RFC 9110 12.5.3: `gzip` or `*`, unless q=0). */
export function acceptsGzip(header: string | string[] | undefined): boolean {
  if (header === undefined) return false;
  const text = Array.isArray(header) ? header.join(',') : header;
  for (const part of text.split(',')) {
    const [coding = '', ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== 'x-gzip' && coding !== '*') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}

const RATE_LIMITED = new PolicyError('POLICY_ERR_RATE_LIMITED');

/** The HTTP answer: rate limited per address, gzip when the client accepts it. */
export async function answerFullScrape(
  cache: FullScrapeCache,
  peer: PeerAddress,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<Buffer> {
  if (!cache.admit(peer)) throw RATE_LIMITED;
  const answer = await cache.answer();
  reply.header('content-type', 'text/plain');
  reply.header('vary', 'accept-encoding');
  if (acceptsGzip(request.headers['accept-encoding'])) {
    cache.served('gzip');
    reply.header('content-encoding', 'gzip');
    return answer.gzip;
  }
  cache.served('identity');
  return answer.plain;
}
