// The one launcher of Shoal's services (announce-gateway, storage-api,
// gc-worker) for tests, benchmarks and the local topology: runs
// services/<service>/src/main.ts with the given environment in its own process
// group, keeps its stdout and stderr (in memory, and in <logDir>/<name>.log
// when given), waits for its {"msg":"listening"} line and reads its ports
// there, stops it with SIGTERM and SIGKILL after a grace, crashes it and
// restarts it on the same ports. A test's services are killed when the test
// worker exits; detached ones (deploy/local/up.sh) outlive it and log to the
// file only. docs/testing.md.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from './errors.ts';
import {
  REPO_ROOT,
  isAlive,
  readTail,
  signal,
  spawnLogged,
  type TopologyProcess,
} from './process-group.ts';
import { baseEnv, sleep, spawnManaged, type ExitStatus, type ManagedProcess } from './processes.ts';

export { REPO_ROOT };

/**
 * Loopback and ports chosen by the kernel: the listening settings a test
 * gives every Shoal service, in-process (its config loader) or as a process.
 */
export const LOOPBACK_ENV: Readonly<Record<string, string>> = Object.freeze({
  HOST: '127.0.0.1',
  PORT: '0',
  ADMIN_HOST: '127.0.0.1',
  ADMIN_PORT: '0',
});

/** A test storage-api's settings: loopback, the gateways' token, peers and data on `driver`; `extra` last. */
export function storageApiEnv(
  token: string,
  driver: string,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return {
    ...LOOPBACK_ENV,
    STORAGE_API_TOKEN: token,
    PEER_STORE_DRIVER: driver,
    DATA_STORE_DRIVER: driver,
    ...extra,
  };
}

/**
 * SHOAL_TEST_UDP_BATCH_SYSCALLS (auto, on or off), when set, is every test
 * gateway's UDP_BATCH_SYSCALLS: `off` runs the suites' UDP on node:dgram, `on`
 * through the batching addon (docs/udp-batch.md, docs/testing.md). A test
 * that sets UDP_BATCH_SYSCALLS itself keeps its own.
 */
export function testUdpBatchEnv(): Record<string, string> {
  const mode = process.env['SHOAL_TEST_UDP_BATCH_SYSCALLS'];
  return mode === undefined || mode === '' ? {} : { UDP_BATCH_SYSCALLS: mode };
}

/** A test gateway's settings: loopback, port 0, info logs, one worker and a fresh UDP secret; `env` last. */
export function gatewayEnv(env: ServiceEnv = {}): Record<string, string> {
  return {
    ...LOOPBACK_ENV,
    LOG_LEVEL: 'info',
    // Used only when TLS_CERT_FILE is given.
    HTTPS_PORT: '0',
    UDP_CONNECTION_ID_SECRET: randomBytes(32).toString('hex'),
    // One thread, as before workers existed; a test of workers asks for them
    // (the default, the machine's cores, would multiply every test's threads).
    GATEWAY_WORKERS: '1',
    ...testUdpBatchEnv(),
    ...env,
  };
}

export type ServiceName = 'announce-gateway' | 'storage-api' | 'gc-worker';

/** A service's environment variables (PORT, STORAGE_DRIVER, REDIS_URL ...). */
export type ServiceEnv = Readonly<Record<string, string>>;

export interface ServiceOptions {
  service: ServiceName;
  /** Process and log name, e.g. gateway-a; the service's name by default. */
  name?: string;
  /** The service's settings; PATH, HOME, TMPDIR, LANG, LC_ALL and TZ are added, nothing else is inherited. */
  env: ServiceEnv;
  /** <logDir>/<name>.log receives both streams (appended across restarts); required when detached. */
  logDir?: string;
  /** Outlives this process (deploy/local/up.sh); its output goes to the log file only. */
  detached?: boolean;
  /** Working directory; the repository root by default. */
  cwd?: string;
  /** The entry point; services/<service>/src/main.ts of this checkout by default (an image's file set has its own). */
  main?: string;
  /** How long to wait for the "listening" line; 30 s by default. */
  timeoutMs?: number;
}

