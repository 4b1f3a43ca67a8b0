// The split topology of docs/local-topology.md as containers on the host
// network (docs/testing.md "Container test"): a Redis primary, two replicas
// and three sentinels from deploy/redis's files and PostgreSQL, in the test
// images built from the local base; storage-api (peers in Redis Sentinel,
// downloads and KV in PostgreSQL, as the chart's default keeps them in
// CockroachDB), a gc-worker and two gateways from the service images, each
// run as the chart runs it: its image's user, a read-only root, /tmp a tmpfs,
// every capability dropped. Ports are free host ports picked per run.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort, freeTcpUdpPort } from '@shoal/testing/ports';
import { waitFor } from '@shoal/testing/processes';
import { redisCli, redisServerArgv, sentinelArgv } from '@shoal/testing/redis';
import {
  loopbackSentinelConf,
  sentinelKnowsAll,
  sentinelPrimary,
} from '@shoal/testing/topology-redis';
import { REPO_ROOT, type Container, type ContainerRun } from './podman.ts';
import type { TestImages } from './images.ts';

/** How the chart runs the service containers (helm/shoal/templates/*: securityContext, emptyDir /tmp). */
export const SERVICE_FLAGS: readonly string[] = [
  '--read-only',
  '--tmpfs',
  '/tmp:rw,size=64m,mode=1777',
  '--cap-drop',
  'ALL',
  '--security-opt',
  'no-new-privileges',
];

/** Drain time the test gives the services on SIGTERM (the chart's is 25 s). */
export const TEST_SHUTDOWN_GRACE_SECONDS = 2;

export interface ContainerGateway {
  container: Container;
  port: number;
  adminPort: number;
}

export interface ContainerTopology {
  masterName: string;
  redis: Array<{ container: Container; port: number }>;
  sentinels: Array<{ container: Container; port: number }>;
  sentinelPassword: string;
  /** The sentinels' down-after-milliseconds and failover-timeout, as started. */
  sentinelTiming: { downAfterMs: number; failoverTimeoutMs: number };
  postgres: Container;
  storageApi: Container;
  gcWorker: Container;
  gateways: [ContainerGateway, ContainerGateway];
  /** The Redis server container the sentinels name as primary. */
  redisPrimary(): Promise<{ container: Container; port: number } | undefined>;
  /** Every container in the order `podman stop` takes them (gateways first, databases last). */
  stopOrder(): Container[][];
  /** Removes the state dir (configs and Redis data). */
  removeStateDir(): void;
}

async function ready(what: string, url: string, container: Container): Promise<void> {
  await waitFor(
    what,
    async () => {
      if (!(await container.state()).running)
        throw new Error(`${what}: container exited\n${await container.logs()}`);
      try {
        return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;
      } catch {
        return false;
      }
    },
    // A cap, not a bound: at load 30 a gateway container had not logged a line
    // after 60 s (node starting in a container beside the image builds).
    180_000,
    250,
  );
}

