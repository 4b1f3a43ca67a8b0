// The gateway's settings: one schema, names are the environment variables
// (STYLE.md "Config"). Defaults follow ARCHITECTURE.md's pinned semantics.
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import {
  LogLevel,
  SECRET,
  Type,
  loadConfig,
  type LoadConfigOptions,
  type LoadedConfig,
} from '@shoal/config';
import { RedisStoreConfigSchema, checkRedisStoreConfig } from '@shoal/storage/redis';
import { PostgresStoreConfigSchema, checkPostgresStoreConfig } from '@shoal/storage/postgres';
import { checkRemoteStoreConfig, remoteStoreConfigSchema } from './remote/config.ts';

const Port = (defaultPort: number) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: defaultPort });
const Route = Type.String({ pattern: '^/[^?#\\s]*$' });

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
  /** ARCHITECTURE.md: 31 min, one interval plus a minute of slack. */
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
  LOG_LEVEL: LogLevel,
  /**
   * memory: in-process, the `make run` default; redis: REDIS_* (docs/redis.md);
   * postgres: DATABASE_URL and PG_* (docs/postgres.md, docs/cockroachdb.md);
   * remote: storage-api at STORAGE_API_URL with the REMOTE_* settings (issue 5).
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
