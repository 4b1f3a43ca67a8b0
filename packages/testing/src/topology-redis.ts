// The Redis Sentinel part of the local topology (topology.ts): a primary and
// two replicas from deploy/redis/redis.conf, three sentinels from
// deploy/redis/sentinel.conf with the monitor line pointed here, each a
// process-group server that restarts on its port (a Redis server as a replica
// of the primary the sentinels name, a sentinel from its rewritten file).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freeTcpPort } from './ports.ts';
import {
  REPO_ROOT,
  controlled,
  spawnLogged,
  waitUntil,
  type ServerProcess,
  type SpawnSpec,
  type TopologyProcess,
} from './process-group.ts';
import { redisCli, redisServerArgv, sentinelArgv } from './redis.ts';

const REDIS_DIR = join(REPO_ROOT, 'deploy/redis');

/** redis-cli with a shorter timeout than the test harness's: a restart loop asks often. */
function cli(port: number, password: string, args: readonly string[]): Promise<string> {
  return redisCli(port, password, args, 3000);
}

export interface TopologyRedisOptions {
  stateDir: string;
  logDir: string;
  detached: boolean;
  masterName: string;
  redisPassword: string;
  sentinelPassword: string;
  /** Sentinel down-after-milliseconds; deploy/redis's when undefined. */
  sentinelDownAfterMs: number | undefined;
  /** Sentinel failover-timeout; deploy/redis's when undefined. */
  sentinelFailoverTimeoutMs?: number | undefined;
  /** Called with each process as it starts, so a failure later stops it. */
  track: <T extends TopologyProcess>(p: T) => T;
}

export interface TopologyRedis {
  redisPorts: number[];
  /** redis-0..2 in start order; redis-0 is the primary until a failover. */
  redisServers: ServerProcess[];
  sentinelPorts: number[];
  sentinels: ServerProcess[];
}

/** The primary's port as the sentinels name it: the first one that answers; undefined when none does. */
export async function sentinelPrimary(
  sentinelPorts: readonly number[],
  password: string,
  masterName: string,
): Promise<number | undefined> {
  for (const port of sentinelPorts) {
    try {
      const reply = await cli(port, password, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName]);
      const primary = Number(reply.split('\n')[1]);
      if (Number.isInteger(primary) && primary > 0) return primary;
    } catch {
      // down or restarting: ask the next one
    }
  }
  return undefined;
}

/** Whether the sentinel on `port` knows both replicas and both other sentinels (a failover can happen). */
export async function sentinelKnowsAll(
  port: number,
  sentinelPassword: string,
  masterName: string,
): Promise<boolean> {
  const fields = (await cli(port, sentinelPassword, ['SENTINEL', 'MASTER', masterName])).split(
    '\n',
  );
  const get = (k: string): string | undefined => fields[fields.indexOf(k) + 1];
  return Number(get('num-slaves')) === 2 && Number(get('num-other-sentinels')) === 2;
}

/** deploy/redis/sentinel.conf watching `masterName` at 127.0.0.1:`primaryPort` (quorum 2), bound to loopback. */
export function loopbackSentinelConf(masterName: string, primaryPort: number): string {
  const template = readFileSync(join(REDIS_DIR, 'sentinel.conf'), 'utf8');
  const monitor = /^sentinel monitor \S+ \S+ \d+ \d+$/m;
  if (!monitor.test(template))
    throw new Error('deploy/redis/sentinel.conf has no "sentinel monitor" line');
  return template
    .replace(monitor, `sentinel monitor ${masterName} 127.0.0.1 ${primaryPort} 2`)
    .replace(/^bind .*$/m, 'bind 127.0.0.1');
}

