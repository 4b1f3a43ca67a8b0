// Real Redis servers for tests: standalone, a Sentinel set, a Cluster and a
// ring of independent shards, started from the machine's Debian binaries
// (redis-server, redis-sentinel, redis-cli) on free loopback ports in temp
// dirs. Every server starts from deploy/redis/redis.conf or sentinel.conf
// with only ports, paths, passwords and test timings overridden, so the
// production files are proven to be accepted by the real server. One
// process and its command lines: redis-process.ts; the failover drill that
// tests run against these sets: failover.ts.
import { copyFile, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort } from './ports.ts';
import {
  REDIS_CONF,
  RedisProcess,
  SENTINEL_CONF,
  TEST_REDIS_PASSWORD,
  TEST_SENTINEL_PASSWORD,
  infoField,
  redisCli,
  redisServerArgv,
  sentinelArgv,
  startReplicas,
  startSentinels,
  waitFor,
  type HostPort,
} from './redis-process.ts';

export * from './redis-process.ts';
export * from './failover.ts';

async function makeDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `shoal-${prefix}-`));
}

export interface StartRedisOptions {
  /** requirepass/masterauth; undefined for no password. Default TEST_REDIS_PASSWORD. */
  password?: string | undefined;
  /** Extra `--directive value` overrides appended after the production file. */
  args?: readonly string[];
  replicaOf?: HostPort;
}

export interface RedisServer extends RedisProcess {
  close(): Promise<void>;
}

async function newRedisProcess(opts: StartRedisOptions, dir?: string): Promise<RedisProcess> {
  const port = await freeTcpPort();
  const workDir = dir ?? (await makeDir('redis'));
  const password = 'password' in opts ? opts.password : TEST_REDIS_PASSWORD;
  // A copy, because Sentinel's failover makes the server CONFIG REWRITE its file.
  const conf = join(workDir, 'redis.conf');
  await copyFile(REDIS_CONF, conf);
  const argv = redisServerArgv({
    conf,
    port,
    dir: workDir,
    password,
    replicaOf: opts.replicaOf,
    // Tests fork no RDB snapshots; AOF stays on as in production.
    extra: ['--save', '', '--maxmemory', '256mb', ...(opts.args ?? [])],
  });
  return new RedisProcess({ binary: 'redis-server', argv, port, dir: workDir, password });
}

/** One standalone redis-server. `close()` kills it and removes its dir. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const proc = await newRedisProcess(opts);
  await proc.start();
  return Object.assign(proc, {
    async close(): Promise<void> {
      await proc.kill();
      await rm(proc.dir, { recursive: true, force: true });
    },
  });
}

export interface SentinelSet {
  masterName: string;
  password: string;
  sentinelPassword: string;
  /** The sentinels' down-after-milliseconds. */
  downAfterMs: number;
  /** The sentinels' failover-timeout, ms (a failed election is retried only 2x this after it began). */
  failoverTimeoutMs: number;
  /** Data servers; index 0 started as the primary. */
  servers: RedisProcess[];
  sentinels: RedisProcess[];
  sentinelAddresses: HostPort[];
  /** The primary as the sentinels currently report it. */
  primary(): Promise<RedisProcess>;
  /** SIGKILLs the current primary and returns it (restart it with `.start()`). */
  killPrimary(): Promise<RedisProcess>;
  /** Resolves once the sentinels report a primary other than `old` and it accepts writes. */
  waitForNewPrimary(old: RedisProcess, timeoutMs?: number): Promise<RedisProcess>;
  close(): Promise<void>;
}

export interface SentinelSetOptions {
  replicas?: number;
  sentinels?: number;
  masterName?: string;
  /** Sentinel down-after-milliseconds; production uses 5000. */
  downAfterMs?: number;
}

/** The harness sentinels' failover-timeout. */
const SENTINEL_FAILOVER_TIMEOUT_MS = 10_000;

