// The gateway's settings: one schema, names are the environment variables
// (docs/conventions.md "Config"). Defaults follow docs/decisions.md "Tracker semantics".
import ipaddr from 'ipaddr.js';
import { SECRET, Type, configLoader, listenerChecks, listenerSettings } from '@shoal/config';
import { processSettings, type LoadedConfig, type Static } from '@shoal/config';
import { RedisStoreConfigSchema } from '@shoal/storage/redis';
import { PostgresStoreConfigSchema } from '@shoal/storage/postgres';
import { checkStoreSettings } from '@shoal/storage';
import { checkLoadConfig, loadConfigSchema } from './load/config.ts';
import { checkRemoteStoreConfig, remoteStoreConfigSchema } from './remote/config.ts';
import { loadUdpBatch } from './udp-batch.ts';

/** The shared-memory store's peer heap bounds (docs/storage.md "Shared-memory store"): offsets stay below 2 GiB. */
const SHARED_MEMORY_MIN_BYTES = 2 << 20;
const SHARED_MEMORY_LIMIT_BYTES = 2 ** 31 - (1 << 20);

const Route = Type.String({ pattern: '^/[^?#\\s]*$' });
/** docs/policy.md: off skips the step; allow admits listed entries only; deny refuses listed ones. */
const Approval = (description: string) =>
  Type.Union([Type.Literal('off'), Type.Literal('allow'), Type.Literal('deny')], {
    default: 'off',
    description,
  });
const RatePerSecond = (description: string) =>
  Type.Number({ minimum: 0, maximum: 1_000_000, default: 0, description });
const Burst = (description: string) =>
  Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20, description });

