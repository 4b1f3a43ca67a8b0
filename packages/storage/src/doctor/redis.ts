// Doctor checks of one Redis server (docs/redis.md): reachable with the
// configured credentials, persistence, eviction policy, memory layout, role
// and clock. Connections are the doctor's own, with the store's identity
// (redisIdentity), never the store's pool.
import { Redis } from 'ioredis';
import type { HostPort } from '../redis/config.ts';
import type { RedisIdentity } from '../redis/connection.ts';
import {
  HOLDS,
  addr,
  codeAndMessage,
  durable,
  holdsPeers,
  networkFailure,
  clockCheck,
  stoppedAnswering,
  type Role,
  type Run,
} from './run.ts';

/**
 * Why a server of this `redis_version` cannot run the announce script, or
 * undefined when it can: the script extends TTLs with `PEXPIRE ... GT`,
 * which Redis 7.0 added (docs/redis.md "CPU per announce"). An unparsable
 * version (a Redis-compatible server) is let through.
 */
export function scriptVersionProblem(version: string): string | undefined {
  const major = /^(\d+)\./.exec(version)?.[1];
  if (major === undefined || Number(major) >= 7) return undefined;
  return `Redis ${version} is too old: the announce script needs Redis 7.0 or later (PEXPIRE ... GT), so every announce would fail with a script error; upgrade it (the chart ships 7.4)`;
}

/** docs/redis.md "Memory": swarms up to this many peers per family stay listpacks (~15-30 B per peer). */
const WANTED_ZSET_LISTPACK_ENTRIES = 1024;

/** Words for a failed Redis connection: refused, auth, timeout, TLS. */
export function redisConnectFailure(
  err: unknown,
  where: string,
  auth: RedisIdentity,
  timeoutMs: number,
): string {
  const { code, message } = codeAndMessage(err);
  const network = networkFailure(code, message, where, timeoutMs);
  if (network !== undefined) return network;
  if (/^WRONGPASS/.test(message)) {
    return `${where} rejected the credentials${auth.username === undefined ? '' : ` of user ${auth.username}`}: wrong password (WRONGPASS)`;
  }
  if (/^NOAUTH/.test(message))
    return `${where} requires a password and none is configured (NOAUTH)`;
  if (/^NOPERM/.test(message))
    return `${where}: the ACL user may not run the commands Shoal needs (${message})`;
  return `${where}: ${message}`;
}

export interface Conn {
  client: Redis;
  close: () => void;
}

export async function connectRedis(run: Run, node: HostPort, auth: RedisIdentity): Promise<Conn> {
  const timeout = run.remaining();
  let lastError: unknown;
  const client = new Redis({
    host: node.host,
    port: node.port,
    db: auth.db,
    ...(auth.username === undefined ? {} : { username: auth.username }),
    ...(auth.password === undefined ? {} : { password: auth.password }),
    ...(auth.tls === undefined ? {} : { tls: auth.tls }),
    lazyConnect: true,
    connectTimeout: timeout,
    commandTimeout: timeout,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableReadyCheck: false,
    connectionName: 'shoal-doctor',
  });
  // ioredis reports the cause (ECONNREFUSED, WRONGPASS) as an event and rejects connect() with "Connection is closed".
  client.on('error', (err: unknown) => {
    lastError = err;
  });
  const close = run.onClose(() => client.disconnect());
  try {
    await run.bounded(client.connect(), `connect to ${addr(node)}`);
    // Proves the AUTH took: with a wrong password some servers only refuse at the first command.
    await run.bounded(client.ping(), `PING ${addr(node)}`);
  } catch (err) {
    close();
    throw lastError ?? err;
  }
  return { client, close };
}

/** `CONFIG GET name`, or undefined when CONFIG is renamed, disabled or not allowed (managed Redis). */
export async function configGet(
  run: Run,
  client: Redis,
  name: string,
): Promise<string | undefined> {
  try {
    const reply: unknown = await run.bounded(
      client.call('CONFIG', 'GET', name),
      `CONFIG GET ${name}`,
    );
    if (Array.isArray(reply) && reply.length >= 2) return String(reply[1]);
    if (reply !== null && typeof reply === 'object' && name in reply)
      return String((reply as Record<string, unknown>)[name]);
    return undefined;
  } catch {
    return undefined;
  }
}

