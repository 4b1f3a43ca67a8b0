// storage-api settings (docs/conventions.md "Config"): one schema, names are the
// environment variables, every violation reported at once. The drivers'
// own settings are composed in unchanged (REDIS_*, DATABASE_URL / PG_*), so
// they read the same here as in an embedded gateway.
import { SECRET, Type, configLoader, listenerChecks, listenerSettings } from '@shoal/config';
import { processSettings, storageApiToken, type LoadedConfig } from '@shoal/config';
import { STORAGE_RPC_MAX_OPS, STORAGE_RPC_MAX_SCRAPE_HASHES } from '@shoal/protocol/storage-rpc';
import { RedisStoreConfigSchema } from '@shoal/storage/redis';
import { PostgresStoreConfigSchema } from '@shoal/storage/postgres';
import { checkStoreSettings } from '@shoal/storage';

const Driver = (defaultDriver: 'memory' | 'redis' | 'postgres', description: string) =>
  Type.Union([Type.Literal('memory'), Type.Literal('redis'), Type.Literal('postgres')], {
    default: defaultDriver,
    description,
  });

export const configSchema = Type.Object({
  ...listenerSettings(
    { default: 8080, description: 'Port of the internal API; 0 picks a free one (tests)' },
    9091,
    'Address of the internal API (batch, KV, downloads, stats, gc, leases, admin); `::` is dual-stack',
  ),
  STORAGE_API_TOKEN: storageApiToken(
    'Shared with the gateways and the gc-worker; every API request carries it as a Bearer token. At least 16 characters',
  ),
  STORAGE_API_ADMIN_TOKEN: Type.Optional(
    Type.String({
      minLength: 16,
      ...SECRET,
      description:
        "Bearer token of the admin API (/v1/admin/*, docs/policy.md): approval lists, passkeys, stats, top, doctor. Unset: those routes answer 403 RPC_ERR_ADMIN_DISABLED. Separate from STORAGE_API_TOKEN so a gateway's credentials cannot edit passkeys",
    }),
  ),
  PEER_STORE_DRIVER: Driver(
    'memory',
    'Where peers live, and their download counts while both drivers are the same (docs/storage-api.md); memory keeps them in this process: one replica only',
  ),
  DATA_STORE_DRIVER: Driver(
    'memory',
    "Where the durable data lives: KV (approval lists, passkeys), the gc-worker's leases and, when split from the peers, download counts. memory only with PEER_STORE_DRIVER=memory",
  ),
  PEER_LIFETIME_SECONDS: Type.Integer({
    minimum: 60,
    maximum: 86_400,
    default: 1860,
    description:
      'A peer not heard from for this long is gone: 31 min, one announce interval plus a minute of slack (docs/decisions.md "Tracker semantics")',
  }),
  PEER_LIFETIME_MAX_SECONDS: Type.Integer({
    minimum: 60,
    maximum: 86_400,
    default: 10_860,
    description:
      'Longest lifetime a gateway may promise a peer (x-shoal-peer-lifetime-seconds, docs/load.md); longer promises are cut to it. 3 h plus a minute: the longest interval public tracker lists accept, plus slack',
  }),
  LOAD_BATCH_TARGET_MS: Type.Integer({
    minimum: 1,
    maximum: 60_000,
    default: 50,
    description:
      "A batch's store time that counts as load 1 in the x-shoal-load report the gateways adapt their interval to (docs/load.md)",
  }),
  LOAD_QUEUE_TARGET_OPS: Type.Integer({
    minimum: 1,
    maximum: 10_000_000,
    default: 4096,
    description:
      'Store operations in flight in this storage-api that count as load 1 in the x-shoal-load report (docs/load.md)',
  }),
  STATS_INTERVAL_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 86_400,
    default: 30,
    description: 'How often the shoal_swarm_* gauges are refreshed from the peer store',
  }),
  BATCH_MAX_OPS: Type.Integer({
    minimum: 1,
    maximum: STORAGE_RPC_MAX_OPS,
    default: 4096,
    description: 'Most ops in one POST /v1/batch; more is 413 RPC_ERR_TOO_LARGE',
  }),
  BATCH_MAX_SCRAPE_HASHES: Type.Integer({
    minimum: 1,
    maximum: STORAGE_RPC_MAX_SCRAPE_HASHES,
    default: STORAGE_RPC_MAX_SCRAPE_HASHES,
    description: 'Most info_hashes in one scrape op (the wire carries at most 255)',
  }),
  MAX_BODY_BYTES: Type.Integer({
    minimum: 1024,
    maximum: 64 << 20,
    default: 4 << 20,
    description: 'Largest request body of any endpoint; more is 413 RPC_ERR_TOO_LARGE',
  }),
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 600_000,
    default: 30_000,
    description:
      'A request, body included, must have arrived whole this long after it began, however slowly it drips; otherwise 408 and a close (docs/limits.md). The API is internal, but a drip must not hold it open either',
  }),
  HTTP_KEEPALIVE_TIMEOUT_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 60,
    description:
      "Idle time on a keep-alive socket between requests (Node adds 1 s). The gateways' pools and gc-workers read the Keep-Alive hint and let go of a socket 2 s before it, so the server never closes one they are reusing",
  }),
  HTTP_MAX_HEADER_BYTES: Type.Integer({
    minimum: 1024,
    maximum: 1 << 20,
    default: 64 << 10,
    description:
      'Request line plus headers; GET /v1/downloads with 1000 hashes needs about 52 KB. More is 431',
  }),
  HTTP_MAX_CONNECTIONS: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 4096,
    description:
      'TCP connections the API port holds at once (gateways x REMOTE_CONNECTIONS, gc-workers, shoalctl); the next are closed on accept',
  }),
  WS_RELAY_MAX_BUFFERED_BYTES: Type.Integer({
    minimum: 64 << 10,
    maximum: 256 << 20,
    default: 4 << 20,
    description:
      'Unsent bytes a gateway\'s WebSocket relay stream may hold; offers and answers for a gateway whose stream is this far behind are dropped and counted (docs/webtorrent.md "The split topology")',
  }),
  WS_RELAY_PING_INTERVAL_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 300,
    default: 10,
    description:
      'How often storage-api pings each gateway\'s relay stream; a stream that answered no ping since the previous one is cut, so a gateway that vanished without closing is gone after at most twice this (docs/webtorrent.md "A gateway that dies")',
  }),
  ...processSettings,
  ...RedisStoreConfigSchema.properties,
  // A gateway calling Redis itself sees one announce per turn (measured
  // 18.4-18.8k/s with auto-pipelining on vs 19.1-19.8k/s off). For storage-api
  // the gain is within this machine's noise: the split measured 0.58-0.75x of
  // embedded Redis with it on and 0.54-0.63x off over five runs (BENCHMARKS.md).
  REDIS_AUTO_PIPELINING: Type.Boolean({
    default: true,
    description:
      "ioredis auto-pipelining; on here, unlike the embedded gateway's default, because a batch's announces arrive together and can leave in one write",
  }),
  ...PostgresStoreConfigSchema.properties,
});

export type StorageApiConfig = LoadedConfig<typeof configSchema>;

export const loadStorageApiConfig = configLoader(configSchema, {
  refine: listenerChecks,
  check: (c) => {
    const problems = [];
    for (const driver of new Set([c.PEER_STORE_DRIVER, c.DATA_STORE_DRIVER]))
      problems.push(...checkStoreSettings(driver, c));
    if (c.PEER_LIFETIME_MAX_SECONDS < c.PEER_LIFETIME_SECONDS) {
      problems.push({
        key: 'PEER_LIFETIME_MAX_SECONDS',
        message: 'must not be under PEER_LIFETIME_SECONDS',
      });
    }
    if (c.DATA_STORE_DRIVER === 'memory' && c.PEER_STORE_DRIVER !== 'memory') {
      problems.push({
        key: 'DATA_STORE_DRIVER',
        message:
          'memory would lose the KV data and leases on restart while peers are kept elsewhere: use redis or postgres',
      });
    }
    return problems;
  },
});