/** The middleware chain (docs/policy.md "The chain in the gateway"); every step is off by default. */
export const policyConfigSchema = Type.Object({
  TORRENT_APPROVAL: Approval(
    'off, allow (only listed info hashes) or deny (listed ones refused); scrapes of a refused torrent answer zeros',
  ),
  CLIENT_APPROVAL: Approval(
    "off, allow or deny, matched against the peer_id's leading bytes (`-TR`, `-qB4`, ...)",
  ),
  PASSKEY_REQUIRED: Type.Boolean({
    default: false,
    description:
      'Private mode: HTTP `<announce route>/<passkey>` and `<scrape route>/<passkey>`, UDP BEP 41 URL data `/announce/<passkey>`; UDP scrapes carry no URL data and are refused. With false a passkey in the path is ignored',
  }),
  JWT_REQUIRED: Type.Boolean({
    default: false,
    description:
      "Announces need a signed JWT (HTTP `jwt` parameter, UDP URL data `?jwt=`) with an `infohash` claim, as chihaya's jwt middleware; scrapes do not",
  }),
  JWT_ISSUER: Type.Optional(
    Type.String({ minLength: 1, description: 'Required `iss`; required with JWT_REQUIRED' }),
  ),
  JWT_AUDIENCE: Type.Optional(
    Type.String({ minLength: 1, description: 'Required `aud` when set; unset: not checked' }),
  ),
  JWT_JWKS_URL: Type.Optional(
    Type.String({
      pattern: '^https?://\\S+$',
      description:
        'A JWKS URL, fetched and cached; with JWT_REQUIRED exactly one of JWT_JWKS_URL and JWT_JWKS',
    }),
  ),
  JWT_JWKS: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'The key set as a JWKS document in JSON text: `{"keys":[...]}`',
    }),
  ),
  JWT_ALGORITHMS: Type.Array(Type.String({ minLength: 1 }), {
    default: ['RS256', 'ES256', 'EdDSA'],
    minItems: 1,
    description: 'Accepted `alg`s',
  }),
  JWT_CACHE_SIZE: Type.Integer({
    minimum: 0,
    maximum: 10_000_000,
    default: 10_000,
    description:
      'Verified tokens remembered until their `exp`, so a re-announce does not verify again; 0 verifies every announce',
  }),
  JWT_CLOCK_TOLERANCE_SECONDS: Type.Integer({
    minimum: 0,
    maximum: 3600,
    default: 0,
    description: 'Leeway on `exp` / `nbf` for clocks that disagree',
  }),
  ANNOUNCE_INTERVAL_JITTER_SECONDS: Type.Integer({
    minimum: 0,
    maximum: 86_400,
    default: 0,
    description:
      "Adds a random 0..N s to `interval` (HTTP and UDP) so a restart's burst of clients does not re-announce in step; `min interval` unchanged",
  }),
  RATE_LIMIT_ANNOUNCES_PER_SECOND: RatePerSecond(
    "Token bucket per client address (IPv6 per /64) for announces plus scrapes, in this replica's memory; 0 = off",
  ),
  RATE_LIMIT_ANNOUNCE_BURST: Burst('Bucket size of RATE_LIMIT_ANNOUNCES_PER_SECOND'),
  RATE_LIMIT_CONNECTS_PER_SECOND: RatePerSecond(
    'The same for UDP connects, before a connection id is issued; 0 = off',
  ),
  RATE_LIMIT_CONNECT_BURST: Burst('Bucket size of RATE_LIMIT_CONNECTS_PER_SECOND'),
  RATE_LIMIT_MAX_ADDRESSES: Type.Integer({
    minimum: 1,
    maximum: 100_000_000,
    default: 100_000,
    description: 'Addresses each limiter tracks; the least recently seen are forgotten first',
  }),
  RATE_LIMIT_SHARED: Type.Boolean({
    default: false,
    description:
      'RATE_LIMIT_ANNOUNCES_PER_SECOND holds across all gateway replicas: each gateway decides locally and syncs its counts per address through the store (Redis, PostgreSQL, storage-api) every RATE_LIMIT_SHARED_SYNC_MS; an address may make RATE_LIMIT_ANNOUNCE_BURST + rate x RATE_LIMIT_SHARED_WINDOW_SECONDS requests per window, cluster-wide (docs/policy.md "Shared rate limits")',
  }),
  RATE_LIMIT_SHARED_WINDOW_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 10,
    description: 'The sliding window of the shared limit',
  }),
  RATE_LIMIT_SHARED_SYNC_MS: Type.Integer({
    minimum: 10,
    maximum: 60_000,
    default: 250,
    description:
      "How often a gateway sends its counts and takes back the cluster's: the bound on how far over the limit the cluster can go grows with it",
  }),
  ABUSE_BANS: Type.Boolean({
    default: false,
    description:
      "Enforces the bans of the policy data (an operator's, and every gateway's own, docs/policy.md \"Abuse control\"): a banned source's UDP packets are dropped and its HTTP requests refused",
  }),
  ABUSE_BAN_STRIKES: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 0,
    description:
      'Bad UDP connection ids or malformed UDP packets from one source (IPv4 address, IPv6 /64) within ABUSE_BAN_WINDOW_SECONDS that ban it; 0 = the gateway bans nobody by itself. Turns ABUSE_BANS on',
  }),
  ABUSE_BAN_WINDOW_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 10,
    description: 'The window ABUSE_BAN_STRIKES are counted in',
  }),
  ABUSE_BAN_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 30 * 86_400,
    default: 600,
    description: 'How long a ban the gateway applies lasts',
  }),
  HYBRID_LINKS: Type.Boolean({
    default: false,
    description:
      'Announces and scrapes of either hash of a linked hybrid torrent (v1 and v2, docs/policy.md "Hybrid torrents") use one swarm, the link\'s first hash; links come with the policy snapshot',
  }),
  HYBRID_LINKS_LEARN: Type.Boolean({
    default: false,
    description:
      'Also learns links from a client announcing two hashes with one peer_id and key (turns HYBRID_LINKS on); lets any client merge two swarms, so only for trackers that trust their clients',
  }),
  HYBRID_LINKS_LEARN_WINDOW_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 120,
    description: 'The two announces must arrive within this many seconds of each other',
  }),
  HYBRID_LINKS_LEARN_MAX_CLIENTS: Type.Integer({
    minimum: 1,
    maximum: 10_000_000,
    default: 100_000,
    description: 'Clients the learner remembers; the oldest are forgotten first',
  }),
  POLICY_REFRESH_SECONDS: Type.Number({
    minimum: 1,
    maximum: 86_400,
    default: 10,
    description:
      "How often the lists and passkeys are re-read (remote: GET /v1/policy with If-None-Match; embedded: the store's KV): a change is enforced within this bound",
  }),
  ADMIN_API_TOKEN: Type.Optional(
    Type.String({
      minLength: 16,
      ...SECRET,
      description:
        'Embedded stores only: serves the policy admin API (/v1/admin/*, docs/policy.md) on the admin port behind this bearer token. With STORAGE_DRIVER=remote, storage-api serves it',
    }),
  ),
});

