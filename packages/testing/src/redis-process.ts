// One redis-server or redis-sentinel process for tests, started from the
// production config (deploy/redis) with only ports, paths, passwords and
// test timings overridden, and the steps that wait for replicas and sentinels
// to find each other. redis.ts builds servers, Sentinel sets, clusters and
// rings from these.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor as poll } from './processes.ts';

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

/** redis-cli against 127.0.0.1:`port`; resolves its trimmed stdout. */
export function redisCli(
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

/** Polls `check` (errors count as "not yet") every `stepMs` until it holds, or throws HARNESS_ERR_TIMEOUT after `timeoutMs`. */
export function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
  stepMs = 25,
): Promise<void> {
  return poll(what, () => check().catch(() => false), timeoutMs, stepMs);
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
        return (await redisCli(this.port, this.password, ['PING'], 1000)) === 'PONG';
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
    return redisCli(this.port, this.password, args);
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
