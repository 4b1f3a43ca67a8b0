// Connection settings of the Redis driver as one TypeBox schema whose property
// names are the environment variable names (docs/conventions.md "Config"), so a service
// schema embeds it with `...RedisStoreConfigSchema.properties` and
// @shoal/config validates it at boot with everything else. Decisions and
// defaults are explained in docs/redis.md.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { StoreError } from '../errors.ts';

/** Same marker as @shoal/config's SECRET: the value is never echoed in errors. */
const SECRET = { secret: true } as const;

/** `host:port`, IPv6 hosts in brackets (`[::1]:6379`). */
const Address = Type.String({ pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\]]+):[0-9]{1,5}$' });

const OptionalText = (description: string, secret = false) =>
  Type.Optional(Type.String({ minLength: 1, ...(secret ? SECRET : {}), description }));

export const RedisStoreConfigSchema = Type.Object({
  REDIS_MODE: Type.Union(
    [
      Type.Literal('standalone'),
      Type.Literal('sentinel'),
      Type.Literal('cluster'),
      Type.Literal('ring'),
    ],
    {
      default: 'standalone',
      description:
        'standalone (one server), sentinel (a Sentinel master set), cluster (Redis Cluster) or ring (independent shards placed by rendezvous hashing)',
    },
  ),
  REDIS_ADDRESSES: Type.Array(Address, {
    default: ['127.0.0.1:6379'],
    description:
      'standalone: the server (one); cluster: seed nodes (any subset). `host:port`, IPv6 as `[::1]:6379`',
  }),
  REDIS_SENTINELS: Type.Array(Address, {
    default: [],
    description: 'sentinel: the sentinels of the master set, `host:port`',
  }),
  REDIS_MASTER_NAME: Type.String({
    minLength: 1,
    default: 'shoal',
    description: 'sentinel: the name of the master set',
  }),
  REDIS_SENTINEL_USERNAME: OptionalText("The sentinels' own ACL user"),
  REDIS_SENTINEL_PASSWORD: OptionalText(
    "The sentinels' own password (their requirepass), separate from the data password",
    true,
  ),
  REDIS_USERNAME: OptionalText(
    'ACL user on the data nodes (Redis >= 6); without it AUTH uses the default user',
  ),
  REDIS_PASSWORD: OptionalText('Password on the data nodes', true),
  REDIS_DB: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 0,
    description: 'Database index; Cluster only has 0',
  }),
  REDIS_TLS: Type.Boolean({
    default: false,
    description:
      'TLS with the system CAs; any REDIS_TLS_* file turns TLS on as well. Sentinel mode uses the same TLS to the sentinels',
  }),
  REDIS_TLS_CA_FILE: OptionalText('PEM CA bundle to verify the servers with'),
  REDIS_TLS_CERT_FILE: OptionalText('PEM client certificate (mutual TLS), with REDIS_TLS_KEY_FILE'),
  REDIS_TLS_KEY_FILE: OptionalText('PEM key of REDIS_TLS_CERT_FILE'),
  REDIS_TLS_SERVERNAME: OptionalText(
    'SNI and the certificate name checked; defaults to the host connected to',
  ),
  REDIS_CONNECT_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 2000,
    description: 'Connect timeout; also how long creating the store waits for the first connection',
  }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 1000,
    description:
      'An operation not answered in this time fails with STORE_ERR_TIMEOUT; a socket silent for twice this is destroyed and reconnected',
  }),
  REDIS_CONNECTIONS_PER_NODE: Type.Integer({
    minimum: 1,
    maximum: 64,
    default: 2,
    description:
      'Connections per Redis node (per shard, per cluster node), used round robin: EVALSHA-heavy load runs best on 2-4 (docs/decisions.md "Sources")',
  }),
  REDIS_KEY_PREFIX: Type.String({
    pattern: '^[^{}]*$',
    default: '',
    description:
      'Prepended to every key; braces are reserved for the `{infohash}` hash tag. Empty by default: each byte past the first costs 16 B per swarm key (docs/redis.md "Memory"), and Shoal\'s Redis is its own',
  }),
  REDIS_RING_SHARDS: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.-]+=\\S+$' }), {
    default: [],
    description:
      'ring: the shards, `name=host:port` (standalone) or `name=sentinel:<master>@host:port|host:port...` (its own Sentinel set). Swarms are placed by rendezvous hashing on the names; the KV data lives on the first shard listed. Reloaded on SIGHUP (docs/configuration.md "Reloading")',
  }),
  REDIS_STORE_PEER_IDS: Type.Boolean({
    default: false,
    description:
      'Keep each peer_id for non-compact answers (about 30 B per peer more; docs/redis.md). Off: non-compact answers carry no `peer id`',
  }),
  REDIS_AUTO_PIPELINING: Type.Boolean({
    default: false,
    description:
      'ioredis auto-pipelining; off by default because it holds one pipeline in flight per connection',
  }),
});