export async function startContainerTopology(
  run: ContainerRun,
  images: TestImages,
  /** Sentinel timings in place of deploy/redis's (5 s down-after, 60 s failover-timeout). */
  opts: { sentinelDownAfterMs: number; sentinelFailoverTimeoutMs: number },
): Promise<ContainerTopology> {
  const stateDir = mkdtempSync(join(tmpdir(), 'shoal-containers-'));
  // The redis user of the test image writes here (configs Sentinel rewrites, RDB files).
  chmodSync(stateDir, 0o777);
  const secrets = {
    redisPassword: randomBytes(16).toString('hex'),
    sentinelPassword: randomBytes(16).toString('hex'),
    postgresPassword: randomBytes(16).toString('hex'),
    storageApiToken: randomBytes(24).toString('hex'),
    storageApiAdminToken: randomBytes(24).toString('hex'),
    udpConnectionIdSecret: randomBytes(32).toString('hex'),
  };
  const masterName = 'shoal';
  const mount = ['--volume', `${stateDir}:${stateDir}`];
  /**
   * A redis-server or redis-sentinel container on a free port, its config
   * file (`text`) in a dir of its own that the image's redis user can write
   * (Sentinel rewrites its file, and a server its own on failover).
   */
  const startRedisLike = async (
    name: string,
    command: 'redis-server' | 'redis-sentinel',
    text: string,
    argv: (files: { conf: string; port: number; dir: string }) => string[],
  ): Promise<{ container: Container; port: number }> => {
    const dir = join(stateDir, name);
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const conf = join(dir, `${command.replace('redis-', '')}.conf`);
    writeFileSync(conf, text);
    chmodSync(conf, 0o666);
    const port = await freeTcpPort();
    const args = [command, ...argv({ conf, port, dir }), '--daemonize', 'no', '--logfile', ''];
    return { container: await run.start({ name, image: images.redis, flags: mount, args }), port };
  };

  // --- Redis: a primary and two replicas from deploy/redis/redis.conf.
  const redisConf = readFileSync(join(REPO_ROOT, 'deploy/redis/redis.conf'), 'utf8');
  const redis: ContainerTopology['redis'] = [];
  for (let i = 0; i < 3; i++) {
    redis.push(
      await startRedisLike(`redis-${i}`, 'redis-server', redisConf, (files) =>
        redisServerArgv({
          ...files,
          password: secrets.redisPassword,
          replicaOf: i === 0 ? undefined : { host: '127.0.0.1', port: redis[0]!.port },
        }),
      ),
    );
  }
  const cli = (port: number, password: string, args: readonly string[]): Promise<string> =>
    redisCli(port, password, args, 3000);
  for (const [i, r] of redis.entries()) {
    await waitFor(
      `redis-${i} ${i === 0 ? 'to answer' : 'to sync'}`,
      async () =>
        i === 0
          ? (await cli(r.port, secrets.redisPassword, ['PING'])) === 'PONG'
          : (await cli(r.port, secrets.redisPassword, ['INFO', 'replication'])).includes(
              'master_link_status:up',
            ),
      30_000,
    ).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${await r.container.logs()}`);
    });
  }

  // --- Three sentinels from deploy/redis/sentinel.conf.
  const sentinelConf = loopbackSentinelConf(masterName, redis[0]!.port);
  const sentinels: ContainerTopology['sentinels'] = [];
  for (let i = 0; i < 3; i++) {
    sentinels.push(
      await startRedisLike(`sentinel-${i}`, 'redis-sentinel', sentinelConf, (files) =>
        sentinelArgv({
          ...files,
          masterName,
          password: secrets.redisPassword,
          sentinelPassword: secrets.sentinelPassword,
          extra: [
            '--sentinel',
            'down-after-milliseconds',
            masterName,
            String(opts.sentinelDownAfterMs),
            '--sentinel',
            'failover-timeout',
            masterName,
            String(opts.sentinelFailoverTimeoutMs),
          ],
        }),
      ),
    );
  }

  // --- PostgreSQL, a fresh cluster in a tmpfs (deploy/containers/postgres).
  const pgPort = await freeTcpPort();
  const postgres = await run.start({
    name: 'postgres',
    image: images.postgres,
    env: {
      POSTGRES_PASSWORD: secrets.postgresPassword,
      PGPORT: String(pgPort),
      PGHOST: '127.0.0.1',
    },
    flags: ['--tmpfs', '/var/lib/postgresql/data:rw,mode=0700,U'],
  });
  const databaseUrl = `postgres://postgres:${secrets.postgresPassword}@127.0.0.1:${pgPort}/shoal`;

  // Every sentinel knows the replicas and the other sentinels before storage-api asks them.
  await Promise.all(
    sentinels.map((s, i) =>
      waitFor(
        `sentinel-${i} discovery`,
        () => sentinelKnowsAll(s.port, secrets.sentinelPassword, masterName).catch(() => false),
        30_000,
        250,
      ),
    ),
  );

  // --- storage-api: peers in Redis Sentinel; downloads, KV and leases in PostgreSQL.
  const apiPort = await freeTcpPort();
  const apiAdminPort = await freeTcpPort();
  const common = {
    LOG_LEVEL: 'info',
    SHUTDOWN_GRACE_SECONDS: String(TEST_SHUTDOWN_GRACE_SECONDS),
  };
  const storageApi = await run.start({
    name: 'storage-api',
    image: images.storageApi,
    flags: SERVICE_FLAGS,
    env: {
      ...common,
      HOST: '127.0.0.1',
      PORT: String(apiPort),
      ADMIN_HOST: '127.0.0.1',
      ADMIN_PORT: String(apiAdminPort),
      STORAGE_API_TOKEN: secrets.storageApiToken,
      STORAGE_API_ADMIN_TOKEN: secrets.storageApiAdminToken,
      PEER_STORE_DRIVER: 'redis',
      DATA_STORE_DRIVER: 'postgres',
      REDIS_MODE: 'sentinel',
      REDIS_SENTINELS: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      REDIS_MASTER_NAME: masterName,
      REDIS_PASSWORD: secrets.redisPassword,
      REDIS_SENTINEL_PASSWORD: secrets.sentinelPassword,
      DATABASE_URL: databaseUrl,
      PG_MIGRATE_ON_START: 'true',
    },
  });
  await ready('storage-api /readyz', `http://127.0.0.1:${apiAdminPort}/readyz`, storageApi);
  const storageApiUrl = `http://127.0.0.1:${apiPort}`;

  // --- gc-worker (electing through storage-api) and two gateways, as the chart sets them.
  const gcAdminPort = await freeTcpPort();
  const gcWorker = await run.start({
    name: 'gc-worker',
    image: images.gcWorker,
    flags: SERVICE_FLAGS,
    env: {
      ...common,
      ADMIN_HOST: '127.0.0.1',
      ADMIN_PORT: String(gcAdminPort),
      STORAGE_API_URL: storageApiUrl,
      STORAGE_API_TOKEN: secrets.storageApiToken,
      LEADER_ELECTION: 'storage-api',
    },
  });
  const gateways: ContainerGateway[] = [];
  for (const n of ['a', 'b']) {
    const port = await freeTcpUdpPort();
    const adminPort = await freeTcpPort();
    const container = await run.start({
      name: `gateway-${n}`,
      image: images.gateway,
      flags: SERVICE_FLAGS,
      env: {
        ...common,
        // Dual-stack, as the chart binds it: IPv4 clients on 127.0.0.1, IPv6 on ::1.
        HOST: '::',
        PORT: String(port),
        ADMIN_HOST: '127.0.0.1',
        ADMIN_PORT: String(adminPort),
        STORAGE_DRIVER: 'remote',
        STORAGE_API_URL: storageApiUrl,
        STORAGE_API_TOKEN: secrets.storageApiToken,
        UDP_CONNECTION_ID_SECRET: secrets.udpConnectionIdSecret,
      },
    });
    gateways.push({ container, port, adminPort });
  }
  await Promise.all([
    ready('gc-worker /readyz', `http://127.0.0.1:${gcAdminPort}/readyz`, gcWorker),
    ...gateways.map((g) =>
      ready(
        `${g.container.spec.name} /readyz`,
        `http://127.0.0.1:${g.adminPort}/readyz`,
        g.container,
      ),
    ),
  ]);

  return {
    masterName,
    redis,
    sentinels,
    sentinelPassword: secrets.sentinelPassword,
    sentinelTiming: {
      downAfterMs: opts.sentinelDownAfterMs,
      failoverTimeoutMs: opts.sentinelFailoverTimeoutMs,
    },
    postgres,
    storageApi,
    gcWorker,
    gateways: [gateways[0]!, gateways[1]!],
    async redisPrimary() {
      const port = await sentinelPrimary(
        sentinels.map((s) => s.port),
        secrets.sentinelPassword,
        masterName,
      );
      return redis.find((r) => r.port === port);
    },
    stopOrder: () => [
      gateways.map((g) => g.container),
      [gcWorker],
      [storageApi],
      sentinels.map((s) => s.container),
      redis.map((r) => r.container),
      [postgres],
    ],
    removeStateDir: () => rmSync(stateDir, { recursive: true, force: true }),
  };
}
