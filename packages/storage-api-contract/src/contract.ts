// storage-api's HTTP contract, defined once (docs/storage-api.md "Contract"):
// the API version, every path, the JSON bodies of each route, the error body
// and its codes. storage-api's routes and the one client (./client.ts) that
// the gateway, the gc-worker and shoalctl use both import it, so a path or a
// body field cannot drift between them. The batch body is binary and lives
// with the other wire codecs in @shoal/protocol's storage-rpc.
import type { PolicySnapshot } from '@shoal/policy';
import type { StoreStats } from '@shoal/storage';
import { STORAGE_RPC_PATH, STORAGE_RPC_VERSION } from '@shoal/protocol/storage-rpc';

export {
  STORAGE_RPC_CONTENT_TYPE,
  STORAGE_RPC_PATH,
  STORAGE_RPC_VERSION,
  STORAGE_RPC_VERSION_HEADER,
} from '@shoal/protocol/storage-rpc';

/** The JSON API's version: the `/v1` of every path. A change that breaks a caller is `/v2`. */
export const STORAGE_API_VERSION = 1;
/** Batch body versions this contract speaks (the `x-shoal-rpc-version` header). */
export const SUPPORTED_BATCH_VERSIONS: readonly number[] = [STORAGE_RPC_VERSION];

/** Route patterns as storage-api registers them (fastify's `:param` syntax). */
export const ROUTES = {
  batch: STORAGE_RPC_PATH,
  kvContext: '/v1/kv/:context',
  kvKey: '/v1/kv/:context/:key',
  downloads: '/v1/downloads',
  stats: '/v1/stats',
  /** Every live swarm's counts, the largest first (docs/full-scrape.md); the gateway token opens it. */
  fullScrape: '/v1/full-scrape',
  gc: '/v1/gc',
  lease: '/v1/leases/:name',
  /** Gateways poll it with If-None-Match; the gateway or the admin token opens it. */
  policy: '/v1/policy',
  /** A hybrid torrent's link a gateway learned (docs/policy.md "Hybrid torrents"); the gateway token opens it. */
  links: '/v1/links',
  /** A ban a gateway applied (docs/policy.md "Abuse control"); the gateway token opens it. */
  bans: '/v1/bans',
  /** The gateways' shared rate-limit counts (docs/policy.md "Shared rate limits"); the gateway token opens it. */
  rateLimits: '/v1/rate-limits',
  /** The policy admin API of docs/policy.md; only the admin token opens it. */
  adminPrefix: '/v1/admin',
  /**
   * A gateway's WebSocket relay stream, the gateway id after it (an upgrade,
   * not a fastify route; docs/webtorrent.md "The split topology"); the
   * gateway token opens it.
   */
  wsRelayPrefix: '/v1/ws-relay/',
} as const;

/** Paths as a client requests them, parameters encoded. */
export const paths = {
  kvContext: (context: string): string => `/v1/kv/${encodeURIComponent(context)}`,
  kvKey: (context: string, key: string): string =>
    `/v1/kv/${encodeURIComponent(context)}/${encodeURIComponent(key)}`,
  downloads: (infoHashesHex: readonly string[]): string =>
    `${ROUTES.downloads}?${infoHashesHex.map((h) => `info_hash=${h}`).join('&')}`,
  fullScrape: (limit: number): string => `/v1/full-scrape?limit=${limit}`,
  lease: (name: string): string => `/v1/leases/${encodeURIComponent(name)}`,
  admin: (rest: string): string => `${ROUTES.adminPrefix}/${rest.replace(/^\//, '')}`,
};