/** Starts the servers, then the sentinels, and resolves once every sentinel knows the others and both replicas. */
export async function startTopologyRedis(opts: TopologyRedisOptions): Promise<TopologyRedis> {
  const { stateDir, logDir, detached, masterName, redisPassword, sentinelPassword, track } = opts;
  const redisPorts: number[] = [];
  const redisServers: ServerProcess[] = [];
  // Filled in below; a restarted Redis server asks them for the primary.
  const sentinelPorts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = join(stateDir, `redis-${i}`);
    mkdirSync(dir, { recursive: true });
    // A copy: Sentinel makes the servers CONFIG REWRITE their file on failover.
    const conf = join(dir, 'redis.conf');
    copyFileSync(join(REDIS_DIR, 'redis.conf'), conf);
    const port = await freeTcpPort();
    redisPorts.push(port);
    const launch = async (replicaOf: number | undefined): Promise<TopologyProcess> => {
      const p = spawnLogged({
        name: `redis-${i}`,
        command: 'redis-server',
        args: redisServerArgv({
          conf,
          port,
          dir,
          password: redisPassword,
          replicaOf: replicaOf === undefined ? undefined : { host: '127.0.0.1', port: replicaOf },
          extra: ['--daemonize', 'no', '--logfile', ''],
        }),
        logDir,
        detached,
      });
      await waitUntil(
        `redis-${i}`,
        p,
        async () => (await cli(port, redisPassword, ['PING'])) === 'PONG',
      );
      return p;
    };
    const first = await launch(i === 0 ? undefined : redisPorts[0]);
    redisServers.push(
      track(
        controlled(first, port, detached, async () => {
          const primary = await sentinelPrimary(sentinelPorts, sentinelPassword, masterName);
          return launch(primary === port ? undefined : (primary ?? redisPorts[0]));
        }),
      ),
    );
  }
  for (const [i, port] of redisPorts.entries()) {
    if (i === 0) continue;
    await waitUntil(`redis-${i} to sync`, redisServers[i]!, async () =>
      (await cli(port, redisPassword, ['INFO', 'replication'])).includes('master_link_status:up'),
    );
  }

  // --- 3 sentinels, from deploy/redis/sentinel.conf with the monitor line pointed here.
  const sentinelConf = loopbackSentinelConf(masterName, redisPorts[0]!);
  const sentinels: ServerProcess[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = join(stateDir, `sentinel-${i}`);
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, sentinelConf);
    const port = await freeTcpPort();
    sentinelPorts.push(port);
    const spec: SpawnSpec = {
      name: `sentinel-${i}`,
      command: 'redis-sentinel',
      args: sentinelArgv({
        conf,
        port,
        dir,
        masterName,
        password: redisPassword,
        sentinelPassword: sentinelPassword,
        extra: [
          '--daemonize',
          'no',
          '--logfile',
          '',
          ...(opts.sentinelDownAfterMs === undefined
            ? []
            : [
                '--sentinel',
                'down-after-milliseconds',
                masterName,
                String(opts.sentinelDownAfterMs),
              ]),
          ...(opts.sentinelFailoverTimeoutMs === undefined
            ? []
            : [
                '--sentinel',
                'failover-timeout',
                masterName,
                String(opts.sentinelFailoverTimeoutMs),
              ]),
        ],
      }),
      logDir,
      detached,
    };
    sentinels.push(
      track(
        controlled(spawnLogged(spec), port, detached, async () => {
          // Its file, rewritten by Sentinel, names the current primary, replicas and peers.
          const p = spawnLogged(spec);
          await waitUntil(
            `sentinel-${i}`,
            p,
            async () => (await cli(port, sentinelPassword, ['PING'])) === 'PONG',
          );
          return p;
        }),
      ),
    );
  }
  // Every sentinel must know the replicas and the other sentinels before a
  // failover can happen (hello messages every 2 s).
  await Promise.all(
    sentinels.map((s, i) =>
      waitUntil(`sentinel-${i} discovery`, s, () =>
        sentinelKnowsAll(sentinelPorts[i]!, sentinelPassword, masterName),
      ),
    ),
  );
  return { redisPorts, redisServers, sentinelPorts, sentinels };
}