export interface ServiceProcess extends TopologyProcess {
  /** The fields of the service's {"msg":"listening",...} log line (ports). */
  listening: Record<string, unknown>;
  /** The current run's stdout (pino JSON) and stderr lines; empty when detached. */
  readonly stdout: readonly string[];
  readonly stderr: readonly string[];
  alive(): boolean;
  /** SIGKILL to the process group: a crash. */
  kill(): Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs` (10 s); resolves with the exit code (null when it had to be killed). */
  stop(graceMs?: number): Promise<number | null>;
  /** The last lines of its output, for assertion messages. */
  tail(lines?: number): string;
  /** Its name, pid and output tail, for assertion messages. */
  describe(): string;
  /** http://127.0.0.1:<admin port><path> (/healthz, /readyz, /metrics). */
  adminUrl(path: string): string;
  /**
   * Stops it if running and starts it again with the same environment on the
   * same ports (a storage-api that comes back where the gateways expect it).
   * `pid`, `listening` and the output follow the new process.
   */
  restart(): Promise<void>;
}

function entryArgs(opts: ServiceOptions): string[] {
  return [
    '--disable-warning=ExperimentalWarning',
    opts.main ?? join(REPO_ROOT, 'services', opts.service, 'src/main.ts'),
  ];
}

/**
 * Starts a service without waiting for it (a test of how it refuses to
 * start, or of whether it loads at all); its output is kept in memory.
 */
export function spawnService(opts: Omit<ServiceOptions, 'detached' | 'timeoutMs'>): ManagedProcess {
  const name = opts.name ?? opts.service;
  if (opts.logDir !== undefined) mkdirSync(opts.logDir, { recursive: true });
  return spawnManaged(process.execPath, entryArgs(opts), {
    name,
    env: baseEnv(opts.env),
    cwd: opts.cwd ?? REPO_ROOT,
    group: true,
    ...(opts.logDir === undefined ? {} : { logFile: join(opts.logDir, `${name}.log`) }),
  });
}

function listeningLine(lines: readonly string[]): Record<string, unknown> | undefined {
  for (const line of lines) {
    if (!line.includes('"listening"')) continue;
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (rec.msg === 'listening') return rec;
    } catch {
      // not JSON
    }
  }
  return undefined;
}

/** One run of the service: a child of this process, or a detached one logging to its file. */
interface Run {
  pid: number;
  exited: Promise<ExitStatus>;
  stdout: readonly string[];
  stderr: readonly string[];
  /** Its output so far. */
  lines(): readonly string[];
}

function launch(opts: ServiceOptions, name: string, env: Record<string, string>): Run {
  if (opts.detached !== true) {
    const p = spawnService({ ...opts, name, env });
    return {
      pid: p.pid,
      exited: p.exited,
      stdout: p.stdout,
      stderr: p.stderr,
      lines: () => p.output,
    };
  }
  if (opts.logDir === undefined) throw new Error(`${name}: a detached service needs a logDir`);
  const log = join(opts.logDir, `${name}.log`);
  // The log is appended to across restarts: this run's lines start here.
  const offset = existsSync(log) ? statSync(log).size : 0;
  const p = spawnLogged({
    name,
    command: process.execPath,
    args: entryArgs(opts),
    env: baseEnv(env),
    cwd: opts.cwd ?? REPO_ROOT,
    logDir: opts.logDir,
    detached: true,
  });
  const lines = (): string[] => {
    try {
      return readFileSync(log).subarray(offset).toString('utf8').split('\n');
    } catch {
      return [];
    }
  };
  return { pid: p.pid, exited: p.exited, stdout: [], stderr: [], lines };
}

async function untilListening(
  name: string,
  run: Run,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  let exit: ExitStatus | undefined;
  void run.exited.then((s) => (exit = s));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const listening = listeningLine(run.lines());
    if (listening !== undefined) return listening;
    const output = (): string => run.lines().slice(-40).join('\n');
    if (exit !== undefined || !isAlive(run.pid))
      throw new HarnessError(
        'HARNESS_ERR_EXITED',
        `${name} exited (${exit?.code ?? exit?.signal}) before listening:\n${output()}`,
      );
    if (Date.now() > deadline)
      throw new HarnessError(
        'HARNESS_ERR_TIMEOUT',
        `no "listening" line from ${name} within ${timeoutMs} ms:\n${output()}`,
      );
    await sleep(20);
  }
}

/** Starts a Shoal service and waits for its "listening" line; on failure it is stopped and the error carries its output. */
export async function startService(opts: ServiceOptions): Promise<ServiceProcess> {
  const name = opts.name ?? opts.service;
  const log = opts.logDir === undefined ? undefined : join(opts.logDir, `${name}.log`);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const begin = async (env: Record<string, string>): Promise<[Run, Record<string, unknown>]> => {
    const run = launch(opts, name, env);
    try {
      return [run, await untilListening(name, run, timeoutMs)];
    } catch (err) {
      signal({ pid: run.pid, group: true }, 'SIGKILL');
      await run.exited;
      throw err;
    }
  };
  let [run, listening] = await begin({ ...opts.env });
  const stop = async (graceMs = 10_000): Promise<number | null> => {
    let status: ExitStatus | undefined;
    const exited = run.exited.then((s) => (status = s));
    await Promise.race([exited, sleep(0)]);
    if (status === undefined) {
      signal(svc, 'SIGTERM');
      await Promise.race([exited, sleep(graceMs)]);
      if (status === undefined) signal(svc, 'SIGKILL');
    }
    const { code } = await run.exited;
    // Whatever it left in its group (a service starts none) goes too.
    signal(svc, 'SIGKILL');
    return code;
  };
  const svc: ServiceProcess = {
    name,
    pid: run.pid,
    ...(log === undefined ? {} : { log }),
    stopSignal: 'SIGTERM',
    group: true,
    listening,
    get stdout() {
      return run.stdout;
    },
    get stderr() {
      return run.stderr;
    },
    alive: () => isAlive(svc.pid),
    async kill() {
      signal(svc, 'SIGKILL');
      await run.exited;
    },
    stop,
    tail: (lines = 40) =>
      log !== undefined && opts.detached === true
        ? readTail(log, lines)
        : run.lines().slice(-lines).join('\n'),
    describe: () => `${name} (pid ${svc.pid})\n--- output (tail)\n${svc.tail(30)}`,
    adminUrl: (path) => `http://127.0.0.1:${Number(svc.listening.admin)}${path}`,
    async restart() {
      await stop();
      const port = svc.listening.port ?? svc.listening.http;
      const admin = svc.listening.admin;
      [run, listening] = await begin({
        ...opts.env,
        ...(typeof port === 'number' ? { PORT: String(port) } : {}),
        ...(typeof admin === 'number' ? { ADMIN_PORT: String(admin) } : {}),
      });
      svc.pid = run.pid;
      svc.listening = listening;
    },
  };
  return svc;
}

