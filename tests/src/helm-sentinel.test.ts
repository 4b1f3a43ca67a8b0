// The redis.conf and sentinel.conf that helm/shoal puts in its ConfigMap are
// started with the real redis-server and redis-sentinel: one primary, two
// replicas, three sentinels, as the StatefulSet runs them. Only what differs
// between a pod and loopback is changed (ports, dirs, announce addresses, the
// monitored address); the primary is killed and the set must fail over, and
// the pods' init script (init.sh in the same ConfigMap) brings the old primary
// back as a replica.
//
// The drills run in turn on one set, each after the failovers of the ones
// before, as an operator's set lives through them. What they wait for is
// bounded by the Sentinel timings below with margin, never slept out. The
// primary's preStop once asked for a second failover 10 s after the first
// (the sentinels demote an old primary only at an INFO about 10 s after the
// switch), moving the primary again while the replicas were still resyncing
// from the first one: under load the later drills then found replicas not
// back online in time. It now asks only while the sentinels name its server
// and follows the promoted one at once (docs/kubernetes.md, "Redis failover").
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freeTcpPort } from '@shoal/testing/ports';
import {
  RedisProcess,
  infoField,
  redisServerArgv,
  sentinelArgv,
  startReplicas,
  startSentinels,
  waitFor,
} from '@shoal/testing/redis';
import { containerEnv, ensureHelm, find, renderChart, type K8sObject } from './harness/helm.ts';

const MASTER = 'shoal';
// Sentinel timings are values: faster ones keep the test short without
// touching the rendered files. With down-after at 1 s, a loaded machine let a
// new primary's first PING go unanswered that long right after a promotion,
// and a sentinel failed the set over again.
const DOWN_AFTER_MS = 4000;
const FAILOVER_TIMEOUT_MS = 10_000;
// A sentinel that lost an election (split votes) tries again only after
// twice failover-timeout: a failover is due within down-after plus that,
// plus margin for the promotion on a loaded machine.
const FAILOVER_BOUND_MS = DOWN_AFTER_MS + 2 * FAILOVER_TIMEOUT_MS + 15_000;
// A replica pointed at a new primary syncs (partial, or full from a small
// data set) well within this on a loaded 2-core machine.
const SYNC_BOUND_MS = 30_000;
// A crash drill: the failover, then the restarted server's sync and checks.
const RESTART_DRILL_MS = FAILOVER_BOUND_MS + 2 * SYNC_BOUND_MS;

function field(reply: string, key: string): string | undefined {
  const lines = reply.split('\n');
  const i = lines.indexOf(key);
  return i < 0 ? undefined : lines[i + 1];
}

/** Runs the ConfigMap's init.sh (the StatefulSet's init container) with `env`; returns the files it wrote. */
function runInit(
  dir: string,
  data: Record<string, string>,
  env: Record<string, string>,
): Promise<{ redis: string; sentinel: string }> {
  return startInit(dir, data, env).done;
}

/** Starts init.sh without waiting: its output so far, and its files once it exits. */
function startInit(
  dir: string,
  data: Record<string, string>,
  env: Record<string, string>,
): { output: () => string; done: Promise<{ redis: string; sentinel: string }> } {
  let out = '';
  const done = (async () => {
    const config = join(dir, 'config');
    const conf = join(dir, 'conf');
    await mkdir(config, { recursive: true });
    await mkdir(conf, { recursive: true });
    for (const f of ['redis.conf', 'sentinel.conf', 'init.sh'])
      await writeFile(join(config, f), data[f] ?? '');
    const child = spawn('sh', [join(config, 'init.sh')], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        CONFIG_DIR: config,
        CONF_DIR: conf,
        POD_NAMESPACE: 'tracker',
        ...env,
      },
      timeout: 90_000,
    });
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    if (code !== 0) throw new Error(`init.sh exited ${code}: ${out}`);
    return {
      redis: await readFile(join(conf, 'redis.conf'), 'utf8'),
      sentinel: await readFile(join(conf, 'sentinel.conf'), 'utf8'),
    };
  })();
  return { output: () => out, done };
}

