// `doctor` (docs/policy.md "Admin API"): storage-api, the only
// holder of store credentials, inspects its own backends and reports each
// finding in words an operator can act on. It opens its own short-lived
// connections (never the store's pool, so a stuck check cannot stall
// announces) and never takes longer than `timeoutMs`: what did not answer in
// time is reported as such.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Redis } from 'ioredis';
import pg from 'pg';
import { StoreError } from '../errors.ts';
import { clientConfig } from '../postgres/connection.ts';
import { resolvePostgresStoreConfig, type PostgresStoreConfigInput } from '../postgres/config.ts';
import { MIGRATIONS } from '../postgres/migrations.ts';
import { parseAddress, parseShard, type HostPort } from '../redis/config.ts';

/** Why clock skew matters, for both Redis and PostgreSQL findings. */
const SKEW_CONSEQUENCE =
  'peer expiry is computed from the clock of whichever storage-api or gateway writes, so clocks that disagree expire peers early or keep them too long';

export type DoctorStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  name: string;
  status: DoctorStatus;
  message: string;
}

export type DoctorDriver = 'memory' | 'redis' | 'postgres';

export interface DoctorInput {
  /** Where peers live (PEER_STORE_DRIVER) and the storage-api config (REDIS_*, DATABASE_URL, PG_*). */
  peers: { driver: DoctorDriver; config: object };
  /** Where KV data, leases and download counts live (DATA_STORE_DRIVER). */
  data: { driver: DoctorDriver; config: object };
  /** The storage-api's clock, ms since the epoch; skew is measured against it. Default Date.now. */
  clock?: () => number;
  /** Whole run, ms. Default 5000. */
  timeoutMs?: number;
}

/**
 * What a backend holds decides how strict the checks are: peers are
 * ephemeral (clients re-announce within an interval), download counts and KV
 * data (approval lists, passkeys) are not. One driver named for both is one
 * backend (storage-api opens it once) and then also holds the download counts.
 */
type Role = 'peers' | 'data' | 'peers+data';

const HOLDS: Record<Role, string> = {
  peers: 'peers only',
  data: 'download counts and KV data',
  'peers+data': 'peers, download counts and KV data',
};

const durable = (role: Role): boolean => role !== 'peers';
const holdsPeers = (role: Role): boolean => role !== 'data';

/** docs/redis.md "Memory": swarms up to this many peers per family stay listpacks (~15-30 B per peer). */
const WANTED_ZSET_LISTPACK_ENTRIES = 1024;
const SKEW_WARN_MS = 1000;
const SKEW_FAIL_MS = 5000;

/** Every check of one run: a deadline, the checks found so far, the connections to close. */
class Run {
  readonly checks: DoctorCheck[] = [];
  readonly deadline: number;
  readonly clock: () => number;
  readonly #closers = new Set<() => void>();

  constructor(timeoutMs: number, clock: () => number) {
    this.deadline = performance.now() + timeoutMs;
    this.clock = clock;
  }

  add(name: string, status: DoctorStatus, message: string): void {
    this.checks.push({ name, status, message });
  }

  remaining(): number {
    return Math.max(1, Math.floor(this.deadline - performance.now()));
  }

  /** Rejects with a timeout once the run's deadline passes. */
  bounded<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreError('STORE_ERR_TIMEOUT', `${what}: no answer in time`)),
        this.remaining(),
      );
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  onClose(close: () => void): () => void {
    this.#closers.add(close);
    return () => {
      this.#closers.delete(close);
      close();
    };
  }

  closeAll(): void {
    for (const close of this.#closers) close();
    this.#closers.clear();
  }
}

export async function runDoctor(input: DoctorInput): Promise<DoctorCheck[]> {
  const timeoutMs = input.timeoutMs ?? 5000;
  const run = new Run(timeoutMs, input.clock ?? Date.now);
  const targets: Array<{ driver: DoctorDriver; config: object; role: Role }> =
    input.peers.driver === input.data.driver
      ? [{ ...input.data, role: 'peers+data' }]
      : [
          { ...input.peers, role: 'peers' },
          { ...input.data, role: 'data' },
        ];
  let timer: NodeJS.Timeout | undefined;
  const all = Promise.all(targets.map((t) => checkBackend(run, t.driver, t.config, t.role)));
  const timedOut = new Promise<'timeout'>((resolve) => {
    // A little past the deadline: the bounded steps report their own timeouts first.
    timer = setTimeout(() => resolve('timeout'), timeoutMs + 50);
  });
  try {
    const outcome = await Promise.race([all.then(() => 'done' as const), timedOut]);
    if (outcome === 'timeout') {
      run.add(
        'doctor',
        'fail',
        `the checks did not finish within ${timeoutMs} ms; the findings above are partial`,
      );
    }
  } finally {
    clearTimeout(timer);
    run.closeAll();
  }
  return [...run.checks];
}

