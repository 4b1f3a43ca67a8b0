// The whole Shoal topology as local processes ("Proof"): Redis
// Sentinel (a primary, two replicas, three sentinels) from deploy/redis's
// files, a PostgreSQL, storage-api (peers in Redis Sentinel, downloads, KV and
// leases in PostgreSQL), a gc-worker electing through storage-api, and two
// gateways on the remote driver sharing one UDP connection-ID secret. Every
// process runs in its own process group with its output in <stateDir>/logs,
// so the same code serves tests (stop() in afterAll) and deploy/local/up.sh,
// whose processes outlive the command and are stopped by down.sh from the
// pids in <stateDir>/topology.json. docs/local-topology.md. The Redis
// Sentinel set: topology-redis.ts; PostgreSQL: topology-postgres.ts.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  REPO_ROOT,
  release,
  stopProcess,
  type ServerProcess,
  type TopologyProcess,
} from './process-group.ts';
import { LOOPBACK_ENV, startService, type ServiceProcess } from './launcher.ts';
import { startTopologyPostgres } from './topology-postgres.ts';
import { sentinelPrimary, startTopologyRedis } from './topology-redis.ts';

export { REPO_ROOT };
export type { ServerProcess, TopologyProcess } from './process-group.ts';
export type { ServiceName, ServiceProcess } from './launcher.ts';
export { isAlive } from './process-group.ts';

/** The live gc-worker whose /readyz says `leader: true` (docs/gc-worker.md). */
async function gcWorkerLeader(
  workers: readonly ServiceProcess[],
): Promise<ServiceProcess | undefined> {
  const leads = await Promise.all(
    workers.map(async (w) => {
      if (!w.alive()) return false;
      try {
        const res = await fetch(`http://127.0.0.1:${Number(w.listening.admin)}/readyz`, {
          signal: AbortSignal.timeout(2_000),
        });
        return (
          res.ok && ((await res.json()) as { info?: { leader?: unknown } }).info?.leader === true
        );
      } catch {
        return false;
      }
    }),
  );
  return workers.find((_, i) => leads[i]);
}

export interface LocalTopologyOptions {
  /** Where logs, data and topology.json go; a fresh temp dir by default. */
  stateDir?: string;
  /** Processes outlive the caller (deploy/local/up.sh). Default false. */
  detached?: boolean;
  /** Extra env for every gateway / storage-api / gc-worker. */
  gatewayEnv?: Record<string, string>;
  storageApiEnv?: Record<string, string>;
  gcWorkerEnv?: Record<string, string>;
  /** Sentinel down-after-milliseconds; default 5000 as deploy/redis (tests use less). */
  sentinelDownAfterMs?: number;
  /** Sentinel failover-timeout; default 60000 as deploy/redis (a failed election is retried after twice this). */
  sentinelFailoverTimeoutMs?: number;
  /** gc-workers competing for the lease (gc-worker, gc-worker-2, ...); default 1. */
  gcWorkers?: number;
}

export interface GatewayEndpoints {
  name: string;
  httpAnnounce: string;
  udpAnnounce: string;
  scrape: string;
  admin: string;
  metrics: string;
  port: number;
  adminPort: number;
}

/** What topology.json holds and what `up` prints. */
export interface TopologyEndpoints {
  stateDir: string;
  gateways: GatewayEndpoints[];
  /** adminToken: STORAGE_API_ADMIN_TOKEN, the Bearer token of /v1/admin/* (shoalctl --token). */
  storageApi: { url: string; admin: string; metrics: string; adminToken: string };
  gcWorker: { admin: string; metrics: string };
  redis: { masterName: string; servers: string[]; sentinels: string[] };
  postgres: { url: string };
  /** Local-only secrets (the state dir is 0700). */
  secrets: {
    storageApiToken: string;
    storageApiAdminToken: string;
    redisPassword: string;
    sentinelPassword: string;
    udpConnectionIdSecret: string;
  };
  processes: TopologyProcess[];
  /** Directories to remove on stop (PostgreSQL's lives outside the state dir, owned by the postgres user). */
  dirs: string[];
}

