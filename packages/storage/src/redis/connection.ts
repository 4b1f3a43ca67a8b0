// ioredis clients for one "backend": a standalone server, a Sentinel master
// set, or a Cluster. Tuned to fail fast (docs/redis.md: announces fail fast with a
// coded storage unavailable error and recover by themselves): no offline
// queue, no resending after a lost connection, quick reconnects.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { StoreError } from '../errors.ts';
import {
  parseAddress,
  parseShard,
  type HostPort,
  type RedisStoreConfig,
  type ShardSpec,
} from './config.ts';

export type Client = Redis | Cluster;

export type BackendSpec = ShardSpec | { name: string; mode: 'cluster'; seeds: HostPort[] };

/** Logs backend connection trouble; the driver never throws from an event. */
export type ErrorSink = (err: Error, backend: string) => void;

export interface Backend {
  readonly name: string;
  readonly spec: BackendSpec;
  /** Round robin over the ready connections (REDIS_CONNECTIONS_PER_NODE); any one when none is ready. */
  next(): Client;
  /** Standalone connections of the primaries, for SCAN. */
  primaries(): Redis[];
  /** Resolves when every connection is ready, or after `ms` regardless (never rejects). */
  ready(ms: number): Promise<void>;
  close(): void;
}

function tlsOptions(config: RedisStoreConfig): ConnectionOptions | undefined {
  const on =
    config.REDIS_TLS ||
    config.REDIS_TLS_CA_FILE !== undefined ||
    config.REDIS_TLS_CERT_FILE !== undefined ||
    config.REDIS_TLS_KEY_FILE !== undefined ||
    config.REDIS_TLS_SERVERNAME !== undefined;
  if (!on) return undefined;
  try {
    return {
      ...(config.REDIS_TLS_CA_FILE === undefined
        ? {}
        : { ca: readFileSync(config.REDIS_TLS_CA_FILE) }),
      ...(config.REDIS_TLS_CERT_FILE === undefined
        ? {}
        : { cert: readFileSync(config.REDIS_TLS_CERT_FILE) }),
      ...(config.REDIS_TLS_KEY_FILE === undefined
        ? {}
        : { key: readFileSync(config.REDIS_TLS_KEY_FILE) }),
      ...(config.REDIS_TLS_SERVERNAME === undefined
        ? {}
        : { servername: config.REDIS_TLS_SERVERNAME }),
    };
  } catch (err) {
    throw new StoreError(
      'STORE_ERR_CONFIG',
      `cannot read a REDIS_TLS_* file: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/**
 * Longest wait between two reconnect attempts of one connection. Once a
 * server accepts connections again, every connection to it is back within
 * this plus one connect handshake (docs/redis.md "Failure behaviour").
 */
export const RECONNECT_MAX_DELAY_MS = 500;

/** Reconnect back-off: 50 ms, 100 ms, ... capped at RECONNECT_MAX_DELAY_MS. */
export function reconnectDelay(times: number): number {
  return Math.min(times * 50, RECONNECT_MAX_DELAY_MS);
}

// replyMapping is left out: ioredis's constructor types reject an explicit undefined.
type CommonOptions = Omit<RedisOptions, 'replyMapping'>;

/** Who connects and how: credentials, TLS, database. */
export interface RedisIdentity {
  username?: string;
  password?: string;
  tls?: ConnectionOptions;
  db: number;
}

/** Credentials and database, to the data servers or to the sentinels (database 0). */
export function redisCredentials(
  config: RedisStoreConfig,
  to: 'data' | 'sentinel',
): Omit<RedisIdentity, 'tls'> {
  const sentinel = to === 'sentinel';
  const username = sentinel ? config.REDIS_SENTINEL_USERNAME : config.REDIS_USERNAME;
  const password = sentinel ? config.REDIS_SENTINEL_PASSWORD : config.REDIS_PASSWORD;
  return {
    db: sentinel ? 0 : config.REDIS_DB,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
  };
}

/**
 * The identity the store and the doctor both connect with: credentials
 * (redisCredentials) and TLS, which is the same for data servers and
 * sentinels.
 */
export function redisIdentity(config: RedisStoreConfig, to: 'data' | 'sentinel'): RedisIdentity {
  const tls = tlsOptions(config);
  return { ...redisCredentials(config, to), ...(tls === undefined ? {} : { tls }) };
}

function commonOptions(config: RedisStoreConfig): CommonOptions {
  return {
    ...redisIdentity(config, 'data'),
    connectTimeout: config.REDIS_CONNECT_TIMEOUT_MS,
    // A server that stops answering (SIGSTOP, network partition) gets its
    // socket destroyed and reconnected instead of queueing forever.
    socketTimeout: Math.max(config.REDIS_COMMAND_TIMEOUT_MS * 2, 1000),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: config.REDIS_AUTO_PIPELINING,
    connectionName: 'shoal',
    retryStrategy: reconnectDelay,
    // A primary demoted by Sentinel answers READONLY: reconnect, which asks
    // the sentinels for the new primary. READONLY is Redis's error code.
    reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
  };
}

function sentinelCredentials(
  config: RedisStoreConfig,
): Pick<RedisOptions, 'sentinelUsername' | 'sentinelPassword'> {
  const { username, password } = redisCredentials(config, 'sentinel');
  return {
    ...(username === undefined ? {} : { sentinelUsername: username }),
    ...(password === undefined ? {} : { sentinelPassword: password }),
  };
}

function attach<T extends Client>(client: T, name: string, onError: ErrorSink): T {
  client.on('error', (err: Error) => onError(err, name));
  return client;
}

export function createBackend(
  spec: BackendSpec,
  config: RedisStoreConfig,
  onError: ErrorSink,
  { shardedSubscribers = false }: { shardedSubscribers?: boolean } = {},
): Backend {
  const n = config.REDIS_CONNECTIONS_PER_NODE;
  const common = commonOptions(config);
  let clients: Client[];
  let primaries: () => Redis[];
  switch (spec.mode) {
    case 'standalone': {
      const list = Array.from({ length: n }, () =>
        attach(
          new Redis({ ...common, host: spec.address.host, port: spec.address.port }),
          spec.name,
          onError,
        ),
      );
      clients = list;
      primaries = () => [list[0]!];
      break;
    }
    case 'sentinel': {
      const list = Array.from({ length: n }, () =>
        attach(
          new Redis({
            ...common,
            name: spec.masterName,
            role: 'master',
            sentinels: spec.sentinels,
            ...sentinelCredentials(config),
            ...(common.tls === undefined
              ? {}
              : { enableTLSForSentinelMode: true, sentinelTLS: common.tls }),
            sentinelCommandTimeout: config.REDIS_CONNECT_TIMEOUT_MS,
            sentinelRetryStrategy: reconnectDelay,
            // Subscribes to +switch-master so a failover is followed at once,
            // not at the next broken connection.
            failoverDetector: true,
          }),
          spec.name,
          onError,
        ),
      );
      clients = list;
      primaries = () => [list[0]!];
      break;
    }
    case 'cluster': {
      const { db: _db, ...redisOptions } = common;
      const options = {
        redisOptions,
        enableOfflineQueue: false,
        enableAutoPipelining: config.REDIS_AUTO_PIPELINING,
        clusterRetryStrategy: reconnectDelay,
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        slotsRefreshTimeout: config.REDIS_CONNECT_TIMEOUT_MS,
        scaleReads: 'master' as const,
        shardedSubscribers,
        ...(common.tls === undefined
          ? {}
          : {
              dnsLookup: (address: string, cb: (e: null, a: string) => void) => cb(null, address),
            }),
      };
      const list = Array.from({ length: n }, () =>
        attach(new Cluster(spec.seeds, options), spec.name, onError),
      );
      clients = list;
      primaries = () => list[0]!.nodes('master');
      break;
    }
  }
  let i = 0;
  const gather = !config.REDIS_AUTO_PIPELINING;
  return {
    name: spec.name,
    spec,
    // The connections of one server reconnect independently, up to one
    // back-off apart: a ready one is taken over one still reconnecting, so the
    // server serves every call from its first reconnected connection on. With
    // none ready the plain turn's connection rejects at once (no offline queue).
    next: () => {
      for (let k = 1; k < clients.length; k++) {
        const c = clients[i++ % clients.length]!;
        if (c.status === 'ready') return gather ? gathered(c) : c;
      }
      // A connection that is not ready refuses the call at once (no offline
      // queue): only a ready one has writes to gather.
      const c = clients[i++ % clients.length]!;
      return gather && c.status === 'ready' ? gathered(c) : c;
    },
    primaries,
    async ready(ms: number) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((r) => {
        timer = setTimeout(r, ms);
      });
      const all = Promise.all(
        clients.map((c) =>
          c.status === 'ready'
            ? Promise.resolve()
            : new Promise<void>((r) => c.once('ready', () => r())),
        ),
      );
      await Promise.race([all, deadline]);
      clearTimeout(timer);
    },
    close() {
      for (const c of clients) c.disconnect();
    },
  };
}

/**
 * The commands one event-loop turn sends on a connection leave in one write:
 * its socket is corked until the turn's check phase (setImmediate). ioredis
 * writes each command with its own write(2) otherwise, and Redis then reads,
 * and answers, each with its own system call (docs/redis.md "CPU per
 * announce"). A Cluster client routes inside ioredis and is left alone;
 * auto-pipelining already writes a turn's commands at once.
 */
function gathered(c: Client): Client {
  if (c instanceof Redis) {
    const s = c.stream as NetStream | undefined;
    if (s !== undefined && s.writableCorked === 0 && !s.destroyed) {
      s.cork();
      setImmediate(uncork, s);
    }
  }
  return c;
}

type NetStream = Redis['stream'];

function uncork(s: NetStream): void {
  s.uncork();
}

/** The backends a config describes: one, or one per ring shard (in config order). */
export function backendSpecs(config: RedisStoreConfig): BackendSpec[] {
  switch (config.REDIS_MODE) {
    case 'standalone':
      return [
        {
          name: 'standalone',
          mode: 'standalone',
          address: parseAddress(config.REDIS_ADDRESSES[0] ?? ''),
        },
      ];
    case 'sentinel':
      return [
        {
          name: 'sentinel',
          mode: 'sentinel',
          masterName: config.REDIS_MASTER_NAME,
          sentinels: config.REDIS_SENTINELS.map(parseAddress),
        },
      ];
    case 'cluster':
      return [
        { name: 'cluster', mode: 'cluster', seeds: config.REDIS_ADDRESSES.map(parseAddress) },
      ];
    case 'ring':
      return config.REDIS_RING_SHARDS.map((s) => parseShard(s));
  }
}

/** Two specs reach the same servers with the same identity (a reconfigure keeps the connection). */
export function sameSpec(a: BackendSpec, b: BackendSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** One connection to one backend of a store config: its name (the ring's shard name) and client. */
export interface RedisBackendClient {
  name: string;
  client: Client;
  /** A Redis Cluster: keys route by slot, pub/sub is sharded (SSUBSCRIBE/SPUBLISH). */
  cluster: boolean;
}

/**
 * One connection per backend of a store config, with the store's identity,
 * TLS and fail-fast options, for a caller's own keys (the gateway's
 * WebSocket swarms and relay, docs/webtorrent.md "Design"): one for a
 * standalone server, a Sentinel master set or a Cluster (an ioredis Cluster
 * with `shardedSubscribers`, so SSUBSCRIBE reaches the master of the
 * channel's slot and follows it when that slot moves); one per ring shard,
 * in config order (the names `ownerIndex` takes).
 */
export function openRedisClients(
  config: RedisStoreConfig,
  onError: ErrorSink,
): RedisBackendClient[] {
  // Auto-pipelining off: ioredis 6.0.0 sends callBuffer('EVAL', [...]) without
  // its command name when it is on (storage-api's default; docs/redis.md), which
  // Redis refuses or which throws outside any promise.
  const single = { ...config, REDIS_CONNECTIONS_PER_NODE: 1, REDIS_AUTO_PIPELINING: false };
  return backendSpecs(config).map((spec) => ({
    name: spec.name,
    client: createBackend(spec, single, onError, { shardedSubscribers: true }).next(),
    cluster: spec.mode === 'cluster',
  }));
}
