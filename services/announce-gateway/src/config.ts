// The gateway's settings: one schema, names are the environment variables
// (docs/conventions.md "Config"). Defaults follow docs/decisions.md "Tracker semantics".
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import {
  LogLevel,
  SECRET,
  Type,
  loadConfig,
  type LoadConfigOptions,
  type LoadedConfig,
  type Static,
} from '@shoal/config';
import { RedisStoreConfigSchema, checkRedisStoreConfig } from '@shoal/storage/redis';
import { PostgresStoreConfigSchema, checkPostgresStoreConfig } from '@shoal/storage/postgres';
import { checkRemoteStoreConfig, remoteStoreConfigSchema } from './remote/config.ts';

const Port = (defaultPort: number) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: defaultPort });
const Route = Type.String({ pattern: '^/[^?#\\s]*$' });
/** docs/policy.md: off skips the step; allow admits listed entries only; deny refuses listed ones. */
const Approval = Type.Union([Type.Literal('off'), Type.Literal('allow'), Type.Literal('deny')], {
  default: 'off',
});

/** The middleware chain (docs/policy.md "The chain in the gateway"); every step is off by default. */
export const policyConfigSchema = Type.Object({
  TORRENT_APPROVAL: Approval,
  /** Matched against the peer_id's leading bytes (`-TR`, `-qB4`, ...). */
  CLIENT_APPROVAL: Approval,
  /** Private mode: announces at `<announce route>/<passkey>`, UDP via BEP 41 URL data. */
  PASSKEY_REQUIRED: Type.Boolean({ default: false }),
  /** A signed JWT with an `infohash` claim on every announce (chihaya's jwt middleware). */
  JWT_REQUIRED: Type.Boolean({ default: false }),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  /** Expected `aud`; unset = not checked. */
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  /** A JWKS URL (fetched and cached by jose), or JWT_JWKS: exactly one of the two. */
  JWT_JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://\\S+$' })),
  /** A JWKS document as JSON text: `{"keys":[...]}`. */
  JWT_JWKS: Type.Optional(Type.String({ minLength: 1 })),
  JWT_ALGORITHMS: Type.Array(Type.String({ minLength: 1 }), {
    default: ['RS256', 'ES256', 'EdDSA'],
    minItems: 1,
  }),
  /** Verified tokens remembered until their exp, so a re-announce does not verify again. */
  JWT_CACHE_SIZE: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 10_000 }),
  /** Leeway on exp/nbf for clocks that disagree. */
  JWT_CLOCK_TOLERANCE_SECONDS: Type.Integer({ minimum: 0, maximum: 3600, default: 0 }),
  /** Adds 0..N s to `interval` so a restart's burst of clients does not re-announce in step. */
  ANNOUNCE_INTERVAL_JITTER_SECONDS: Type.Integer({ minimum: 0, maximum: 86_400, default: 0 }),
  /** Per client address (IPv6 per /64), announces plus scrapes; 0 = off. */
  RATE_LIMIT_ANNOUNCES_PER_SECOND: Type.Number({ minimum: 0, maximum: 1_000_000, default: 0 }),
  RATE_LIMIT_ANNOUNCE_BURST: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }),
  /** Per client address, UDP connects; 0 = off. */
  RATE_LIMIT_CONNECTS_PER_SECOND: Type.Number({ minimum: 0, maximum: 1_000_000, default: 0 }),
  RATE_LIMIT_CONNECT_BURST: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }),
  /** Addresses each limiter tracks; the least recently seen are forgotten first. */
  RATE_LIMIT_MAX_ADDRESSES: Type.Integer({ minimum: 1, maximum: 100_000_000, default: 100_000 }),
  /** How often the lists and passkeys are re-read: a change is enforced within this bound. */
  POLICY_REFRESH_SECONDS: Type.Number({ minimum: 1, maximum: 86_400, default: 10 }),
  /**
   * Bearer token of the policy admin API on the admin port, embedded stores
   * only (with STORAGE_DRIVER=remote, storage-api serves it).
   */
  ADMIN_API_TOKEN: Type.Optional(Type.String({ minLength: 16, ...SECRET })),
});