export interface LocalTopology extends TopologyEndpoints {
  gatewayProcesses: ServiceProcess[];
  storageApiProcess: ServiceProcess;
  /** The first gc-worker, the one `gcWorker` in the endpoints describes. */
  gcWorkerProcess: ServiceProcess;
  gcWorkerProcesses: ServiceProcess[];
  /** redis-0..2 in start order; redis-0 is the primary until a failover. */
  redisProcesses: ServerProcess[];
  sentinelProcesses: ServerProcess[];
  postgresProcess: ServerProcess;
  /** The Redis server the sentinels name as primary (the first sentinel that answers), or undefined. */
  redisPrimary(): Promise<ServerProcess | undefined>;
  /** The gc-worker whose /readyz says it leads, or undefined while none does. */
  gcWorkerLeader(): Promise<ServiceProcess | undefined>;
  stop(): Promise<void>;
}

const STOP_ORDER = ['gateway', 'gc-worker', 'storage-api', 'sentinel', 'redis', 'postgres'];

/** Stops every process of a topology (gateways first, databases last) and removes its data dirs. */
export async function stopTopology(
  t: Pick<TopologyEndpoints, 'processes' | 'dirs'>,
): Promise<void> {
  const rank = (p: TopologyProcess): number =>
    STOP_ORDER.findIndex((prefix) => p.name.startsWith(prefix));
  const byRank = new Map<number, TopologyProcess[]>();
  for (const p of t.processes) byRank.set(rank(p), [...(byRank.get(rank(p)) ?? []), p]);
  for (const r of [...byRank.keys()].sort((a, b) => a - b)) {
    await Promise.all(byRank.get(r)!.map((p) => stopProcess(p)));
  }
  for (const d of t.dirs) rmSync(d, { recursive: true, force: true });
}