export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

export type Expect = 'primary' | 'replica' | 'any';

/** Every check of one Redis server. `expect`: what the config says this server is. */
export async function checkRedisNode(
  run: Run,
  node: HostPort,
  auth: RedisIdentity,
  role: Role,
  expect: Expect,
  via: string,
): Promise<void> {
  const where = `Redis at ${addr(node)}`;
  const name = (aspect: string): string => `redis ${addr(node)} ${aspect}`;
  let conn: Conn;
  try {
    conn = await connectRedis(run, node, auth);
  } catch (err) {
    run.add(
      name('connection'),
      'fail',
      `${redisConnectFailure(err, where, auth, run.remaining())}; it holds ${HOLDS[role]}${via}`,
    );
    return;
  }
  try {
    const { client } = conn;
    const info = parseInfo(await run.bounded(client.info(), `INFO ${addr(node)}`));
    const version = info.get('redis_version') ?? 'unknown version';
    const serverRole = info.get('role') ?? 'unknown';
    run.add(
      name('connection'),
      'ok',
      `${where} answers (Redis ${version}, ${serverRole === 'slave' ? 'replica' : serverRole}); it holds ${HOLDS[role]}${via}`,
    );

    // The announce script's commands (docs/redis.md "CPU per announce").
    if (holdsPeers(role)) {
      const problem = scriptVersionProblem(version);
      run.add(
        name('version'),
        problem === undefined ? 'ok' : 'fail',
        problem === undefined
          ? `${where} runs Redis ${version}: the announce script's commands are there`
          : `${where}: ${problem}`,
      );
    }

    // Persistence.
    const aof = info.get('aof_enabled') === '1';
    const save = await configGet(run, client, 'save');
    const savePoints = save !== undefined && save.trim() !== '';
    const writeErrors: string[] = [];
    if (
      aof &&
      info.get('aof_last_write_status') !== undefined &&
      info.get('aof_last_write_status') !== 'ok'
    ) {
      writeErrors.push(
        `the last AOF write failed (aof_last_write_status ${info.get('aof_last_write_status')})`,
      );
    }
    if (
      info.get('rdb_last_bgsave_status') !== undefined &&
      info.get('rdb_last_bgsave_status') !== 'ok'
    ) {
      writeErrors.push(
        `the last RDB snapshot failed (rdb_last_bgsave_status ${info.get('rdb_last_bgsave_status')})`,
      );
    }
    const how = `appendonly ${aof ? 'yes' : 'no'}, ${save === undefined ? 'save points unknown (CONFIG GET not allowed)' : savePoints ? `save "${save}"` : 'no save points'}`;
    if (writeErrors.length > 0) {
      run.add(
        name('persistence'),
        durable(role) ? 'fail' : 'warn',
        `${where}: ${writeErrors.join(' and ')}; check its disk (space, permissions) and log${durable(role) ? ': recent download counts and KV changes are not on disk' : ''}`,
      );
    } else if (aof || savePoints) {
      run.add(name('persistence'), 'ok', `${where} persists to disk (${how})`);
    } else if (save === undefined) {
      run.add(
        name('persistence'),
        durable(role) ? 'warn' : 'ok',
        `${where} has no AOF and its save points cannot be read (${how})${durable(role) ? ': unless RDB snapshots are configured, download counts and KV data kept there are lost on restart' : ''}`,
      );
    } else if (durable(role)) {
      run.add(
        name('persistence'),
        'fail',
        `${where} has no persistence (${how}): download counts and KV data kept there are lost on restart; set appendonly yes (deploy/redis/redis.conf)`,
      );
    } else {
      run.add(
        name('persistence'),
        'ok',
        `${where} has no persistence (${how}); it holds only peers, which clients re-announce within an interval after a restart`,
      );
    }

    // Replication.
    if (serverRole === 'slave') {
      const primary = `${info.get('master_host') ?? '?'}:${info.get('master_port') ?? '?'}`;
      const link = info.get('master_link_status') ?? 'unknown';
      if (expect === 'primary') {
        run.add(
          name('replication'),
          'fail',
          `${where} is a read-only replica of ${primary}: writes fail with READONLY; point the config at the primary`,
        );
      } else if (link !== 'up') {
        run.add(
          name('replication'),
          'fail',
          `${where} is a replica of ${primary} whose link is ${link} (master_link_status): it is not receiving writes and would be stale after a failover`,
        );
      } else {
        run.add(name('replication'), 'ok', `${where} is a replica of ${primary}, link up`);
      }
    } else {
      const replicas = Number(info.get('connected_slaves') ?? '0');
      if (expect === 'replica') {
        run.add(
          name('replication'),
          'warn',
          `${where} is expected to be a replica but answers as ${serverRole}`,
        );
      } else if (replicas === 0 && durable(role)) {
        run.add(
          name('replication'),
          'warn',
          `${where} is a primary without replicas: losing this host or its disk loses the download counts and KV data kept there`,
        );
      } else {
        run.add(
          name('replication'),
          'ok',
          `${where} is a primary with ${replicas} connected replica${replicas === 1 ? '' : 's'}`,
        );
      }
    }

    // Eviction.
    const policy =
      info.get('maxmemory_policy') ??
      (await configGet(run, client, 'maxmemory-policy')) ??
      'unknown';
    const maxmemory = Number(info.get('maxmemory') ?? '0');
    const limit =
      maxmemory === 0 ? 'no maxmemory limit' : `maxmemory ${Math.round(maxmemory / 2 ** 20)} MiB`;
    if (policy.startsWith('allkeys-')) {
      if (durable(role)) {
        run.add(
          name('eviction'),
          'fail',
          `${where} uses maxmemory-policy ${policy} (${limit}): when memory fills it evicts any key, including download counts, passkeys and approval lists; use volatile-lru`,
        );
      } else {
        run.add(
          name('eviction'),
          'ok',
          `${where} uses maxmemory-policy ${policy} (${limit}); it holds only peers, so evicting any key loses nothing durable`,
        );
      }
    } else if (policy === 'noeviction') {
      run.add(
        name('eviction'),
        holdsPeers(role) ? 'warn' : 'ok',
        holdsPeers(role)
          ? `${where} uses maxmemory-policy noeviction (${limit}): when memory fills, announces fail with OOM instead of evicting idle swarms; volatile-lru evicts only peer keys (they carry a TTL), never durable data`
          : `${where} uses maxmemory-policy noeviction (${limit}): KV data is never evicted; writes fail when memory fills`,
      );
    } else if (policy.startsWith('volatile-')) {
      run.add(
        name('eviction'),
        'ok',
        `${where} uses maxmemory-policy ${policy} (${limit}): only keys with a TTL (peer swarms) are evicted, never download counts or KV data`,
      );
    } else {
      run.add(
        name('eviction'),
        'warn',
        `${where}: maxmemory-policy is ${policy}; Shoal expects volatile-lru (deploy/redis/redis.conf)`,
      );
    }

    // Memory per peer (docs/redis.md "Memory").
    if (holdsPeers(role)) {
      const entries =
        (await configGet(run, client, 'zset-max-listpack-entries')) ??
        (await configGet(run, client, 'zset-max-ziplist-entries'));
      if (entries === undefined) {
        run.add(
          name('listpack'),
          'warn',
          `${where}: zset-max-listpack-entries cannot be read (CONFIG GET not allowed); docs/redis.md wants ${WANTED_ZSET_LISTPACK_ENTRIES}`,
        );
      } else if (Number(entries) !== WANTED_ZSET_LISTPACK_ENTRIES) {
        run.add(
          name('listpack'),
          'warn',
          `${where} has zset-max-listpack-entries ${entries}: swarms above ${entries} peers per family take ~100 B per peer instead of ~15-30 B; docs/redis.md wants ${WANTED_ZSET_LISTPACK_ENTRIES}`,
        );
      } else {
        run.add(
          name('listpack'),
          'ok',
          `${where} has zset-max-listpack-entries ${entries} (compact swarms up to ${entries} peers per family)`,
        );
      }
    }

    // Clock: the Redis store scores peers with storage-api's clock.
    await clockCheck(run, name('clock'), where, async () => {
      const [sec, usec] = await run.bounded(client.time(), `TIME ${addr(node)}`);
      return Number(sec) * 1000 + Number(usec) / 1000;
    });
  } catch (err) {
    stoppedAnswering(run, name('checks'), where, err);
  } finally {
    conn.close();
  }
}