/** Runs the ConfigMap's prestop.sh (the redis and sentinel containers' preStop hook); returns its output. */
async function runPreStop(
  data: Record<string, string>,
  dir: string,
  env: Record<string, string>,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const script = join(dir, 'prestop.sh');
  await writeFile(script, data['prestop.sh'] ?? '');
  return new Promise((resolvePromise, reject) => {
    execFile(
      'sh',
      [script],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, timeout: 60_000 },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`prestop.sh failed: ${stdout}${stderr}`, { cause: err }))
          : resolvePromise(stdout),
    );
  });
}

describe('the Redis Sentinel set the chart renders', () => {
  let root: string;
  let data: Record<string, string>;
  const servers: RedisProcess[] = [];
  const sentinels: RedisProcess[] = [];
  let redisPassword: string;
  let sentinelPassword: string;
  let sentinelConf: string;
  let redisConf: string;

  /**
   * A pod's redis container: `redis-server /conf/redis.conf --requirepass $P
   * --masterauth $P`, the init container having appended replica-announce-ip
   * (here loopback) and, on a replica, replicaof.
   */
  const podRedis = (conf: string, port: number, dir: string, primaryPort?: number): RedisProcess =>
    new RedisProcess({
      binary: 'redis-server',
      argv: redisServerArgv({
        conf,
        port,
        dir,
        password: redisPassword,
        replicaOf: primaryPort === undefined ? undefined : { host: '127.0.0.1', port: primaryPort },
        extra: ['--replica-announce-ip', '127.0.0.1'],
      }),
      port,
      dir,
      password: redisPassword,
    });

  /** Runs the preStop hook of `server`'s pod, its sentinel being the first one. */
  const preStopOn = (server: RedisProcess, dir: string): Promise<string> =>
    runPreStop(data, dir, {
      REDIS_PORT: String(server.port),
      SENTINEL_PORT: String(sentinels[0]!.port),
      REDIS_PASSWORD: redisPassword,
      REDIS_SENTINEL_PASSWORD: sentinelPassword,
      TIMEOUT_SECONDS: '30',
    });

  /** Waits until `server` holds `key` = `value`: the write reached it. */
  const holds = (what: string, server: RedisProcess, key: string, value: string): Promise<void> =>
    waitFor(what, async () => (await server.cli('GET', key)) === value, SYNC_BOUND_MS, 100);

  beforeAll(async () => {
    await ensureHelm();
    const objects = await renderChart(4, {
      set: {
        'redis.sentinel.downAfterMilliseconds': String(DOWN_AFTER_MS),
        'redis.sentinel.failoverTimeoutMilliseconds': String(FAILOVER_TIMEOUT_MS),
      },
    });
    const cm = find(objects, 'ConfigMap', 'shoal-redis') as K8sObject & {
      data: Record<string, string>;
    };
    data = cm.data;
    redisConf = cm.data['redis.conf'] ?? '';
    sentinelConf = cm.data['sentinel.conf'] ?? '';
    const sts = find(objects, 'StatefulSet', 'shoal-redis');
    const env = containerEnv(objects, sts, 'sentinel');
    redisPassword = env.REDIS_PASSWORD ?? '';
    sentinelPassword = env.REDIS_SENTINEL_PASSWORD ?? '';
    expect(redisPassword.length).toBeGreaterThanOrEqual(16);

    root = await mkdtemp(join(tmpdir(), 'shoal-helm-sentinel-'));
    let primaryPort = 0;
    for (let i = 0; i < 3; i++) {
      const dir = join(root, `redis-${i}`);
      await mkdir(dir);
      const conf = join(dir, 'redis.conf');
      await writeFile(conf, redisConf);
      const port = await freeTcpPort();
      if (i === 0) primaryPort = port;
      servers.push(podRedis(conf, port, dir, i === 0 ? undefined : primaryPort));
    }
    await servers[0]!.start();
    await startReplicas(servers.slice(1), SYNC_BOUND_MS);

    const monitor = /^(sentinel monitor \S+ )\S+ \d+( \d+)$/m;
    expect(sentinelConf).toMatch(monitor);
    for (let i = 0; i < 3; i++) {
      const dir = join(root, `sentinel-${i}`);
      await mkdir(dir);
      const conf = join(dir, 'sentinel.conf');
      // What the init container does: point the monitor line at the primary, announce self.
      await writeFile(
        conf,
        `${sentinelConf.replace(monitor, `$1127.0.0.1 ${primaryPort}$2`)}sentinel announce-ip 127.0.0.1\n`,
      );
      const port = await freeTcpPort();
      const argv = sentinelArgv({
        conf,
        port,
        dir,
        masterName: MASTER,
        password: redisPassword,
        sentinelPassword,
      });
      sentinels.push(
        new RedisProcess({ binary: 'redis-sentinel', argv, port, dir, password: sentinelPassword }),
      );
    }
    await startSentinels(sentinels, MASTER, 2, SYNC_BOUND_MS);
  }, 120_000);

  // A failed drill shows what the sentinels did, for a failure seen once in a full run.
  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const [i, s] of sentinels.entries())
      console.error(`sentinel-${i} log:\n${s.output.slice(-3000)}`);
  });

  afterAll(async () => {
    await Promise.all([...sentinels, ...servers].map((p) => p.kill()));
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('monitors with the quorum and timings from values', async () => {
    const m = await sentinels[0]!.cli('SENTINEL', 'MASTER', MASTER);
    expect(field(m, 'quorum')).toBe('2');
    expect(field(m, 'down-after-milliseconds')).toBe(String(DOWN_AFTER_MS));
    expect(field(m, 'failover-timeout')).toBe(String(FAILOVER_TIMEOUT_MS));
    expect(infoField(await servers[0]!.cli('INFO', 'persistence'), 'aof_enabled')).toBe('1');
  });

  it('promotes a replica when the primary dies, keeping the data written before', async () => {
    const old = servers[0]!;
    expect(await old.cli('SET', 'shoal:{helm}:d', '42')).toBe('OK');
    await old.cli('WAIT', '2', '5000');
    await old.kill();

    let promoted: RedisProcess | undefined;
    await waitFor(
      'failover',
      async () => {
        const [host, port] = (
          await sentinels[1]!.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER)
        ).split('\n');
        const candidate = servers.find((s) => s.host === host && String(s.port) === port);
        if (!candidate || candidate === old) return false;
        if (infoField(await candidate.cli('INFO', 'replication'), 'role') !== 'master')
          return false;
        promoted = candidate;
        return true;
      },
      FAILOVER_BOUND_MS,
    );
    expect(promoted).toBeDefined();
    expect(await promoted!.cli('GET', 'shoal:{helm}:d')).toBe('42');
    expect(await promoted!.cli('SET', 'shoal:{helm}:after', '1')).toBe('OK');
    const other = servers.find((s) => s !== old && s !== promoted)!;
    await holds('the other replica follows', other, 'shoal:{helm}:after', '1');

    // The old primary's pod restarts: its init container asks the sentinels
    // and it comes back as a replica of the promoted server, not as a second primary.
    const initDir = join(root, 'init-rejoin');
    const files = await runInit(initDir, data, {
      SELF: 'shoal-redis-0.shoal-redis-headless.tracker.svc',
      PEERS: sentinels.map((x) => `${x.host}:${x.port}`).join(' '),
      REDIS_SENTINEL_PASSWORD: sentinelPassword,
    });
    expect(files.redis).toMatch(new RegExp(`^replicaof 127\\.0\\.0\\.1 ${promoted!.port}$`, 'm'));
    expect(files.sentinel).toMatch(
      new RegExp(`^sentinel monitor ${MASTER} 127\\.0\\.0\\.1 ${promoted!.port} 2$`, 'm'),
    );
    const rejoined = podRedis(join(initDir, 'conf', 'redis.conf'), old.port, old.dir);
    servers.push(rejoined);
    await rejoined.start();
    await holds('the old primary rejoins as a replica', rejoined, 'shoal:{helm}:after', '1');
    expect(infoField(await rejoined.cli('INFO', 'replication'), 'role')).toBe('slave');
  }, 90_000);

  /** The server the sentinels name as primary (the newest process on that port). */
  /**
   * The primary once the set has settled: every running sentinel names the
   * same server, none is still in a failover, and that server says it is the
   * master. Each drill starts from here. A sentinel that led the previous
   * drill's failover finishes reconfiguring seconds after the replicas follow,
   * and until then answers with the server it promoted: a drill that killed
   * that server at once met a sentinel naming a dead primary for a whole
   * failover-timeout (seen in a clean-clone run).
   */
  async function currentPrimary(): Promise<RedisProcess> {
    let found: RedisProcess | undefined;
    await waitFor(
      'the sentinels to agree on one primary, with no failover in progress',
      async () => {
        const views = await Promise.all(
          sentinels
            .filter((x) => x.running)
            .map(async (x) => ({
              addr: (await x.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER))
                .split('\n')
                .slice(0, 2)
                .join(':'),
              flags: field(await x.cli('SENTINEL', 'MASTER', MASTER), 'flags') ?? '',
            })),
        ).catch(() => []);
        const addrs = new Set(views.map((v) => v.addr));
        if (views.length === 0 || addrs.size !== 1) return false;
        if (views.some((v) => v.flags.includes('failover_in_progress'))) return false;
        const [host, port] = [...addrs][0]!.split(':');
        found = servers.findLast((x) => x.host === host && String(x.port) === port && x.running);
        return found !== undefined && (await role(found).catch(() => undefined)) === 'master';
      },
      FAILOVER_BOUND_MS,
      200,
    );
    return found!;
  }

  const role = async (s: RedisProcess): Promise<string | undefined> =>
    (await s.cli('ROLE')).split('\n')[0];

  /** How many replicas `primary` lists as online (synced and streaming). */
  async function onlineReplicas(primary: RedisProcess): Promise<number> {
    const info = await primary.cli('INFO', 'replication');
    const n = Number(infoField(info, 'connected_slaves') ?? '0');
    return Array.from({ length: n }, (_, i) => infoField(info, `slave${i}`)).filter((v) =>
      v?.includes('state=online'),
    ).length;
  }

  /** Writes on the primary once every other live server follows it, and waits until all have the write. */
  async function writeReplicated(primary: RedisProcess, key: string, value: string): Promise<void> {
    const replicas = servers.filter((s) => s.running && s !== primary).length;
    await waitFor(
      `${replicas} replicas online`,
      async () => (await onlineReplicas(primary)) === replicas,
      SYNC_BOUND_MS,
      100,
    );
    expect(await primary.cli('SET', key, value)).toBe('OK');
    expect(Number(await primary.cli('WAIT', String(replicas), '5000'))).toBe(replicas);
  }

  it("a replica's preStop returns at once and moves nothing", async () => {
    const primary = await currentPrimary();
    const replica = servers.findLast(
      (s) => s !== primary && String(s.port) !== String(primary.port),
    )!;
    expect(await role(replica)).toBe('slave');
    const out = await preStopOn(replica, join(root, 'prestop-replica'));
    expect(out).toContain('not the primary');
    expect(await currentPrimary()).toBe(primary);
  });

  it("the primary's preStop fails over once and returns once it is a replica, the data on the new primary and both replicas following it", async () => {
    const primary = await currentPrimary();
    expect(await role(primary)).toBe('master');
    await writeReplicated(primary, 'shoal:{helm}:planned', '7');
    const out = await preStopOn(primary, join(root, 'prestop-primary'));
    expect(out).toContain('now a replica');
    // Asked once: asking again after the sentinels had named another server
    // failed the set over a second time.
    expect(out.match(/SENTINEL FAILOVER/g)).toHaveLength(1);
    // Returned only once this server was a replica: Redis may now stop.
    expect(await role(primary)).toBe('slave');
    let promoted: RedisProcess | undefined;
    await waitFor(
      'every sentinel names the new primary',
      async () => {
        const next = await currentPrimary();
        if (next === primary || (await role(next)) !== 'master') return false;
        for (const sentinel of sentinels) {
          const [, port] = (
            await sentinel.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER)
          ).split('\n');
          if (port !== String(next.port)) return false;
        }
        promoted = next;
        return true;
      },
      SYNC_BOUND_MS,
      100,
    );
    expect(await promoted!.cli('GET', 'shoal:{helm}:planned')).toBe('7');
    // The old primary and the other replica both follow the promoted server.
    await waitFor(
      'both replicas online on the new primary',
      async () => (await onlineReplicas(promoted!)) === 2,
      SYNC_BOUND_MS,
      100,
    );
  }, 90_000);

  it(
    'a primary restarted empty waits for the sentinels to promote a replica and follows it',
    async () => {
      const primary = await currentPrimary();
      await writeReplicated(primary, 'shoal:{helm}:kept', '9');
      // The pod comes back (init container) while the sentinels still name it
      // the primary: init must not make it one again.
      const init = startInit(join(root, 'init-empty'), data, {
        SELF: primary.host,
        SELF_PORT: String(primary.port),
        SELF_SENTINEL: 'none',
        PEERS: sentinels.map((x) => `${x.host}:${x.port}`).join(' '),
        REDIS_SENTINEL_PASSWORD: sentinelPassword,
        WAIT_SECONDS: String(FAILOVER_BOUND_MS / 1000),
      });
      await waitFor(
        'init to see itself named as the primary',
        () => Promise.resolve(init.output().includes('still name this pod the primary; waiting')),
        SYNC_BOUND_MS,
        100,
      );
      // The old process is gone and its disk is empty.
      await primary.kill();
      const emptyDir = join(root, 'redis-empty');
      await mkdir(emptyDir);
      const files = await init.done;
      const follows = /^replicaof 127\.0\.0\.1 (\d+)$/m.exec(files.redis);
      expect(follows, files.redis).not.toBeNull();
      expect(follows![1]).not.toBe(String(primary.port));
      const promoted = servers.findLast((s) => String(s.port) === follows![1])!;
      expect(await role(promoted)).toBe('master');
      expect(await promoted.cli('GET', 'shoal:{helm}:kept')).toBe('9');

      const restarted = podRedis(
        join(root, 'init-empty', 'conf', 'redis.conf'),
        primary.port,
        emptyDir,
      );
      servers.push(restarted);
      await restarted.start();
      await holds(
        'the emptied server syncs from the new primary',
        restarted,
        'shoal:{helm}:kept',
        '9',
      );
      expect(await role(restarted)).toBe('slave');
      // The data survived on the primary: nothing synced an empty set over it.
      expect(await promoted.cli('GET', 'shoal:{helm}:kept')).toBe('9');
    },
    RESTART_DRILL_MS,
  );

  it('a primary the sentinels no longer name follows theirs in its preStop instead of failing theirs over', async () => {
    const primary = await currentPrimary();
    // A primary cut off from the sentinels that kept a replica, its pod now
    // stopped: a server with a replica of its own that the sentinels do not
    // name. The old preStop asked them to fail over: their primary.
    const dir = join(root, 'stale');
    const staleDir = join(dir, 'primary');
    const followerDir = join(dir, 'replica');
    await mkdir(staleDir, { recursive: true });
    await mkdir(followerDir, { recursive: true });
    await writeFile(join(staleDir, 'redis.conf'), redisConf);
    await writeFile(join(followerDir, 'redis.conf'), redisConf);
    const stale = podRedis(join(staleDir, 'redis.conf'), await freeTcpPort(), staleDir);
    const follower = podRedis(
      join(followerDir, 'redis.conf'),
      await freeTcpPort(),
      followerDir,
      stale.port,
    );
    try {
      await stale.start();
      await follower.start();
      await waitFor(
        'the stale primary has its replica',
        async () => (await onlineReplicas(stale)) === 1,
        SYNC_BOUND_MS,
        100,
      );
      const out = await preStopOn(stale, join(dir, 'hook'));
      expect(out).not.toContain('SENTINEL FAILOVER');
      expect(out).toContain(
        `the sentinels name 127.0.0.1:${primary.port} the primary; following it`,
      );
      const info = await stale.cli('INFO', 'replication');
      expect(infoField(info, 'role')).toBe('slave');
      expect(infoField(info, 'master_port')).toBe(String(primary.port));
      expect(await currentPrimary()).toBe(primary);
      expect(await role(primary)).toBe('master');
    } finally {
      await Promise.all([stale.kill(), follower.kill()]);
    }
  }, 60_000);

  it('starts a fresh set with pod 0 as primary and the others following it', async () => {
    const unreachable = `127.0.0.1:${await freeTcpPort()}`;
    const first = 'shoal-redis-0.shoal-redis-headless.tracker.svc';
    const pod0 = await runInit(join(root, 'init-0'), data, {
      SELF: first,
      PEERS: unreachable,
      REDIS_SENTINEL_PASSWORD: 'x',
    });
    expect(pod0.redis).not.toMatch(/^replicaof /m);
    expect(pod0.redis).toMatch(
      new RegExp(`^replica-announce-ip ${first.replaceAll('.', '\\.')}$`, 'm'),
    );
    expect(pod0.sentinel).toMatch(
      new RegExp(`^sentinel monitor ${MASTER} ${first.replaceAll('.', '\\.')} 6379 2$`, 'm'),
    );
    const pod1 = await runInit(join(root, 'init-1'), data, {
      SELF: 'shoal-redis-1.shoal-redis-headless.tracker.svc',
      PEERS: unreachable,
      REDIS_SENTINEL_PASSWORD: 'x',
    });
    expect(pod1.redis).toMatch(new RegExp(`^replicaof ${first.replaceAll('.', '\\.')} 6379$`, 'm'));
  });
});