/** A primary, its replicas and a quorum of sentinels (quorum = majority). */
export async function startSentinelSet(opts: SentinelSetOptions = {}): Promise<SentinelSet> {
  const replicas = opts.replicas ?? 2;
  const sentinelCount = opts.sentinels ?? 3;
  const masterName = opts.masterName ?? 'shoal';
  const downAfterMs = opts.downAfterMs ?? 1000;
  const quorum = Math.floor(sentinelCount / 2) + 1;
  const root = await makeDir('sentinel-set');
  const servers: RedisProcess[] = [];
  const sentinels: RedisProcess[] = [];
  const close = async (): Promise<void> => {
    await Promise.all([...sentinels, ...servers].map((p) => p.kill()));
    await rm(root, { recursive: true, force: true });
  };
  try {
    const dirs = await Promise.all(
      Array.from({ length: replicas + 1 }, async (_, i) => {
        const d = join(root, `redis-${i}`);
        await mkdir(d);
        return d;
      }),
    );
    const primary = await newRedisProcess({}, dirs[0]);
    servers.push(primary);
    await primary.start();
    for (let i = 1; i <= replicas; i++) {
      servers.push(
        await newRedisProcess({ replicaOf: { host: primary.host, port: primary.port } }, dirs[i]),
      );
    }
    await startReplicas(servers.slice(1));

    const template = await readFile(SENTINEL_CONF, 'utf8');
    const monitorLine = /^sentinel monitor \S+ \S+ \d+ \d+$/m;
    if (!monitorLine.test(template))
      throw new Error(`${SENTINEL_CONF} has no "sentinel monitor" line`);
    const withMaster = template
      .replace(
        monitorLine,
        `sentinel monitor ${masterName} ${primary.host} ${primary.port} ${quorum}`,
      )
      .replaceAll(/^(sentinel \S+ )shoal( .*)$/gm, `$1${masterName}$2`);
    for (let i = 0; i < sentinelCount; i++) {
      const dir = join(root, `sentinel-${i}`);
      await mkdir(dir);
      const conf = join(dir, 'sentinel.conf');
      await writeFile(conf, withMaster);
      const port = await freeTcpPort();
      const argv = sentinelArgv({
        conf,
        port,
        dir,
        masterName,
        password: TEST_REDIS_PASSWORD,
        sentinelPassword: TEST_SENTINEL_PASSWORD,
        extra: [
          '--sentinel',
          'down-after-milliseconds',
          masterName,
          String(downAfterMs),
          '--sentinel',
          'failover-timeout',
          masterName,
          String(SENTINEL_FAILOVER_TIMEOUT_MS),
        ],
      });
      sentinels.push(
        new RedisProcess({
          binary: 'redis-sentinel',
          argv,
          port,
          dir,
          password: TEST_SENTINEL_PASSWORD,
        }),
      );
    }
    // A cap, not a bound: sentinels learn replicas from INFO every 10 s and
    // each other from hellos every 2 s, both late on a loaded machine (20 s
    // ran out there).
    await startSentinels(sentinels, masterName, replicas, 60_000);
  } catch (err) {
    await close();
    throw err;
  }

  const byAddress = async (): Promise<RedisProcess> => {
    for (const s of sentinels) {
      if (!s.running) continue;
      try {
        const [host, port] = (await s.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)).split(
          '\n',
        );
        const found = servers.find((srv) => srv.host === host && srv.port === Number(port));
        if (found) return found;
      } catch {
        // try the next sentinel
      }
    }
    throw new Error('no sentinel reports a primary');
  };

  return {
    masterName,
    password: TEST_REDIS_PASSWORD,
    sentinelPassword: TEST_SENTINEL_PASSWORD,
    downAfterMs,
    failoverTimeoutMs: SENTINEL_FAILOVER_TIMEOUT_MS,
    servers,
    sentinels,
    sentinelAddresses: sentinels.map((s) => ({ host: s.host, port: s.port })),
    primary: byAddress,
    async killPrimary() {
      const p = await byAddress();
      await p.kill();
      return p;
    },
    async waitForNewPrimary(old, timeoutMs = 30_000) {
      let found: RedisProcess | undefined;
      await waitFor(
        'failover',
        async () => {
          const p = await byAddress();
          if (p === old || !p.running) return false;
          if (infoField(await p.cli('INFO', 'replication'), 'role') !== 'master') return false;
          found = p;
          return true;
        },
        timeoutMs,
        100,
      );
      if (!found) throw new Error('unreachable');
      return found;
    },
    close,
  };
}

export interface RedisCluster {
  nodes: RedisProcess[];
  addresses: HostPort[];
  password: string;
  close(): Promise<void>;
}

/** A Redis Cluster of `masters` primaries without replicas, created with `redis-cli --cluster create`. */
export async function startCluster(opts: { masters?: number } = {}): Promise<RedisCluster> {
  const masters = opts.masters ?? 3;
  const root = await makeDir('cluster');
  const nodes: RedisProcess[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.kill()));
    await rm(root, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const dir = join(root, `node-${i}`);
      await mkdir(dir);
      const busPort = await freeTcpPort();
      nodes.push(
        await newRedisProcess(
          {
            args: [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              join(dir, 'nodes.conf'),
              '--cluster-port',
              String(busPort),
              '--cluster-node-timeout',
              '2000',
            ],
          },
          dir,
        ),
      );
    }
    await Promise.all(nodes.map((n) => n.start()));
    await redisCli(
      nodes[0]!.port,
      TEST_REDIS_PASSWORD,
      [
        '--cluster',
        'create',
        ...nodes.map((n) => n.address),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      30_000,
    );
    await Promise.all(
      nodes.map((n) =>
        waitFor(
          'cluster_state:ok',
          async () => infoField(await n.cli('CLUSTER', 'INFO'), 'cluster_state') === 'ok',
        ),
      ),
    );
  } catch (err) {
    await close();
    throw err;
  }
  return {
    nodes,
    addresses: nodes.map((n) => ({ host: n.host, port: n.port })),
    password: TEST_REDIS_PASSWORD,
    close,
  };
}

export interface RedisRing {
  shards: RedisServer[];
  close(): Promise<void>;
}

/** `n` independent standalone servers, the shards of a client-side ring. */
export async function startRing(n = 3): Promise<RedisRing> {
  const shards = await Promise.all(Array.from({ length: n }, () => startRedis()));
  return {
    shards,
    async close() {
      await Promise.all(shards.map((s) => s.close()));
    },
  };
}