type Mutable = Static<typeof RedisStoreConfigSchema>;
/** The validated settings (what @shoal/config's loadConfig returns for these keys). */
export type RedisStoreConfig = {
  readonly [K in keyof Mutable]: Mutable[K] extends (infer U)[] ? readonly U[] : Mutable[K];
};

export interface HostPort {
  host: string;
  port: number;
}

export type ShardSpec =
  | { name: string; mode: 'standalone'; address: HostPort }
  | { name: string; mode: 'sentinel'; masterName: string; sentinels: HostPort[] };

export function parseAddress(text: string): HostPort {
  const i = text.lastIndexOf(':');
  const host = text.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(text.slice(i + 1));
  if (i <= 0 || host === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new StoreError(
      'STORE_ERR_CONFIG',
      `bad address ${JSON.stringify(text)} (want host:port)`,
    );
  }
  return { host, port };
}

export function parseShard(text: string): ShardSpec {
  const eq = text.indexOf('=');
  const name = text.slice(0, eq);
  const target = text.slice(eq + 1);
  if (eq <= 0 || target === '')
    throw new StoreError('STORE_ERR_CONFIG', `bad ring shard ${JSON.stringify(text)}`);
  const sentinel = /^sentinel:([^@]+)@(.+)$/.exec(target);
  if (sentinel) {
    return {
      name,
      mode: 'sentinel',
      masterName: sentinel[1]!,
      sentinels: sentinel[2]!.split('|').map(parseAddress),
    };
  }
  return { name, mode: 'standalone', address: parseAddress(target) };
}

/** Cross-field problems, keyed by variable name (fits @shoal/config's `check` option). */
export function checkRedisStoreConfig(
  config: RedisStoreConfig,
): Array<{ key: string; message: string }> {
  const problems: Array<{ key: string; message: string }> = [];
  const tryParse = (key: string, f: () => unknown): void => {
    try {
      f();
    } catch (err) {
      problems.push({ key, message: (err as Error).message });
    }
  };
  for (const a of config.REDIS_ADDRESSES) tryParse('REDIS_ADDRESSES', () => parseAddress(a));
  for (const a of config.REDIS_SENTINELS) tryParse('REDIS_SENTINELS', () => parseAddress(a));
  switch (config.REDIS_MODE) {
    case 'standalone':
      if (config.REDIS_ADDRESSES.length !== 1)
        problems.push({ key: 'REDIS_ADDRESSES', message: 'standalone needs exactly one address' });
      break;
    case 'sentinel':
      if (config.REDIS_SENTINELS.length === 0)
        problems.push({
          key: 'REDIS_SENTINELS',
          message: 'sentinel mode needs at least one sentinel',
        });
      break;
    case 'cluster':
      if (config.REDIS_ADDRESSES.length === 0)
        problems.push({
          key: 'REDIS_ADDRESSES',
          message: 'cluster mode needs at least one seed node',
        });
      if (config.REDIS_DB !== 0)
        problems.push({ key: 'REDIS_DB', message: 'Redis Cluster has only database 0' });
      break;
    case 'ring': {
      if (config.REDIS_RING_SHARDS.length === 0)
        problems.push({ key: 'REDIS_RING_SHARDS', message: 'ring mode needs at least one shard' });
      const names = new Set<string>();
      for (const s of config.REDIS_RING_SHARDS) {
        tryParse('REDIS_RING_SHARDS', () => {
          const shard = parseShard(s);
          if (names.has(shard.name)) throw new Error(`duplicate shard name ${shard.name}`);
          names.add(shard.name);
        });
      }
      break;
    }
  }
  return problems;
}

/**
 * Defaults + validation for callers that do not go through @shoal/config
 * (tests, benches): every problem in one STORE_ERR_CONFIG error.
 */
export function redisStoreConfig(
  input: { [K in keyof RedisStoreConfig]?: RedisStoreConfig[K] | undefined } = {},
): RedisStoreConfig {
  const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const withDefaults = Value.Default(RedisStoreConfigSchema, structuredClone(given));
  const problems = [...Value.Errors(RedisStoreConfigSchema, withDefaults)].map(
    (e) => `${e.path.slice(1)}: ${e.message}`,
  );
  if (problems.length === 0) {
    problems.push(
      ...checkRedisStoreConfig(withDefaults as RedisStoreConfig).map(
        (p) => `${p.key}: ${p.message}`,
      ),
    );
  }
  if (problems.length > 0) throw new StoreError('STORE_ERR_CONFIG', problems.join('; '));
  return Object.freeze(withDefaults as RedisStoreConfig);
}