const Seconds = (minimum: number, defaultValue: number, description: string) =>
  Type.Integer({ minimum, maximum: 86_400, default: defaultValue, description });

export const gatewayConfigSchema = Type.Object({
  ...listenerSettings(
    {
      default: 6969,
      description: 'HTTP (TCP) and UDP port, the same number for both; 0 picks a free one (tests)',
    },
    9090,
    'IP literal to bind; `::` is dual-stack: one socket answers IPv4 (as ::ffff:a.b.c.d, treated as IPv4) and IPv6',
  ),
  HTTP_ENABLED: Type.Boolean({ default: true, description: 'Serve the HTTP tracker' }),
  UDP_ENABLED: Type.Boolean({ default: true, description: 'Serve the UDP tracker (BEP 15)' }),
  ANNOUNCE_ROUTES: Type.Array(Route, {
    default: ['/announce'],
    minItems: 1,
    description: 'HTTP paths of announces',
  }),
  SCRAPE_ROUTES: Type.Array(Route, {
    default: ['/scrape'],
    description: 'HTTP paths of scrapes; empty turns HTTP scrape off',
  }),
  ANNOUNCE_INTERVAL_SECONDS: Seconds(
    60,
    1800,
    '`interval` of every answer; newTrackon rejects trackers announcing under 300 s (torrust#535)',
  ),
  MIN_INTERVAL_SECONDS: Seconds(
    0,
    900,
    '`min interval` of every answer; at most ANNOUNCE_INTERVAL_SECONDS',
  ),
  RETRY_LATER_INTERVAL_SECONDS: Seconds(
    30,
    300,
    '`interval` and `min interval` of an HTTP failure that is the tracker\'s (storage down, starting, rate limit): libtorrent waits max(this, its 300 s floor), without it 1800 s (docs/decisions.md "Failure answers")',
  ),
  REFUSAL_INTERVAL_SECONDS: Seconds(
    30,
    3600,
    '`interval` and `min interval` of an HTTP refusal that retrying will not change (unregistered torrent, bad passkey, malformed request; docs/decisions.md "Failure answers")',
  ),
  PEER_LIFETIME_SECONDS: Seconds(
    60,
    1860,
    'A peer not heard from for this long is gone: 31 min, one interval plus a minute of slack (docs/decisions.md "Tracker semantics"); must exceed ANNOUNCE_INTERVAL_SECONDS',
  ),
  NUMWANT_DEFAULT: Type.Integer({
    minimum: 0,
    maximum: 1000,
    default: 50,
    description: 'Peers per answer when the client does not ask (or asks a negative number)',
  }),
  NUMWANT_MAX: Type.Integer({
    minimum: 0,
    maximum: 1000,
    default: 200,
    description: 'Most peers per answer, whatever the client asks',
  }),
  SCRAPE_MAX_HASHES: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 64,
    description:
      'Hashes per scrape; BEP 15 leaves room for about 74 in one UDP scrape, and UDP caps at that anyway',
  }),
  TRUSTED_PROXIES: Type.Array(Type.String(), {
    default: [],
    description:
      'CIDRs (load balancers, ingress) whose X-Forwarded-For (rightmost untrusted hop) or X-Real-IP is believed',
  }),
  ALLOW_IP_PARAM: Type.Boolean({
    default: false,
    description: 'Honour the HTTP `ip` parameter and the UDP IPv4 field (same family only for UDP)',
  }),
  ALLOW_IPV4_IPV6_PARAMS: Type.Boolean({
    default: false,
    description:
      'BEP 7: an HTTP announce with `ipv6=` (from an IPv4 client) or `ipv4=` (from an IPv6 client) also registers the peer at that address, and its answer carries `peers` and `peers6` together; the parameter of the family the client was seen in is never used. Off: both are ignored. It lets a client announce an address it was not seen at, which BEP 7 now discourages (docs/decisions.md "BEP 7 addresses")',
  }),
  MOVE_PEERS_BY_KEY: Type.Boolean({
    default: true,
    description:
      'A client re-announcing with the same peer_id and `key` (HTTP, or the UDP key field) from a new address or port replaces its entry instead of adding one; announces without a key never move anything (docs/decisions.md "Peers that move")',
  }),
  HTTP_EXTERNAL_IP: Type.Boolean({
    default: true,
    description:
      'HTTP announce answers carry BEP 24 `external ip`: the address the gateway saw the client at (after TRUSTED_PROXIES, never the `ip` parameter), 4 or 16 raw bytes, so a client behind NAT learns its public address',
  }),
  UDP_CONNECTION_ID_SECRET: Type.Optional(
    Type.String({
      pattern: '^([0-9a-fA-F]{2}){16,}$',
      ...SECRET,
      description:
        '32 or more hex characters shared by every replica, so a client may connect on one and announce on another; unset: random per process, with a warning',
    }),
  ),
  UDP_CONNECTION_ID_MAX_AGE_SECONDS: Seconds(
    60,
    3600,
    'Connection ids older than this are refused. Lenient: some clients reuse an id for minutes and strict 2-minute windows break them (chihaya#417); opentracker accepts up to two hours',
  ),
  UDP_RECV_BUFFER_BYTES: Type.Integer({
    minimum: 65_536,
    maximum: 1 << 30,
    default: 4 << 20,
    description:
      "SO_RCVBUF of the UDP socket. Linux's 208 KiB default drops bursts of announces before the event loop reads them; the kernel caps this at net.core.rmem_max (raise it with sysctl for the full size)",
  }),
  UDP_BATCH_SYSCALLS: Type.Union([Type.Literal('auto'), Type.Literal('on'), Type.Literal('off')], {
    default: 'auto',
    description:
      'Read and answer UDP datagrams up to 64 per system call (recvmmsg/sendmmsg) through the native addon built at install (docs/udp-batch.md). auto: when the addon loaded, else node:dgram (the log says why); on: refuse to boot without it; off: node:dgram',
  }),
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 600_000,
    default: 10_000,
    description:
      'A request line and headers must have arrived whole this long after the first byte (or the connection), however slowly they drip; otherwise 408 and a close (docs/limits.md). opentracker cuts a client at 30 s',
  }),
  HTTP_KEEPALIVE_TIMEOUT_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 5,
    description:
      'Idle time on a keep-alive socket between requests (Node adds 1 s before it closes)',
  }),
  HTTP_MAX_HEADER_BYTES: Type.Integer({
    minimum: 1024,
    maximum: 1 << 20,
    default: 16_384,
    description:
      "Request line plus headers; more is 431 and a close. 16 KiB is Node's default and aquatic_http's request buffer; a scrape of n hashes needs about 71 n + 1024 bytes, so raise it with SCRAPE_MAX_HASHES",
  }),
  HTTP_MAX_CONNECTIONS: Type.Integer({
    minimum: 1,
    maximum: 10_000_000,
    default: 10_000,
    description:
      'TCP connections the HTTP tracker holds at once; the next are closed on accept. Keep it under `ulimit -n`',
  }),
  WS_ENABLED: Type.Boolean({
    default: true,
    description:
      'Serve the WebTorrent WebSocket tracker on the announce routes of the HTTP port (ws://) and, with TLS, the HTTPS port (wss://); docs/webtorrent.md',
  }),
  WS_ANNOUNCE_INTERVAL_SECONDS: Seconds(
    10,
    120,
    '`interval` of WebSocket announce answers: how often a browser announces again with fresh offers (bittorrent-tracker and aquatic_ws: 120 s)',
  ),
  WS_PEER_LIFETIME_SECONDS: Seconds(
    20,
    300,
    'A WebSocket peer not heard from for this long leaves its swarms even if its socket was never seen to close (a gateway that died); must exceed WS_ANNOUNCE_INTERVAL_SECONDS',
  ),
  WS_MAX_OFFERS: Type.Integer({
    minimum: 1,
    maximum: 100,
    default: 10,
    description:
      'Offers relayed per announce; later ones are ignored (the bittorrent-tracker client sends at most 5, aquatic_ws relays at most 10)',
  }),
  WS_MAX_MESSAGE_BYTES: Type.Integer({
    minimum: 1024,
    maximum: 16 << 20,
    default: 65_536,
    description:
      'Largest WebSocket message; a larger one closes the connection with 1009 (aquatic_ws: 64 KiB)',
  }),
  WS_MESSAGES_PER_SECOND: Type.Number({
    minimum: 0.01,
    maximum: 1_000_000,
    default: 10,
    description:
      'Messages per WebSocket connection per second (a token bucket); over it a message gets `failure reason` POLICY_ERR_RATE_LIMITED and nothing else',
  }),
  WS_MESSAGE_BURST: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 40,
    description: 'Bucket size of WS_MESSAGES_PER_SECOND',
  }),
  WS_MAX_CONNECTIONS: Type.Integer({
    minimum: 1,
    maximum: 10_000_000,
    default: 10_000,
    description:
      'WebSocket connections per gateway process; the next upgrade gets 503. They also count toward HTTP_MAX_CONNECTIONS of their port',
  }),
  WS_PING_INTERVAL_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 30,
    description:
      'Every connection is pinged this often; one that has not answered the previous ping is closed',
  }),
  WS_IDLE_TIMEOUT_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 86_400,
    default: 300,
    description:
      'A connection that sends no message for this long is closed (a browser announces every WS_ANNOUNCE_INTERVAL_SECONDS)',
  }),
  WS_MAX_BUFFERED_BYTES: Type.Integer({
    minimum: 1024,
    maximum: 1 << 30,
    default: 65_536,
    description:
      "Unsent bytes a socket may hold: a relayed offer or answer to a socket over it is dropped (counted), and a client over it that is owed its own answer is closed; bounds a slow reader's memory",
  }),
  WS_RELAY_QUEUE_MAX: Type.Integer({
    minimum: 16,
    maximum: 1_000_000,
    default: 10_000,
    description:
      'STORAGE_DRIVER=remote: offers and answers for other gateways waiting to be sent on the relay stream to storage-api or for its acknowledgement; more are dropped and counted (docs/webtorrent.md "The split topology")',
  }),
  WS_RELAY_RECONNECT_MAX_MS: Type.Integer({
    minimum: 100,
    maximum: 600_000,
    default: 5000,
    description:
      'STORAGE_DRIVER=remote: longest wait before the relay stream to storage-api is opened again after it was lost (backoff from 100 ms, doubling, with jitter)',
  }),
  FULL_SCRAPE_ENABLED: Type.Boolean({
    default: false,
    description:
      'Answer a scrape with no info_hash with every live swarm (docs/full-scrape.md), from a cache; off by default: it lists every torrent the tracker knows. Refused with PASSKEY_REQUIRED',
  }),
  FULL_SCRAPE_REFRESH_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 86_400,
    default: 300,
    description:
      "The cache is rebuilt from the store at most this often, on a request that finds it older (one store walk at a time); also the answer's BEP 48 `min_request_interval`",
  }),
  FULL_SCRAPE_MAX_TORRENTS: Type.Integer({
    minimum: 1,
    maximum: 100_000,
    default: 10_000,
    description:
      'Most swarms in the answer: over it, the swarms with the most live peers are kept and the answer carries `flags` `truncated: 1`',
  }),
  FULL_SCRAPE_PER_MINUTE: Type.Number({
    minimum: 0.001,
    maximum: 60_000,
    default: 1,
    description:
      'Full scrapes per client address (IPv6 per /64) per minute, a token bucket as the rate limit step; over it the answer is `POLICY_ERR_RATE_LIMITED`',
  }),
  FULL_SCRAPE_BURST: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 2,
    description: 'Bucket size of FULL_SCRAPE_PER_MINUTE',
  }),
  TLS_CERT_FILE: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'PEM certificate chain (leaf first) of the HTTPS tracker; with TLS_KEY_FILE it turns HTTPS on at HTTPS_PORT. Re-read when it changes, Kubernetes Secret updates included (docs/tls.md)',
    }),
  ),
  TLS_KEY_FILE: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'PEM private key of TLS_CERT_FILE; both or neither',
    }),
  ),
  HTTPS_PORT: Type.Integer({
    minimum: 0,
    maximum: 65_535,
    default: 6970,
    description:
      'TCP port of the HTTPS tracker (announce and scrape as on HTTP) when TLS_CERT_FILE is set; 0 picks a free one. Plain HTTP stays on PORT unless HTTP_ENABLED is false',
  }),
  TLS_RELOAD_CHECK_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 86_400,
    default: 60,
    description:
      "How often the certificate and key files are re-read even when no file event came (a watch can miss a remount); a change is normally seen within a second through the directories' watch",
  }),
  LOG_LEVEL: processSettings.LOG_LEVEL,
  STORAGE_DRIVER: Type.Union(
    [
      Type.Literal('memory'),
      Type.Literal('redis'),
      Type.Literal('postgres'),
      Type.Literal('remote'),
    ],
    {
      default: 'memory',
      description:
        'memory: in-process, the `make run` default; redis: REDIS_* (docs/redis.md); postgres: DATABASE_URL and PG_* (docs/postgres.md, docs/cockroachdb.md); remote: storage-api at STORAGE_API_URL with the REMOTE_* settings (docs/storage-api.md)',
    },
  ),
  ...remoteStoreConfigSchema.properties,
  ...RedisStoreConfigSchema.properties,
  ...PostgresStoreConfigSchema.properties,
  GATEWAY_WORKERS: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 256,
      description:
        "Worker threads, each serving the HTTP, HTTPS and UDP ports through SO_REUSEPORT (docs/workers.md); unset: the cores this process may use (CPU affinity and the container's CPU quota). 1 serves from the main thread. With the memory store and more than one worker, all workers share one shared-memory store",
    }),
  ),
  SHARED_MEMORY_MAX_BYTES: Type.Integer({
    minimum: SHARED_MEMORY_MIN_BYTES,
    maximum: SHARED_MEMORY_LIMIT_BYTES,
    default: SHARED_MEMORY_LIMIT_BYTES,
    description:
      'STORAGE_DRIVER=memory with more than one worker: most bytes the shared-memory peer heap grows to (reserved address space; memory is used as peers arrive). An announce that needs more is answered "retry later" (docs/workers.md "Stores")',
  }),
  SHARED_MEMORY_PEER_IDS: Type.Boolean({
    default: false,
    description:
      'STORAGE_DRIVER=memory with more than one worker: keep each peer_id for non-compact answers (20 B more per peer; docs/storage.md "Shared-memory store"). Off: non-compact answers carry no `peer id`, as with REDIS_STORE_PEER_IDS=false; one worker (the memory driver) always keeps them',
  }),
  STATS_INTERVAL_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 86_400,
    default: 30,
    description:
      'How often the shoal_swarm_* gauges are refreshed from an embedded store (with the remote driver storage-api publishes them)',
  }),
  SHUTDOWN_GRACE_SECONDS: processSettings.SHUTDOWN_GRACE_SECONDS,
  ...policyConfigSchema.properties,
  ...loadConfigSchema.properties,
});