// Bodies, route by route (requests `...Request`, answers `...Response`).
export interface KvListResponse {
  entries: Array<[key: string, value: string]>;
}
export interface KvGetResponse {
  value: string;
}
export interface KvPutRequest {
  value: string;
}
export interface KvPutResponse {
  ok: true;
}
export interface KvDeleteResponse {
  existed: boolean;
}
/** Download counts by lowercase hex infohash. */
export interface DownloadsResponse {
  downloads: Record<string, number>;
}
export type StatsResponse = StoreStats;
/** At most `limit` swarms, the most live peers first; `truncated` when more were live. */
export interface FullScrapeResponse {
  swarms: Array<[infoHashHex: string, seeders: number, leechers: number, downloaded: number]>;
  truncated: boolean;
}
export interface GcResponse {
  peersRemoved: number;
  swarmsRemoved: number;
  durationMs: number;
}
export interface LeaseRequest {
  holder: string;
  ttlMs: number;
}
export interface LeaseResponse {
  held: boolean;
  holder: string | null;
  expiresAt: number | null;
}
export interface LeaseReleaseRequest {
  holder: string;
}
export interface LeaseReleaseResponse {
  released: boolean;
}
export type PolicyResponse = PolicySnapshot;
/** Adds `deltas[i]` to `keys[i]` in window `window` (of `windowMs`); at most RATE_COUNT_KEYS_MAX keys. */
export interface RateLimitsRequest {
  window: number;
  windowMs: number;
  keys: string[];
  deltas: number[];
}
/** Every key's cluster-wide count in the window and the one before, after the add, in order. */
export interface RateLimitsResponse {
  current: number[];
  previous: number[];
}

/** One refused entry of an admin import (docs/policy.md). */
export interface ErrorProblem {
  index: number;
  code: string;
  value: string;
}

/**
 * The body of every non-2xx answer: a code of `apiErrors`, of @shoal/storage
 * (`STORE_ERR_*`) or of @shoal/policy (`POLICY_ERR_*`), and a message.
 */
export interface ErrorBody {
  code: string;
  message: string;
  /** RPC_ERR_VERSION: the batch versions storage-api speaks. */
  supported?: readonly number[];
  /** Admin imports: the entries refused. */
  problems?: readonly ErrorProblem[];
}

/** The error body in `value`, or undefined when it is not one (a proxy's page). */
export function parseErrorBody(value: unknown): ErrorBody | undefined {
  const r = value as Partial<Record<keyof ErrorBody, unknown>> | null;
  if (typeof r !== 'object' || r === null || typeof r.code !== 'string') return undefined;
  const body: ErrorBody = {
    code: r.code,
    message: typeof r.message === 'string' ? r.message : '',
  };
  if (Array.isArray(r.supported)) body.supported = r.supported.filter(Number.isInteger);
  if (Array.isArray(r.problems)) body.problems = r.problems.flatMap(problemOf);
  return body;
}

function problemOf(p: unknown): ErrorProblem[] {
  const r = p as Record<string, unknown> | null;
  return typeof r === 'object' &&
    r !== null &&
    typeof r.index === 'number' &&
    typeof r.code === 'string'
    ? [{ index: r.index, code: r.code, value: typeof r.value === 'string' ? r.value : '' }]
    : [];
}

/**
 * storage-api's own codes and their statuses (docs/conventions.md "Errors");
 * services/storage-api/README.md is the docs table, kept in step by its
 * errors.test.ts.
 */
export const apiErrors = {
  RPC_ERR_UNAUTHORIZED: { message: 'missing or wrong bearer token', httpStatus: 401 },
  RPC_ERR_ADMIN_DISABLED: {
    message: 'admin API disabled: STORAGE_API_ADMIN_TOKEN is not set',
    httpStatus: 403,
  },
  RPC_ERR_BAD_BODY: { message: 'malformed request body or parameter', httpStatus: 400 },
  RPC_ERR_BAD_CONTENT_TYPE: { message: 'unsupported content-type', httpStatus: 415 },
  RPC_ERR_TOO_LARGE: { message: 'request body or batch larger than allowed', httpStatus: 413 },
  RPC_ERR_VERSION: {
    message: 'batch body of a version this storage-api does not speak',
    httpStatus: 400,
  },
  RPC_ERR_NOT_FOUND: { message: 'no such endpoint', httpStatus: 404 },
  RPC_ERR_SHUTTING_DOWN: { message: 'storage-api is shutting down', httpStatus: 503 },
  RPC_ERR_INTERNAL: { message: 'internal error', httpStatus: 500 },
  KV_ERR_NOT_FOUND: { message: 'no such key', httpStatus: 404 },
} as const satisfies Record<string, { message: string; httpStatus: number }>;

export type ApiErrorCode = keyof typeof apiErrors;