export type TrackerKind = 'http' | 'udp';

/** A gateway as a client sees it: its ports and URLs. */
export interface GatewayProcess extends ServiceProcess {
  /** The address clients use: the bind address, or loopback for a wildcard. */
  readonly host: string;
  readonly httpPort: number;
  readonly udpPort: number;
  readonly adminPort: number;
  /** NaN when TLS is off. */
  readonly httpsPort: number;
  /** https://host:port<path> on the HTTPS port (TLS_CERT_FILE). */
  httpsUrl(path: string): string;
  /** http://host:port/announce or udp://host:port/announce. */
  announceUrl(kind: TrackerKind): string;
  /** http://host:port/scrape */
  scrapeUrl(): string;
}

function clientHost(bindHost: string): string {
  if (bindHost === '0.0.0.0' || bindHost === '') return '127.0.0.1';
  if (bindHost === '::') return '::1';
  return bindHost;
}

const urlHost = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/** Starts announce-gateway with `gatewayEnv(env)` and waits until it listens. */
export async function startGateway(
  env: ServiceEnv = {},
  opts: Omit<ServiceOptions, 'service' | 'env'> = {},
): Promise<GatewayProcess> {
  const fullEnv = gatewayEnv(env);
  const svc = await startService({
    name: 'announce-gateway',
    ...opts,
    service: 'announce-gateway',
    env: fullEnv,
  });
  const host = clientHost(fullEnv.HOST ?? '127.0.0.1');
  const adminHost = urlHost(clientHost(fullEnv.ADMIN_HOST ?? '127.0.0.1'));
  const port = (key: TrackerKind | 'https' | 'admin'): number => Number(svc.listening[key]);
  // A restart keeps the ports, so they are read once.
  return Object.assign(svc, {
    host,
    httpPort: port('http'),
    udpPort: port('udp'),
    adminPort: port('admin'),
    httpsPort: port('https'),
    httpsUrl: (path: string) => `https://${urlHost(host)}:${port('https')}${path}`,
    announceUrl: (kind: TrackerKind) => `${kind}://${urlHost(host)}:${port(kind)}/announce`,
    scrapeUrl: () => `http://${urlHost(host)}:${port('http')}/scrape`,
    adminUrl: (path: string) => `http://${adminHost}:${port('admin')}${path}`,
  });
}
