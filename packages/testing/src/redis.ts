// Real Redis servers for tests: standalone, a Sentinel set, a Cluster and a
// ring of independent shards, started from the machine's Debian binaries
// (redis-server, redis-sentinel, redis-cli) on free loopback ports in temp
// dirs. Every server starts from deploy/redis/redis.conf or sentinel.conf
// with only ports, paths, passwords and test timings overridden, so the
// production files are proven to be accepted by the real server.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeTcpPort } from './ports.ts';

const DEPLOY_DIR = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../deploy/redis');
export const REDIS_CONF = join(DEPLOY_DIR, 'redis.conf');
export const SENTINEL_CONF = join(DEPLOY_DIR, 'sentinel.conf');

/** The data password every harness server uses (requirepass + masterauth). */
export const TEST_REDIS_PASSWORD = 'shoal-test-password';
/** Sentinels get their own password, as production does (REDIS_SENTINEL_PASSWORD). */
export const TEST_SENTINEL_PASSWORD = 'shoal-test-sentinel-password';

export interface HostPort {
  host: string;
  port: number;
}

// Safety net: a test that forgets afterAll (or a crashed worker) must not
// leave servers behind. Normal teardown goes through close().
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function cli(
  port: number,
  password: string | undefined,
  args: readonly string[],
  timeoutMs = 5000,
): Promise<string> {
  const auth = password === undefined ? [] : ['--no-auth-warning', '-a', password];
  return new Promise((resolvePromise, reject) => {
    execFile(
      'redis-cli',
      ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args],
      { timeout: timeoutMs },
      (err, stdout) => {
        if (err)
          reject(new Error(`redis-cli ${args.join(' ')} failed: ${err.message}`, { cause: err }));
        else resolvePromise(stdout.trim());
      },
    );
  });
}

/** Polls `check` (errors count as "not yet") every `stepMs` until it holds, or throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
  stepMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** One `field:value` line of an INFO reply. */
export function infoField(info: string, field: string): string | undefined {
  const line = info.split(/\r?\n/).find((l) => l.startsWith(`${field}:`));
  return line?.slice(field.length + 1).trim();
}

/** The config file, then a loopback address, a port and a working dir. */
function loopbackArgv(conf: string, port: number, dir: string): string[] {
  return [conf, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir];
}

/**
 * redis-server's command line: the config file, then what a test changes
 * (loopback address, port, dir, passwords, the primary to follow), then
 * `extra` directives (a later one wins).
 */
export function redisServerArgv(opts: {
  conf: string;
  port: number;
  dir: string;
  /** requirepass + masterauth; undefined for none. */
  password: string | undefined;
  replicaOf?: HostPort | undefined;
  extra?: readonly string[];
}): string[] {
  return [
    ...loopbackArgv(opts.conf, opts.port, opts.dir),
    ...(opts.password === undefined
      ? []
      : ['--requirepass', opts.password, '--masterauth', opts.password]),
    ...(opts.replicaOf ? ['--replicaof', opts.replicaOf.host, String(opts.replicaOf.port)] : []),
    ...(opts.extra ?? []),
  ];
}

/** redis-sentinel's command line, with the passwords production passes the same way. */
export function sentinelArgv(opts: {
  conf: string;
  port: number;
  dir: string;
  masterName: string;
  /** The data servers' password (auth-pass). */
  password: string;
  sentinelPassword: string;
  extra?: readonly string[];
}): string[] {
  return [
    ...loopbackArgv(opts.conf, opts.port, opts.dir),
    '--requirepass',
    opts.sentinelPassword,
    '--sentinel',
    'auth-pass',
    opts.masterName,
    opts.password,
    '--sentinel',
    'sentinel-pass',
    opts.sentinelPassword,
    ...(opts.extra ?? []),
  ];
}

/** One redis-server or redis-sentinel process that can be killed and started again on the same port and dir. */
export class RedisProcess {
  readonly host = '127.0.0.1';
  readonly port: number;
  readonly dir: string;
  readonly password: string | undefined;
  private readonly binary: string;
  private readonly argv: readonly string[];
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private log = '';