export type GatewayConfig = LoadedConfig<typeof gatewayConfigSchema>;

function cidrList(list: readonly string[]): string | undefined {
  const bad = list.filter((entry) => {
    try {
      ipaddr.parseCIDR(
        entry.includes('/')
          ? entry
          : `${entry}/${ipaddr.parse(entry).kind() === 'ipv4' ? 32 : 128}`,
      );
      return false;
    } catch {
      return true;
    }
  });
  return bad.length === 0
    ? undefined
    : `not CIDRs or addresses: ${bad.map((b) => JSON.stringify(b)).join(', ')}`;
}

/**
 * An HTTP scrape's request line and headers for `hashes` info_hashes: each
 * `info_hash=` plus 20 percent-encoded bytes and a `&` (71 bytes), and 1 KiB
 * for the path, passkey and the headers clients send.
 */
export function scrapeRequestBytes(hashes: number): number {
  return 71 * hashes + 1024;
}

export const loadGatewayConfig = configLoader(gatewayConfigSchema, {
  refine: { ...listenerChecks, TRUSTED_PROXIES: cidrList },
  check: (c) => {
    const problems = [];
    if (c.MIN_INTERVAL_SECONDS > c.ANNOUNCE_INTERVAL_SECONDS) {
      problems.push({
        key: 'MIN_INTERVAL_SECONDS',
        message: 'must not exceed ANNOUNCE_INTERVAL_SECONDS',
      });
    }
    if (c.NUMWANT_DEFAULT > c.NUMWANT_MAX) {
      problems.push({ key: 'NUMWANT_DEFAULT', message: 'must not exceed NUMWANT_MAX' });
    }
    if (c.WS_PEER_LIFETIME_SECONDS <= c.WS_ANNOUNCE_INTERVAL_SECONDS) {
      problems.push({
        key: 'WS_PEER_LIFETIME_SECONDS',
        message: 'must exceed WS_ANNOUNCE_INTERVAL_SECONDS or browsers vanish between announces',
      });
    }
    if (c.PEER_LIFETIME_SECONDS <= c.ANNOUNCE_INTERVAL_SECONDS) {
      problems.push({
        key: 'PEER_LIFETIME_SECONDS',
        message: 'must exceed ANNOUNCE_INTERVAL_SECONDS or peers vanish between announces',
      });
    }
    if (c.STORAGE_DRIVER === 'remote') problems.push(...checkRemoteStoreConfig(c));
    else problems.push(...checkStoreSettings(c.STORAGE_DRIVER, c));
    problems.push(...checkPolicyConfig(c));
    problems.push(...checkLoadConfig(c));
    if ((c.TLS_CERT_FILE === undefined) !== (c.TLS_KEY_FILE === undefined)) {
      problems.push({
        key: c.TLS_CERT_FILE === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE',
        message: 'TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither',
      });
    }
    if (c.FULL_SCRAPE_ENABLED && c.PASSKEY_REQUIRED) {
      problems.push({
        key: 'FULL_SCRAPE_ENABLED',
        message: 'a private tracker (PASSKEY_REQUIRED) does not publish its torrent list',
      });
    }
    if (
      c.TLS_CERT_FILE !== undefined &&
      c.HTTP_ENABLED &&
      c.HTTPS_PORT !== 0 &&
      c.HTTPS_PORT === c.PORT
    ) {
      problems.push({
        key: 'HTTPS_PORT',
        message: 'must differ from PORT while HTTP_ENABLED is true (both are TCP listeners)',
      });
    }
    if (c.UDP_ENABLED && c.UDP_BATCH_SYSCALLS === 'on') {
      const { why } = loadUdpBatch();
      if (why !== undefined)
        problems.push({ key: 'UDP_BATCH_SYSCALLS', message: `is on but ${why}` });
    }
    if (!c.HTTP_ENABLED && !c.UDP_ENABLED && c.TLS_CERT_FILE === undefined) {
      problems.push({
        key: 'UDP_ENABLED',
        message: 'HTTP_ENABLED and UDP_ENABLED are both false and TLS is off: nothing to serve',
      });
    }
    return problems;
  },
});