describe('the Redis preStop on a primary that has no replica (redis.replicas: 1)', () => {
  it('returns at once instead of waiting out its timeout for a failover that cannot happen', async () => {
    await ensureHelm();
    const objects = await renderChart(4, { set: { 'redis.auth.password': 'alone-password-1' } });
    const cm = find(objects, 'ConfigMap', 'shoal-redis') as K8sObject & {
      data: Record<string, string>;
    };
    const dir = await mkdtemp(join(tmpdir(), 'shoal-helm-prestop-'));
    const port = await freeTcpPort();
    const alone = new RedisProcess({
      binary: 'redis-server',
      argv: [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--requirepass',
        'alone-password-1',
      ],
      port,
      dir,
      password: 'alone-password-1',
    });
    try {
      await alone.start();
      const out = await runPreStop(cm.data, join(dir, 'hook'), {
        REDIS_PORT: String(port),
        SENTINEL_PORT: String(await freeTcpPort()),
        REDIS_PASSWORD: 'alone-password-1',
        REDIS_SENTINEL_PASSWORD: 'unused',
        TIMEOUT_SECONDS: '600',
      });
      expect(out).toContain('nothing to hand over to');
      expect((await alone.cli('ROLE')).split('\n')[0]).toBe('master');
    } finally {
      await alone.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