async function checkBackend(
  run: Run,
  driver: DoctorDriver,
  config: object,
  role: Role,
): Promise<void> {
  try {
    switch (driver) {
      case 'memory':
        checkMemory(run, role);
        return;
      case 'redis':
        await checkRedis(run, config as Record<string, unknown>, role);
        return;
      case 'postgres':
        await checkPostgres(run, config as Record<string, unknown>, role);
        return;
      default: {
        const never: never = driver;
        run.add('driver', 'fail', `unknown store driver ${JSON.stringify(never)}`);
      }
    }
  } catch (err) {
    // Checks report their own failures; this is a bug or bad config, still reported in words.
    run.add(`${driver} doctor`, 'fail', `the ${driver} checks stopped: ${describeError(err)}`);
  }
}

function checkMemory(run: Run, role: Role): void {
  if (durable(role)) {
    run.add(
      'memory store',
      'warn',
      `${HOLDS[role]} are kept in process memory (storage-api's, or an embedded gateway's): approval lists, passkeys and download counts are lost on every restart, and only one replica can run; use DATA_STORE_DRIVER=postgres or redis with persistence`,
    );
  } else {
    run.add(
      'memory store',
      'ok',
      'peers are kept in process memory (one replica only); they are lost on restart and come back as clients re-announce',
    );
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

function formatSkew(ms: number): string {
  const s = Math.abs(ms) / 1000;
  return `${s < 10 ? s.toFixed(2) : s.toFixed(0)} s ${ms >= 0 ? 'ahead of' : 'behind'}`;
}

function skewCheck(run: Run, name: string, who: string, skewMs: number, consequence: string): void {
  const abs = Math.abs(skewMs);
  const status: DoctorStatus = abs > SKEW_FAIL_MS ? 'fail' : abs > SKEW_WARN_MS ? 'warn' : 'ok';
  const text = `the clock of ${who} is ${formatSkew(skewMs)} storage-api's`;
  run.add(
    name,
    status,
    status === 'ok' ? text : `${text}: ${consequence}; run NTP (chrony, timesyncd) on both hosts`,
  );
}

// ---------------------------------------------------------------- Redis

interface RedisAuth {
  username?: string;
  password?: string;
  tls?: TlsOptions;
  db: number;
}

function str(config: Record<string, unknown>, key: string): string | undefined {
  const v = config[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function strings(config: Record<string, unknown>, key: string, fallback: string[]): string[] {
  const v = config[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : fallback;
}

function redisTls(config: Record<string, unknown>): TlsOptions | undefined {
  const ca = str(config, 'REDIS_TLS_CA_FILE');
  const cert = str(config, 'REDIS_TLS_CERT_FILE');
  const key = str(config, 'REDIS_TLS_KEY_FILE');
  const servername = str(config, 'REDIS_TLS_SERVERNAME');
  const on =
    config.REDIS_TLS === true ||
    ca !== undefined ||
    cert !== undefined ||
    key !== undefined ||
    servername !== undefined;
  if (!on) return undefined;
  return {
    ...(ca === undefined ? {} : { ca: readFileSync(ca) }),
    ...(cert === undefined ? {} : { cert: readFileSync(cert) }),
    ...(key === undefined ? {} : { key: readFileSync(key) }),
    ...(servername === undefined ? {} : { servername }),
  };
}

function redisAuth(config: Record<string, unknown>, sentinel: boolean): RedisAuth {
  const username = str(config, sentinel ? 'REDIS_SENTINEL_USERNAME' : 'REDIS_USERNAME');
  const password = str(config, sentinel ? 'REDIS_SENTINEL_PASSWORD' : 'REDIS_PASSWORD');
  const tls = redisTls(config);
  const db = sentinel ? 0 : typeof config.REDIS_DB === 'number' ? config.REDIS_DB : 0;
  return {
    db,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(tls === undefined ? {} : { tls }),
  };
}

const addr = (n: HostPort): string =>
  n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`;

/** Words for a failed Redis connection: refused, auth, timeout, TLS. */
function redisConnectFailure(
  err: unknown,
  where: string,
  auth: RedisAuth,
  timeoutMs: number,
): string {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (code === 'ECONNREFUSED')
    return `${where} refused the connection: nothing listens there (server down or wrong address)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return `${where}: the host name does not resolve (${code})`;
  if (code === 'ETIMEDOUT' || code === 'STORE_ERR_TIMEOUT' || /timed? ?out/i.test(message)) {
    return `${where} did not answer within ${timeoutMs} ms (firewall, wrong address, or a hung server)`;
  }
  if (/^WRONGPASS/.test(message)) {
    return `${where} rejected the credentials${auth.username === undefined ? '' : ` of user ${auth.username}`}: wrong password (WRONGPASS)`;
  }
  if (/^NOAUTH/.test(message))
    return `${where} requires a password and none is configured (NOAUTH)`;
  if (/^NOPERM/.test(message))
    return `${where}: the ACL user may not run the commands Shoal needs (${message})`;
  return `${where}: ${message}`;
}

interface Conn {
  client: Redis;
  close: () => void;
}

async function connectRedis(run: Run, node: HostPort, auth: RedisAuth): Promise<Conn> {
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
async function configGet(run: Run, client: Redis, name: string): Promise<string | undefined> {
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

function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

type Expect = 'primary' | 'replica' | 'any';

/** Every check of one Redis server. `expect`: what the config says this server is. */
async function checkRedisNode(
  run: Run,
  node: HostPort,
  auth: RedisAuth,
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
    const local = run.clock();
    const started = performance.now();
    const [sec, usec] = await run.bounded(client.time(), `TIME ${addr(node)}`);
    const serverMs = Number(sec) * 1000 + Number(usec) / 1000;
    const skew = serverMs - (local + (performance.now() - started) / 2);
    skewCheck(run, name('clock'), where, skew, SKEW_CONSEQUENCE);
  } catch (err) {
    run.add(
      name('checks'),
      'fail',
      `${where} stopped answering during the checks: ${describeError(err)}`,
    );
  } finally {
    conn.close();
  }
}

type Reply = string | number | null | Reply[];

/** SENTINEL REPLICAS answers field/value lists (RESP2) or maps (RESP3). */
function fields(entry: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (Array.isArray(entry)) {
    for (let i = 0; i + 1 < entry.length; i += 2) out.set(String(entry[i]), String(entry[i + 1]));
  } else if (entry !== null && typeof entry === 'object') {
    for (const [k, v] of Object.entries(entry)) out.set(k, String(v));
  }
  return out;
}

async function checkSentinelSet(
  run: Run,
  config: Record<string, unknown>,
  masterName: string,
  sentinels: HostPort[],
  role: Role,
  label: string,
): Promise<void> {
  const sentinelAuth = redisAuth(config, true);
  const dataAuth = redisAuth(config, false);
  const primaries = new Map<string, HostPort>();
  let reachable = 0;
  let replicasReported = false;
  await Promise.all(
    sentinels.map(async (s) => {
      const where = `Sentinel at ${addr(s)}`;
      const name = `sentinel ${addr(s)} quorum`;
      let conn: Conn;
      try {
        conn = await connectRedis(run, s, sentinelAuth);
      } catch (err) {
        run.add(
          name,
          'fail',
          `${redisConnectFailure(err, where, sentinelAuth, run.remaining())}${label}`,
        );
        return;
      }
      reachable++;
      try {
        const { client } = conn;
        try {
          const ok = (await run.bounded(
            client.call('SENTINEL', 'CKQUORUM', masterName),
            'SENTINEL CKQUORUM',
          )) as Reply;
          run.add(name, 'ok', `${where} for master set ${masterName}: ${String(ok)}`);
        } catch (err) {
          run.add(name, 'fail', `${where} for master set ${masterName}: ${describeError(err)}`);
        }
        const master = (await run.bounded(
          client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName),
          'SENTINEL GET-MASTER-ADDR-BY-NAME',
        )) as Reply;
        if (Array.isArray(master) && master.length === 2) {
          const p = { host: String(master[0]), port: Number(master[1]) };
          primaries.set(addr(p), p);
        }
        if (!replicasReported) {
          // An unknown master name errors here too; CKQUORUM above already said so.
          const replicas: unknown = await run
            .bounded<unknown>(client.call('SENTINEL', 'REPLICAS', masterName), 'SENTINEL REPLICAS')
            .catch(() => undefined);
          if (!replicasReported && Array.isArray(replicas)) {
            replicasReported = true;
            const list = replicas.map(fields);
            const healthy = list.filter(
              (r) =>
                !/s_down|o_down|disconnected/.test(r.get('flags') ?? '') &&
                r.get('master-link-status') !== 'err',
            );
            const names = list
              .map(
                (r) => `${r.get('ip') ?? '?'}:${r.get('port') ?? '?'} (${r.get('flags') ?? '?'})`,
              )
              .join(', ');
            run.add(
              `sentinel ${masterName} replicas`,
              healthy.length === 0 ? (durable(role) ? 'fail' : 'warn') : 'ok',
              healthy.length === 0
                ? `the sentinels know no healthy replica of ${masterName}${names === '' ? '' : ` (${names})`}: a failover has nothing to promote`
                : `${where} knows ${list.length} replica${list.length === 1 ? '' : 's'} of ${masterName}, ${healthy.length} healthy: ${names}`,
            );
          }
        }
      } catch (err) {
        run.add(
          `${name}`,
          'fail',
          `${where} stopped answering during the checks: ${describeError(err)}`,
        );
      } finally {
        conn.close();
      }
    }),
  );
  const total = sentinels.length;
  run.add(
    `sentinel ${masterName} reachable`,
    reachable === 0 ? 'fail' : reachable < total ? 'warn' : 'ok',
    reachable === 0
      ? `none of the ${total} configured sentinels answers: the primary of ${masterName} cannot be found${label}`
      : `${reachable} of ${total} configured sentinel${total === 1 ? '' : 's'} answer${reachable === 1 ? 's' : ''}${reachable < total ? ': fix or remove the others (REDIS_SENTINELS)' : ''}`,
  );
  if (primaries.size > 1) {
    run.add(
      `sentinel ${masterName} primary`,
      'warn',
      `the sentinels disagree on the primary of ${masterName}: ${[...primaries.keys()].join(', ')} (a failover in progress, or a split)`,
    );
  }
  const primary = primaries.values().next().value;
  if (primary === undefined) {
    if (reachable > 0)
      run.add(
        `sentinel ${masterName} primary`,
        'fail',
        `no sentinel knows a primary for master set ${masterName} (REDIS_MASTER_NAME)`,
      );
    return;
  }
  await checkRedisNode(
    run,
    primary,
    dataAuth,
    role,
    'primary',
    `, primary of ${masterName} per the sentinels${label}`,
  );
}

/** CLUSTER NODES line: `<id> <ip:port@cport[,hostname]> <flags> ...`. */
function clusterNodes(text: string): Array<{ node: HostPort; flags: string[] }> {
  const out: Array<{ node: HostPort; flags: string[] }> = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(' ');
    if (parts.length < 3) continue;
    const address = (parts[1] ?? '').split('@')[0] ?? '';
    try {
      out.push({ node: parseAddress(address), flags: (parts[2] ?? '').split(',') });
    } catch {
      // ":0" for a node that has not learnt its own address yet
    }
  }
  return out;
}

async function checkCluster(
  run: Run,
  config: Record<string, unknown>,
  seeds: HostPort[],
  role: Role,
): Promise<void> {
  const auth = redisAuth(config, false);
  auth.db = 0;
  let text: string | undefined;
  let state: string | undefined;
  const failures: string[] = [];
  for (const seed of seeds) {
    let conn: Conn;
    try {
      conn = await connectRedis(run, seed, auth);
    } catch (err) {
      failures.push(redisConnectFailure(err, `seed ${addr(seed)}`, auth, run.remaining()));
      continue;
    }
    try {
      text = String(await run.bounded(conn.client.call('CLUSTER', 'NODES'), 'CLUSTER NODES'));
      state = parseInfo(
        String(await run.bounded(conn.client.call('CLUSTER', 'INFO'), 'CLUSTER INFO')),
      ).get('cluster_state');
      break;
    } catch (err) {
      failures.push(`seed ${addr(seed)}: ${describeError(err)}`);
    } finally {
      conn.close();
    }
  }
  if (text === undefined) {
    run.add(
      'redis cluster',
      'fail',
      `no cluster seed (REDIS_ADDRESSES) answers: ${failures.join('; ')}`,
    );
    return;
  }
  const nodes = clusterNodes(text);
  run.add(
    'redis cluster',
    state === 'ok' ? 'ok' : 'fail',
    state === 'ok'
      ? `the cluster is up (cluster_state ok) with ${nodes.filter((n) => n.flags.includes('master')).length} primaries and ${nodes.filter((n) => n.flags.includes('slave')).length} replicas`
      : `cluster_state is ${state ?? 'unknown'}: some hash slots are not served, announces of their swarms fail`,
  );
  await Promise.all(
    nodes.map(async ({ node, flags }) => {
      if (flags.includes('fail') || flags.includes('noaddr')) {
        run.add(
          `redis ${addr(node)} connection`,
          'fail',
          `the cluster marks node ${addr(node)} as ${flags.join(',')}`,
        );
        return;
      }
      await checkRedisNode(
        run,
        node,
        auth,
        role,
        flags.includes('slave') ? 'replica' : 'primary',
        ', a cluster node',
      );
    }),
  );
}

async function checkRedis(run: Run, config: Record<string, unknown>, role: Role): Promise<void> {
  const mode = str(config, 'REDIS_MODE') ?? 'standalone';
  const auth = redisAuth(config, false);
  switch (mode) {
    case 'standalone': {
      const node = parseAddress(
        strings(config, 'REDIS_ADDRESSES', ['127.0.0.1:6379'])[0] ?? '127.0.0.1:6379',
      );
      await checkRedisNode(run, node, auth, role, 'primary', '');
      return;
    }
    case 'sentinel':
      await checkSentinelSet(
        run,
        config,
        str(config, 'REDIS_MASTER_NAME') ?? 'shoal',
        strings(config, 'REDIS_SENTINELS', []).map(parseAddress),
        role,
        '',
      );
      return;
    case 'cluster':
      await checkCluster(
        run,
        config,
        strings(config, 'REDIS_ADDRESSES', []).map(parseAddress),
        role,
      );
      return;
    case 'ring':
      await Promise.all(
        strings(config, 'REDIS_RING_SHARDS', []).map(async (text, i) => {
          const shard = parseShard(text);
          // KV data lives on the first shard; every shard keeps its swarms' download counts.
          const label = `, ring shard ${shard.name}${i === 0 && durable(role) ? ' (KV data lives here)' : ''}`;
          if (shard.mode === 'standalone')
            await checkRedisNode(run, shard.address, auth, role, 'primary', label);
          else await checkSentinelSet(run, config, shard.masterName, shard.sentinels, role, label);
        }),
      );
      return;
    default:
      run.add(
        'redis config',
        'fail',
        `REDIS_MODE ${JSON.stringify(mode)} is not standalone, sentinel, cluster or ring`,
      );
  }
}

// ---------------------------------------------------------------- PostgreSQL

const PG_KEYS = /^(DATABASE_URL|DATABASE_DIALECT|PG_\w+)$/;

function postgresFailure(
  err: unknown,
  where: string,
  user: string,
  database: string,
  timeoutMs: number,
): string {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return `${where} refused the connection: nothing listens there (server down or wrong address)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${where}: the host name does not resolve (${code})`;
    case '28P01':
      return `${where} rejected the password of user ${user} (authentication failed, 28P01)`;
    case '28000':
      return `${where} refused user ${user}: no pg_hba.conf entry allows it, or the role may not log in (28000: ${message})`;
    case '3D000':
      return `${where}: database ${database} does not exist (3D000)`;
    case '53300':
      return `${where} has no free connection slots (too many clients, 53300)`;
    case '57P03':
      return `${where} is starting up or shutting down (57P03)`;
    default:
      if (
        code === 'ETIMEDOUT' ||
        code === 'STORE_ERR_TIMEOUT' ||
        /timeout|timed out/i.test(message)
      ) {
        return `${where} did not answer within ${timeoutMs} ms (firewall, wrong address, or a hung server)`;
      }
      return `${where}: ${message}${code === '' ? '' : ` (${code})`}`;
  }
}

/**
 * Where deploy/backup/postgres.sh records each backup it completes (shoal_kv;
 * epoch milliseconds). CockroachDB's backup schedule records nothing here.
 */
export const BACKUP_MARKER = { context: 'shoal.backup', key: 'last-ms' } as const;
/** A recorded backup older than this warns (the chart's schedules run hourly to daily). */
const BACKUP_WARN_MS = 48 * 3600_000;

function formatAge(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} days`;
}

async function backupAgeCheck(
  run: Run,
  q: <R extends pg.QueryResultRow>(text: string) => Promise<R[]>,
  name: string,
  where: string,
): Promise<void> {
  const [row] = await q<{ value: string }>(
    `SELECT value FROM shoal_kv WHERE context = '${BACKUP_MARKER.context}' AND key = '${BACKUP_MARKER.key}'`,
  );
  const at = Number(row?.value);
  if (row === undefined || !Number.isFinite(at)) {
    run.add(
      name,
      'ok',
      `${where} records no backup (deploy/backup/postgres.sh records each one it completes; CockroachDB's backup schedule does not: check it with SHOW SCHEDULES)`,
    );
    return;
  }
  const age = run.clock() - at;
  run.add(
    name,
    age > BACKUP_WARN_MS ? 'warn' : 'ok',
    `the last backup recorded in ${where} (deploy/backup/postgres.sh) completed ${formatAge(age)} ago, at ${new Date(at).toISOString()}${age > BACKUP_WARN_MS ? ': the durable data has not been backed up since' : ''}`,
  );
}