export const gatewayConfigSchema = Type.Object({
  /** '::' is dual-stack: one socket answers IPv4 (as ::ffff:a.b.c.d) and IPv6. */
  HOST: Type.String({ default: '::' }),
  /** Serves HTTP (TCP) and UDP on the same number; 0 picks a free one (tests). */
  PORT: Port(6969),
  HTTP_ENABLED: Type.Boolean({ default: true }),
  UDP_ENABLED: Type.Boolean({ default: true }),
  ADMIN_HOST: Type.String({ default: '::' }),
  ADMIN_PORT: Port(9090),
  ANNOUNCE_ROUTES: Type.Array(Route, { default: ['/announce'], minItems: 1 }),
  SCRAPE_ROUTES: Type.Array(Route, { default: ['/scrape'] }),
  /** newTrackon rejects trackers announcing an interval under 300 s [torrust#535]. */
  ANNOUNCE_INTERVAL_SECONDS: Type.Integer({ minimum: 60, maximum: 86_400, default: 1800 }),
  MIN_INTERVAL_SECONDS: Type.Integer({ minimum: 0, maximum: 86_400, default: 900 }),
  /** docs/decisions.md "Tracker semantics": 31 min, one interval plus a minute of slack. */
  PEER_LIFETIME_SECONDS: Type.Integer({ minimum: 60, maximum: 86_400, default: 1860 }),
  NUMWANT_DEFAULT: Type.Integer({ minimum: 0, maximum: 1000, default: 50 }),
  NUMWANT_MAX: Type.Integer({ minimum: 0, maximum: 1000, default: 200 }),
  /** BEP 15 leaves room for about 74 hashes in one UDP scrape; UDP caps at that anyway. */
  SCRAPE_MAX_HASHES: Type.Integer({ minimum: 1, maximum: 1000, default: 64 }),
  /** CIDRs whose X-Forwarded-For / X-Real-IP is believed (load balancers, ingress). */
  TRUSTED_PROXIES: Type.Array(Type.String(), { default: [] }),
  ALLOW_IP_PARAM: Type.Boolean({ default: false }),
  /** 32+ hex chars shared by every replica so a client may connect on one and announce on another. */
  UDP_CONNECTION_ID_SECRET: Type.Optional(
    Type.String({ pattern: '^([0-9a-fA-F]{2}){16,}$', ...SECRET }),
  ),
  /**
   * Some clients reuse a connection ID for minutes and strict 2-minute windows
   * break them [chihaya#417]; opentracker accepts up to two hours.
   */
  UDP_CONNECTION_ID_MAX_AGE_SECONDS: Type.Integer({ minimum: 60, maximum: 86_400, default: 3600 }),
  /**
   * SO_RCVBUF of the UDP socket. Linux's 208 KiB default drops bursts of
   * announces before the event loop reads them; the kernel caps this at
   * net.core.rmem_max (raise it with sysctl for the full size).
   */
  UDP_RECV_BUFFER_BYTES: Type.Integer({ minimum: 65_536, maximum: 1 << 30, default: 4 << 20 }),
  /**
   * docs/limits.md: a request line and headers must have arrived whole this
   * long after the first byte (or the connection), however slowly they drip;
   * otherwise 408 and a close. opentracker cuts a client at 30 s.
   */
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }),
  /** Idle time on a keep-alive socket between requests (Node adds 1 s before it closes). */
  HTTP_KEEPALIVE_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 5 }),
  /**
   * Request line plus headers; more is 431 and a close. 16 KiB is Node's
   * default and aquatic_http's request buffer; a scrape of n hashes needs
   * about 71 n bytes (scrapeRequestBytes), so raise it with SCRAPE_MAX_HASHES.
   */
  HTTP_MAX_HEADER_BYTES: Type.Integer({ minimum: 1024, maximum: 1 << 20, default: 16_384 }),
  /** TCP connections the HTTP tracker holds at once; the next are closed on accept. Keep it under `ulimit -n`. */
  HTTP_MAX_CONNECTIONS: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 10_000 }),
  LOG_LEVEL: LogLevel,
  /**
   * memory: in-process, the `make run` default; redis: REDIS_* (docs/redis.md);
   * postgres: DATABASE_URL and PG_* (docs/postgres.md, docs/cockroachdb.md);
   * remote: storage-api at STORAGE_API_URL with the REMOTE_* settings.
   */
  STORAGE_DRIVER: Type.Union(
    [
      Type.Literal('memory'),
      Type.Literal('redis'),
      Type.Literal('postgres'),
      Type.Literal('remote'),
    ],
    { default: 'memory' },
  ),
  ...remoteStoreConfigSchema.properties,
  ...RedisStoreConfigSchema.properties,
  ...PostgresStoreConfigSchema.properties,
  SHUTDOWN_GRACE_SECONDS: Type.Number({ minimum: 0, maximum: 3600, default: 25 }),
  ...policyConfigSchema.properties,
});

export type GatewayConfig = LoadedConfig<typeof gatewayConfigSchema>;

function ipLiteral(host: string): string | undefined {
  return isIP(host) === 0
    ? 'must be an IP address literal such as ::, 0.0.0.0 or 127.0.0.1'
    : undefined;
}

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

export function loadGatewayConfig(
  options: Pick<LoadConfigOptions<typeof gatewayConfigSchema>, 'env' | 'argv' | 'file'> = {},
): GatewayConfig {
  return loadConfig(gatewayConfigSchema, {
    ...options,
    refine: { HOST: ipLiteral, ADMIN_HOST: ipLiteral, TRUSTED_PROXIES: cidrList },
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
      if (c.PEER_LIFETIME_SECONDS <= c.ANNOUNCE_INTERVAL_SECONDS) {
        problems.push({
          key: 'PEER_LIFETIME_SECONDS',
          message: 'must exceed ANNOUNCE_INTERVAL_SECONDS or peers vanish between announces',
        });
      }
      if (c.STORAGE_DRIVER === 'redis') problems.push(...checkRedisStoreConfig(c));
      if (c.STORAGE_DRIVER === 'postgres') problems.push(...checkPostgresStoreConfig(c));
      if (c.STORAGE_DRIVER === 'remote') problems.push(...checkRemoteStoreConfig(c));
      problems.push(...checkPolicyConfig(c));
      if (!c.HTTP_ENABLED && !c.UDP_ENABLED) {
        problems.push({
          key: 'UDP_ENABLED',
          message: 'HTTP_ENABLED and UDP_ENABLED are both false: nothing to serve',
        });
      }
      return problems;
    },
  });
}

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