type PolicyConfig = Readonly<Static<typeof policyConfigSchema>>;

function checkPolicyConfig(c: PolicyConfig): Array<{ key: string; message: string }> {
  const problems: Array<{ key: string; message: string }> = [];
  if (c.JWT_REQUIRED) {
    if (c.JWT_ISSUER === undefined)
      problems.push({ key: 'JWT_ISSUER', message: 'is required when JWT_REQUIRED is true' });
    if ((c.JWT_JWKS_URL === undefined) === (c.JWT_JWKS === undefined))
      problems.push({
        key: 'JWT_JWKS_URL',
        message: 'JWT_REQUIRED needs exactly one of JWT_JWKS_URL and JWT_JWKS',
      });
  }
  if (c.RATE_LIMIT_SHARED && c.RATE_LIMIT_ANNOUNCES_PER_SECOND === 0)
    problems.push({
      key: 'RATE_LIMIT_SHARED',
      message: 'needs RATE_LIMIT_ANNOUNCES_PER_SECOND > 0 (the limit it shares)',
    });
  if (
    c.RATE_LIMIT_SHARED &&
    c.RATE_LIMIT_SHARED_SYNC_MS * 4 > c.RATE_LIMIT_SHARED_WINDOW_SECONDS * 1000
  )
    problems.push({
      key: 'RATE_LIMIT_SHARED_SYNC_MS',
      message: 'must be at most a quarter of RATE_LIMIT_SHARED_WINDOW_SECONDS',
    });
  if (c.JWT_JWKS !== undefined && parseJwks(c.JWT_JWKS) === undefined)
    problems.push({
      key: 'JWT_JWKS',
      message: 'must be a JSON document with a `keys` array (a JWKS, RFC 7517 section 5)',
    });
  return problems;
}

/** JWT_JWKS as a JWKS document, or undefined when it is not one. */
export function parseJwks(text: string): { keys: object[] } | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || !('keys' in doc)) return undefined;
  const keys: unknown = doc.keys;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'object' && k !== null))
    return undefined;
  return { keys: keys as object[] };
}
