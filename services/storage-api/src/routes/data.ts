// The JSON data routes (docs/storage-api.md "Endpoints"): KV, download
// counts and swarm statistics.
import type { FastifyInstance } from 'fastify';
import { fullScrapeOf, hasRateCounters } from '@shoal/storage';
import { ROUTES, type FullScrapeResponse } from '@shoal/storage-api-contract';
import { ApiError } from '../errors.ts';
import { objectBody, type RouteContext } from './context.ts';

const HEX_HASH = /^[0-9a-fA-F]{40}$/;
/** KV contexts and keys are path segments: short, printable, no slash. */
const KV_NAME = /^[\w.:@+=-]{1,256}$/;
const KV_VALUE_MAX = 1 << 20;
const DOWNLOADS_MAX_HASHES = 1000;

function kvName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !KV_NAME.test(value)) {
    throw new ApiError('RPC_ERR_BAD_BODY', `${what} must be 1-256 of [A-Za-z0-9_.:@+=-]`);
  }
  return value;
}

// eslint-disable-next-line @typescript-eslint/require-await
export async function dataRoutes(api: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { store, metrics, timed, peerDriver, dataDriver } = ctx;
  const kv = { config: { endpoint: 'kv' as const } };
  api.get(ROUTES.kvContext, kv, async (request) => {
    const { context } = request.params as Record<string, unknown>;
    const entries = await timed(dataDriver, 'kv_list', () =>
      store.list(kvName(context, 'context')),
    );
    return { entries };
  });
  api.get(ROUTES.kvKey, kv, async (request) => {
    const params = request.params as Record<string, unknown>;
    const context = kvName(params.context, 'context');
    const key = kvName(params.key, 'key');
    const value = await timed(dataDriver, 'kv_get', () => store.get(context, key));
    if (value === undefined) throw new ApiError('KV_ERR_NOT_FOUND');
    return { value };
  });
  api.put(ROUTES.kvKey, kv, async (request) => {
    const params = request.params as Record<string, unknown>;
    const context = kvName(params.context, 'context');
    const key = kvName(params.key, 'key');
    const { value } = objectBody(request.body);
    if (typeof value !== 'string' || value.length > KV_VALUE_MAX) {
      throw new ApiError(
        'RPC_ERR_BAD_BODY',
        `value must be a string of at most ${KV_VALUE_MAX} characters`,
      );
    }
    await timed(dataDriver, 'kv_put', () => store.put(context, key, value));
    return { ok: true };
  });
  api.delete(ROUTES.kvKey, kv, async (request) => {
    const params = request.params as Record<string, unknown>;
    const context = kvName(params.context, 'context');
    const key = kvName(params.key, 'key');
    const existed = await timed(dataDriver, 'kv_delete', () => store.delete(context, key));
    return { existed };
  });

  api.get(ROUTES.downloads, { config: { endpoint: 'downloads' } }, async (request) => {
    const raw = (request.query as Record<string, unknown>).info_hash;
    const list = raw === undefined ? [] : Array.isArray(raw) ? (raw as unknown[]) : [raw];
    if (list.length === 0) throw new ApiError('RPC_ERR_BAD_BODY', 'info_hash is required');
    if (list.length > DOWNLOADS_MAX_HASHES) {
      throw new ApiError('RPC_ERR_TOO_LARGE', `at most ${DOWNLOADS_MAX_HASHES} info_hash`);
    }
    const hexes = list.map((h) => {
      if (typeof h !== 'string' || !HEX_HASH.test(h)) {
        throw new ApiError('RPC_ERR_BAD_BODY', 'info_hash must be 40 hex digits');
      }
      return h.toLowerCase();
    });
    const counts = await timed(store.downloadsApart ? dataDriver : peerDriver, 'downloads', () =>
      store.downloads(hexes.map((h) => Buffer.from(h, 'hex'))),
    );
    const downloads: Record<string, number> = {};
    hexes.forEach((h, i) => {
      downloads[h] = counts[i] ?? 0;
    });
    return { downloads };
  });

  // docs/full-scrape.md: the gateways cache this and refresh it at most every FULL_SCRAPE_REFRESH_SECONDS.
  api.get(
    ROUTES.fullScrape,
    { config: { endpoint: 'full_scrape' } },
    async (request): Promise<FullScrapeResponse> => {
      const full = fullScrapeOf(store);
      if (full === undefined) throw new ApiError('RPC_ERR_NOT_FOUND', 'this store lists no swarms');
      const raw = (request.query as Record<string, unknown>).limit;
      const limit = typeof raw === 'string' && /^\d{1,7}$/.test(raw) ? Number(raw) : Number.NaN;
      const result = await timed(peerDriver, 'full_scrape', () => full(limit));
      return {
        truncated: result.truncated,
        swarms: result.swarms.map((e) => [
          e.infoHash.toString('hex'),
          e.seeders,
          e.leechers,
          e.downloaded,
        ]),
      };
    },
  );

  // docs/policy.md "Shared rate limits": every gateway, every sync period.
  api.post(ROUTES.rateLimits, { config: { endpoint: 'rate_limits' } }, async (request) => {
    if (!hasRateCounters(store))
      throw new ApiError('RPC_ERR_NOT_FOUND', 'this store keeps no rate-limit counters');
    const { window, windowMs, keys, deltas } = objectBody(request.body);
    if (
      typeof window !== 'number' ||
      typeof windowMs !== 'number' ||
      !Array.isArray(keys) ||
      !Array.isArray(deltas)
    )
      throw new ApiError('RPC_ERR_BAD_BODY', 'want { window, windowMs, keys, deltas }');
    return timed(peerDriver, 'rate_counts', () =>
      store.addRateCounts(window, windowMs, keys as string[], deltas as number[]),
    );
  });

  api.get(ROUTES.stats, { config: { endpoint: 'stats' } }, async () => {
    const stats = await timed(peerDriver, 'stats', () => store.stats());
    metrics.swarm(stats);
    return stats;
  });
}