  constructor(opts: {
    binary: string;
    argv: readonly string[];
    port: number;
    dir: string;
    password: string | undefined;
  }) {
    this.binary = opts.binary;
    this.argv = opts.argv;
    this.port = opts.port;
    this.dir = opts.dir;
    this.password = opts.password;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The end of its stdout and stderr (Redis logs there), for assertion messages. */
  get output(): string {
    return this.log;
  }

  /** Starts the process and resolves once it answers PING. */
  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn(this.binary, [...this.argv], {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    live.add(child);
    const append = (b: Buffer): void => {
      this.log = (this.log + b.toString()).slice(-8000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.exited = new Promise((r) =>
      child.once('exit', () => {
        live.delete(child);
        if (this.child === child) this.child = undefined;
        r();
      }),
    );
    try {
      await waitFor(`${this.binary} on ${this.port}`, async () => {
        if (!this.child) throw new Error(`${this.binary} exited:\n${this.log}`);
        return (await cli(this.port, this.password, ['PING'], 1000)) === 'PONG';
      });
    } catch (err) {
      await this.kill();
      throw new Error(`${this.binary} on ${this.port} did not start: ${String(err)}\n${this.log}`, {
        cause: err,
      });
    }
  }

  /** SIGKILL: the crash case (no shutdown save). */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** SIGTERM: a clean shutdown (AOF flushed). */
  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  /** SIGSTOP / SIGCONT: a server that hangs without closing its sockets. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  cli(...args: string[]): Promise<string> {
    return cli(this.port, this.password, args);
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGCONT');
    child.kill(sig);
    await this.exited;
  }
}

/** Starts `replicas` and resolves once each one's link to its primary is up. */
export async function startReplicas(
  replicas: readonly RedisProcess[],
  timeoutMs = 15_000,
): Promise<void> {
  await Promise.all(replicas.map((s) => s.start()));
  await Promise.all(
    replicas.map((s) =>
      waitFor(
        'replica sync',
        async () => infoField(await s.cli('INFO', 'replication'), 'master_link_status') === 'up',
        timeoutMs,
      ),
    ),
  );
}

/**
 * Starts `sentinels` and resolves once each knows `replicas` replicas of
 * `masterName` and every other sentinel: a failover needs them all (hello
 * messages every 2 s), so waiting here keeps tests honest.
 */
export async function startSentinels(
  sentinels: readonly RedisProcess[],
  masterName: string,
  replicas: number,
  timeoutMs: number,
): Promise<void> {
  await Promise.all(sentinels.map((s) => s.start()));
  await Promise.all(
    sentinels.map((s) =>
      waitFor(
        'sentinel discovery',
        async () => {
          const fields = (await s.cli('SENTINEL', 'MASTER', masterName)).split('\n');
          const get = (k: string): string | undefined => fields[fields.indexOf(k) + 1];
          return (
            Number(get('num-slaves')) === replicas &&
            Number(get('num-other-sentinels')) === sentinels.length - 1
          );
        },
        timeoutMs,
      ),
    ),
  );
}

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
          '10000',
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
    await startSentinels(sentinels, masterName, replicas, 20_000);
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
    await cli(
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

export interface FailoverOptions {
  /** One request (a driver call, or an HTTP/UDP announce to a gateway). Its rejection is an error. */
  announce: (i: number) => Promise<unknown>;
  /** The fault to inject, e.g. `() => set.killPrimary()`. */
  fail: () => Promise<unknown>;
  /** Requests in flight at once. Default 4. */
  concurrency?: number;
  /** Pause between requests of one worker, ms. Default 2. */
  pauseMs?: number;
  /** Load before the fault, ms. Default 1000. */
  warmupMs?: number;
  /** Recovered = this long of uninterrupted successes after the fault, ms. Default 1000. */
  steadyMs?: number;
  /** Give up this long after the fault, ms (the load always stops by then). */
  recoveryWindowMs: number;
  /** A request slower than this counts as a hang, ms. Default 5000. */
  hangMs?: number;
}

export interface FailoverReport {
  total: number;
  ok: number;
  errors: number;
  /** Errors by `err.code` ('timeout' for hangs, 'unknown' when uncoded). */
  errorsByCode: Record<string, number>;
  /** ms from the fault to the first success of the steady run, or undefined when never recovered. */
  recoveredAfterMs: number | undefined;
  maxLatencyMs: number;
}

/**
 * Runs steady load, injects a fault, and measures how long the system takes
 * to answer again and how many requests failed meanwhile. Transport-agnostic
 * so the same drill runs against a driver or a gateway.
 */
export async function measureFailover(opts: FailoverOptions): Promise<FailoverReport> {
  const concurrency = opts.concurrency ?? 4;
  const pauseMs = opts.pauseMs ?? 2;
  const steadyMs = opts.steadyMs ?? 1000;
  const hangMs = opts.hangMs ?? 5000;
  const report: FailoverReport = {
    total: 0,
    ok: 0,
    errors: 0,
    errorsByCode: {},
    recoveredAfterMs: undefined,
    maxLatencyMs: 0,
  };
  // Set once, when the fault is injected; read by the workers meanwhile.
  const fault: { at: number | undefined } = { at: undefined };
  let lastErrorAt = 0;
  let stopAt = Number.POSITIVE_INFINITY;
  let i = 0;
  const countError = (code: string): void => {
    report.errors++;
    report.errorsByCode[code] = (report.errorsByCode[code] ?? 0) + 1;
    lastErrorAt = performance.now();
  };
  const worker = async (): Promise<void> => {
    while (performance.now() < stopAt) {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          opts.announce(i++),
          new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(Object.assign(new Error('hang'), { code: 'timeout' })),
              hangMs,
            );
          }),
        ]);
        report.ok++;
        const failedAt = fault.at;
        if (
          failedAt !== undefined &&
          report.recoveredAfterMs === undefined &&
          started > lastErrorAt
        ) {
          // The steady run starts at the first success after the last error.
          if (performance.now() - Math.max(lastErrorAt, failedAt) >= steadyMs) {
            report.recoveredAfterMs = Math.max(lastErrorAt, failedAt) - failedAt;
            stopAt = Math.min(stopAt, performance.now());
          }
        }
      } catch (err) {
        const code = (err as { code?: unknown } | null)?.code;
        countError(typeof code === 'string' ? code : 'unknown');
      } finally {
        clearTimeout(timer);
        report.total++;
        report.maxLatencyMs = Math.max(report.maxLatencyMs, performance.now() - started);
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const workers = Array.from({ length: concurrency }, () => worker());
  await new Promise((r) => setTimeout(r, opts.warmupMs ?? 1000));
  fault.at = performance.now();
  stopAt = fault.at + opts.recoveryWindowMs;
  await opts.fail();
  await Promise.all(workers);
  return report;
}