export async function startLocalTopology(
  options: LocalTopologyOptions = {},
): Promise<LocalTopology> {
  const detached = options.detached ?? false;
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'shoal-local-'));
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const logDir = join(stateDir, 'logs');
  const processes: TopologyProcess[] = [];
  const dirs: string[] = [];
  const secrets = {
    storageApiToken: randomBytes(24).toString('hex'),
    // A caller's own admin token (storageApiEnv) is the one topology.json reports.
    storageApiAdminToken:
      options.storageApiEnv?.STORAGE_API_ADMIN_TOKEN ?? randomBytes(24).toString('hex'),
    redisPassword: randomBytes(16).toString('hex'),
    sentinelPassword: randomBytes(16).toString('hex'),
    udpConnectionIdSecret: randomBytes(32).toString('hex'),
  };
  const track = <T extends TopologyProcess>(p: T): T => {
    processes.push(p);
    return p;
  };

  try {
    const masterName = 'shoal';
    const { redisPorts, redisServers, sentinelPorts, sentinels } = await startTopologyRedis({
      stateDir,
      logDir,
      detached,
      masterName,
      redisPassword: secrets.redisPassword,
      sentinelPassword: secrets.sentinelPassword,
      sentinelDownAfterMs: options.sentinelDownAfterMs,
      sentinelFailoverTimeoutMs: options.sentinelFailoverTimeoutMs,
      track,
    });
    const { postgres, databaseUrl } = await startTopologyPostgres(detached, dirs, track);

    // --- storage-api: peers in Redis Sentinel; downloads, KV and leases in PostgreSQL.
    const storageApi = track(
      await startService({
        name: 'storage-api',
        service: 'storage-api',
        logDir,
        detached,
        env: {
          ...LOOPBACK_ENV,
          STORAGE_API_TOKEN: secrets.storageApiToken,
          STORAGE_API_ADMIN_TOKEN: secrets.storageApiAdminToken,
          PEER_STORE_DRIVER: 'redis',
          DATA_STORE_DRIVER: 'postgres',
          REDIS_MODE: 'sentinel',
          REDIS_SENTINELS: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
          REDIS_MASTER_NAME: masterName,
          REDIS_PASSWORD: secrets.redisPassword,
          REDIS_SENTINEL_PASSWORD: secrets.sentinelPassword,
          DATABASE_URL: databaseUrl,
          ...options.storageApiEnv,
        },
      }),
    );
    const apiPort = Number(storageApi.listening.port);
    const apiAdmin = Number(storageApi.listening.admin);
    const storageApiUrl = `http://127.0.0.1:${apiPort}`;

    // --- gc-worker and the two gateways, side by side.
    const gcWorkerCount = options.gcWorkers ?? 1;
    const [gcWorkers, gateways] = await Promise.all([
      Promise.all(
        Array.from({ length: gcWorkerCount }, (_, n) =>
          startService({
            name: n === 0 ? 'gc-worker' : `gc-worker-${n + 1}`,
            service: 'gc-worker',
            logDir,
            detached,
            env: {
              ADMIN_HOST: '127.0.0.1',
              ADMIN_PORT: '0',
              STORAGE_API_URL: storageApiUrl,
              STORAGE_API_TOKEN: secrets.storageApiToken,
              LEADER_ELECTION: 'storage-api',
              ...options.gcWorkerEnv,
            },
          }),
        ),
      ),
      Promise.all(
        ['a', 'b'].map((n) =>
          startService({
            name: `gateway-${n}`,
            service: 'announce-gateway',
            logDir,
            detached,
            env: {
              ...LOOPBACK_ENV,
              STORAGE_DRIVER: 'remote',
              STORAGE_API_URL: storageApiUrl,
              STORAGE_API_TOKEN: secrets.storageApiToken,
              UDP_CONNECTION_ID_SECRET: secrets.udpConnectionIdSecret,
              // Two gateways share one machine: one thread each.
              GATEWAY_WORKERS: '1',
              ...options.gatewayEnv,
            },
          }),
        ),
      ),
    ]);
    const gcWorker = gcWorkers[0]!;
    for (const p of [...gcWorkers, ...gateways]) track(p);

    const gatewayEndpoints: GatewayEndpoints[] = gateways.map((g) => {
      const port = Number(g.listening.http ?? g.listening.udp);
      const admin = Number(g.listening.admin);
      return {
        name: g.name,
        httpAnnounce: `http://127.0.0.1:${port}/announce`,
        udpAnnounce: `udp://127.0.0.1:${Number(g.listening.udp ?? port)}/announce`,
        scrape: `http://127.0.0.1:${port}/scrape`,
        admin: `http://127.0.0.1:${admin}`,
        metrics: `http://127.0.0.1:${admin}/metrics`,
        port,
        adminPort: admin,
      };
    });
    const endpoints: TopologyEndpoints = {
      stateDir,
      gateways: gatewayEndpoints,
      storageApi: {
        url: storageApiUrl,
        admin: `http://127.0.0.1:${apiAdmin}`,
        metrics: `http://127.0.0.1:${apiAdmin}/metrics`,
        adminToken: secrets.storageApiAdminToken,
      },
      gcWorker: {
        admin: `http://127.0.0.1:${Number(gcWorker.listening.admin)}`,
        metrics: `http://127.0.0.1:${Number(gcWorker.listening.admin)}/metrics`,
      },
      redis: {
        masterName,
        servers: redisPorts.map((p) => `127.0.0.1:${p}`),
        sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`),
      },
      postgres: { url: databaseUrl },
      secrets,
      processes: processes.map(({ name, pid, log, stopSignal, group }) => ({
        name,
        pid,
        log,
        stopSignal,
        group,
      })),
      dirs,
    };
    const file = join(stateDir, 'topology.json');
    writeFileSync(file, `${JSON.stringify(endpoints, null, 2)}\n`, { mode: 0o600 });
    return {
      ...endpoints,
      gatewayProcesses: gateways,
      storageApiProcess: storageApi,
      gcWorkerProcess: gcWorker,
      gcWorkerProcesses: gcWorkers,
      redisProcesses: redisServers,
      sentinelProcesses: sentinels,
      postgresProcess: postgres,
      redisPrimary: async () => {
        const port = await sentinelPrimary(sentinelPorts, secrets.sentinelPassword, masterName);
        return redisServers.find((r) => r.port === port);
      },
      gcWorkerLeader: () => gcWorkerLeader(gcWorkers),
      async stop() {
        await stopTopology({ processes, dirs });
        for (const p of processes) release(p);
        if (options.stateDir === undefined) rmSync(stateDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopTopology({ processes, dirs });
    throw err;
  }
}

/** Reads <stateDir>/topology.json written by startLocalTopology, or undefined. */
export function readTopology(stateDir: string): TopologyEndpoints | undefined {
  const file = join(stateDir, 'topology.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as TopologyEndpoints;
}