async function checkPostgres(run: Run, raw: Record<string, unknown>, role: Role): Promise<void> {
  const picked = Object.fromEntries(
    Object.entries(raw).filter(([k, v]) => PG_KEYS.test(k) && v !== undefined),
  );
  let resolved;
  let options: pg.ClientConfig;
  try {
    resolved = resolvePostgresStoreConfig(picked as unknown as PostgresStoreConfigInput);
    options = clientConfig(resolved, true);
  } catch (err) {
    run.add(
      'postgres config',
      'fail',
      `the PostgreSQL settings are not usable: ${describeError(err)}`,
    );
    return;
  }
  const host = typeof options.host === 'string' ? options.host : 'localhost';
  const port = typeof options.port === 'number' ? options.port : Number(options.port ?? 5432);
  const database = options.database ?? options.user ?? 'postgres';
  const user = options.user ?? 'postgres';
  const where = `PostgreSQL at ${host.startsWith('/') ? host : addr({ host, port })}/${database}`;
  const name = (aspect: string): string =>
    `postgres ${host.startsWith('/') ? host : addr({ host, port })}/${database} ${aspect}`;
  const timeoutMs = run.remaining();
  const client = new pg.Client({
    ...options,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    statement_timeout: timeoutMs,
  });
  // A dropped connection after connect() emits 'error'; the bounded calls report it.
  client.on('error', () => undefined);
  const close = run.onClose(() => {
    void client.end().catch(() => undefined);
  });
  try {
    try {
      await run.bounded(client.connect(), `connect to ${where}`);
    } catch (err) {
      run.add(
        name('connection'),
        'fail',
        `${postgresFailure(err, where, user, database, timeoutMs)}; it holds ${HOLDS[role]}`,
      );
      return;
    }
    const q = async <R extends pg.QueryResultRow>(text: string): Promise<R[]> =>
      (await run.bounded(client.query<R>(text), text)).rows;

    const [versionRow] = await q<{ version: string }>('SELECT version() AS version');
    const version = versionRow?.version ?? 'unknown';
    const cockroach = /cockroach/i.test(version);
    const product = cockroach
      ? (/CockroachDB \S+ \S+/.exec(version)?.[0] ?? 'CockroachDB')
      : (/^PostgreSQL \S+/.exec(version)?.[0] ?? version);
    run.add(name('connection'), 'ok', `${where} answers as user ${user}; it holds ${HOLDS[role]}`);
    const dialect = resolved.DATABASE_DIALECT;
    if (cockroach && dialect === 'postgres') {
      run.add(
        name('version'),
        'fail',
        `${where} runs ${product} but DATABASE_DIALECT is postgres: the advisory-lock statements fail there; set DATABASE_DIALECT=cockroach`,
      );
    } else if (!cockroach && dialect === 'cockroach') {
      run.add(
        name('version'),
        'warn',
        `${where} runs ${product} but DATABASE_DIALECT is cockroach: announces of one swarm are not serialized; set DATABASE_DIALECT=postgres`,
      );
    } else {
      run.add(name('version'), 'ok', `${where} runs ${product} (DATABASE_DIALECT ${dialect})`);
    }

    // Migrations: the store records each applied version in shoal_schema_migrations (postgres/migrations.ts).
    const [table] = await q<{ n: string | number }>(
      "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'shoal_schema_migrations'",
    );
    const migrate =
      'run the migrations: start storage-api with PG_MIGRATE_ON_START=true, or run node packages/storage/src/postgres/migrate-cli.ts with the same DATABASE_URL';
    if (resolved.PG_QUERY_MIGRATE !== undefined) {
      run.add(
        name('migrations'),
        'ok',
        `${where} uses a custom schema (PG_QUERY_MIGRATE): its version is not recorded, so it is not checked`,
      );
    } else if (Number(table?.n ?? 0) === 0) {
      run.add(
        name('migrations'),
        'fail',
        `${where} has no Shoal schema (table shoal_schema_migrations missing): every store call fails; ${migrate}`,
      );
    } else {
      const done = new Set(
        (await q<{ version: number }>('SELECT version FROM shoal_schema_migrations')).map((r) =>
          Number(r.version),
        ),
      );
      const missing = MIGRATIONS.filter((m) => !done.has(m.version));
      const known = new Set(MIGRATIONS.map((m) => m.version));
      const unknown = [...done].filter((v) => !known.has(v)).sort((a, b) => a - b);
      const latest = Math.max(...MIGRATIONS.map((m) => m.version));
      if (missing.length > 0) {
        run.add(
          name('migrations'),
          'fail',
          `${where} is missing migration${missing.length === 1 ? '' : 's'} ${missing.map((m) => `${m.version} (${m.name})`).join(', ')}: the schema is outdated; ${migrate}`,
        );
      } else if (unknown.length > 0) {
        run.add(
          name('migrations'),
          'warn',
          `${where} has migration${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')} this build does not know (applied by a newer Shoal); this build expects version ${latest}`,
        );
      } else {
        run.add(
          name('migrations'),
          'ok',
          `${where} has every migration applied (schema version ${latest})`,
        );
      }
    }

    if (durable(role) && Number(table?.n ?? 0) > 0 && resolved.PG_QUERY_MIGRATE === undefined)
      await backupAgeCheck(run, q, name('backup'), where);

    const [iso] = await q<{ default_transaction_isolation: string }>(
      'SHOW default_transaction_isolation',
    );
    const level = (iso?.default_transaction_isolation ?? 'unknown').toLowerCase();
    const wanted = resolved.PG_ISOLATION_LEVEL;
    if (wanted !== 'server-default' && wanted !== level) {
      run.add(
        name('isolation'),
        'warn',
        `${where} runs transactions at ${level.toUpperCase()} although PG_ISOLATION_LEVEL asks for ${wanted.toUpperCase()} (a connection pooler dropping startup options?)`,
      );
    } else {
      run.add(
        name('isolation'),
        'ok',
        `${where} runs transactions at ${level.toUpperCase()} (PG_ISOLATION_LEVEL ${wanted})`,
      );
    }

    const local = run.clock();
    const started = performance.now();
    const [now] = await q<{ ms: string | number }>(
      'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms',
    );
    const skew = Number(now?.ms) - (local + (performance.now() - started) / 2);
    skewCheck(run, name('clock'), where, skew, SKEW_CONSEQUENCE);
  } catch (err) {
    run.add(
      name('checks'),
      'fail',
      `${where} stopped answering during the checks: ${describeError(err)}`,
    );
  } finally {
    close();
  }
}
