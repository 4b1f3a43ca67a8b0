// The one launcher of Shoal's tests and local topology: spawns a process
// with its environment in its own process group, its output appended to
// <logDir>/<name>.log; waits until it is ready (a service's
// {"msg":"listening"} line, a server's own check); stops it with its clean
// signal, SIGKILL after a grace; crashes and restarts it in place. Processes
// of a test are killed when the test worker exits; detached ones (the local
// topology's up.sh) outlive it. docs/testing.md.
import { spawn } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

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

export type ServiceName = 'announce-gateway' | 'storage-api' | 'gc-worker';

/** One process of the topology, by pid (it may belong to an earlier `up`). */
export interface TopologyProcess {
  name: string;
  pid: number;
  /** Log file (stdout + stderr). */
  log: string;
  /** Signal sent to stop it cleanly. */
  stopSignal: NodeJS.Signals;
  /** Kill the whole process group (services, Redis) or only the pid (postgres shuts its children down itself). */
  group: boolean;
}

export interface ServiceProcess extends TopologyProcess {
  /** The fields of the service's {"msg":"listening",...} log line (ports). */
  listening: Record<string, unknown>;
  alive(): boolean;
  /** SIGKILL to the process group: a crash. */
  kill(): Promise<void>;
  /** The clean stop signal, SIGKILL after `graceMs`; resolves true when it exited by itself. */
  stop(graceMs?: number): Promise<boolean>;
  /** The last lines of its log, for assertion messages. */
  tail(lines?: number): string;
  /**
   * Stops it if running and starts it again with the same environment on the
   * same ports (a storage-api that comes back where the gateways expect it).
   * `pid` and `listening` follow the new process.
   */
  restart(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A Redis server, a sentinel or PostgreSQL under the test's control: what a
 * fault drill crashes and brings back (tests/src/fault-drills.test.ts).
 */
export interface ServerProcess extends TopologyProcess {
  /** The loopback port it serves on; a restart keeps it. */
  port: number;
  alive(): boolean;
  /** SIGKILL to the process group: a crash (PostgreSQL's backends go with the postmaster). */
  kill(): Promise<void>;
  /** The clean stop signal, SIGKILL after `graceMs`; resolves true when it exited by itself. */
  stop(graceMs?: number): Promise<boolean>;
  /**
   * Stops it if running and starts it again on the same port and data, then
   * waits until it answers. A Redis server comes back as a replica of the
   * primary the sentinels name (Sentinel would reconfigure it anyway);
   * PostgreSQL runs crash recovery. `pid` follows the new process.
   */
  restart(): Promise<void>;
  tail(lines?: number): string;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // After up.sh exits its processes belong to init, which may reap them
  // late: a zombie has exited.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** True once no process, not even a zombie, holds the pid. */
function reaped(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function signal(p: Pick<TopologyProcess, 'pid' | 'group'>, sig: NodeJS.Signals): void {
  try {
    process.kill(p.group ? -p.pid : p.pid, sig);
  } catch {
    // Already gone.
  }
}

/** Sends the stop signal and waits; SIGKILL after graceMs. True when it exited by itself. */
export async function stopProcess(p: TopologyProcess, graceMs = 15_000): Promise<boolean> {
  if (!isAlive(p.pid)) return true;
  signal(p, p.stopSignal);
  const deadline = Date.now() + graceMs;
  while (isAlive(p.pid)) {
    if (Date.now() > deadline) {
      signal(p, 'SIGKILL');
      signal({ ...p, group: true }, 'SIGKILL');
      while (isAlive(p.pid)) await sleep(20);
      return false;
    }
    await sleep(20);
  }
  // Children left in the group (none expected) go too.
  if (p.group) signal(p, 'SIGKILL');
  return true;
}

// Safety net for in-process use: a test worker that dies must not leave the
// topology behind. Detached runs (up.sh) are not registered.
const attached = new Set<TopologyProcess>();
let exitHook = false;
function register(p: TopologyProcess): void {
  attached.add(p);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const q of attached) signal({ ...q, group: q.group }, 'SIGKILL');
  });
}

/** Takes a process off the exit hook's list (it was stopped, or handed to a wrapper). */
export function release(p: TopologyProcess): void {
  attached.delete(p);
}

function readTail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface SpawnSpec {
  name: string;
  command: string;
  args: readonly string[];
  env?: Record<string, string>;
  cwd?: string;
  logDir: string;
  stopSignal?: NodeJS.Signals;
  group?: boolean;
  user?: { uid: number; gid: number };
  /** Outlives this process (deploy/local/up.sh). */
  detached: boolean;
}

export function spawnLogged(spec: SpawnSpec): TopologyProcess {
  mkdirSync(spec.logDir, { recursive: true });
  const log = join(spec.logDir, `${spec.name}.log`);
  const fd = openSync(log, 'a');
  if (spec.user !== undefined) chownSync(log, spec.user.uid, spec.user.gid);
  const child = spawn(spec.command, [...spec.args], {
    cwd: spec.cwd ?? REPO_ROOT,
    env: spec.env ?? minimalEnv(),
    stdio: ['ignore', fd, fd],
    // Own process group: down.sh and stop() signal the group, and a Ctrl-C in
    // the shell that ran up.sh does not reach the topology.
    detached: true,
    ...(spec.user === undefined ? {} : { uid: spec.user.uid, gid: spec.user.gid }),
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`cannot start ${spec.name} (${spec.command})`);
  child.on('error', () => undefined);
  const p: TopologyProcess = {
    name: spec.name,
    pid: child.pid,
    log,
    stopSignal: spec.stopSignal ?? 'SIGTERM',
    group: spec.group ?? true,
  };
  if (spec.detached) child.unref();
  else register(p);
  return p;
}

function minimalEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return { ...env, ...extra };
}

export async function waitUntil(
  what: string,
  p: TopologyProcess,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(p.pid))
      throw new Error(`${p.name} exited while waiting for ${what}:\n${readTail(p.log)}`);
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}:\n${readTail(p.log)}`);
    await sleep(50);
  }
}

/**
 * Wraps a spawned server so it can be crashed and respawned in place; the
 * handle (not each spawn) is what the exit hook and stop() see, so they
 * always reach the live pid.
 */
export function controlled(
  first: TopologyProcess,
  port: number,
  detached: boolean,
  respawn: () => Promise<TopologyProcess>,
): ServerProcess {
  let current = first;
  const adopt = (p: TopologyProcess): void => {
    attached.delete(p);
    current = p;
    handle.pid = p.pid;
  };
  const handle: ServerProcess = {
    name: first.name,
    pid: first.pid,
    log: first.log,
    stopSignal: first.stopSignal,
    group: first.group,
    port,
    alive: () => isAlive(handle.pid),
    async kill() {
      signal({ pid: handle.pid, group: true }, 'SIGKILL');
      while (isAlive(handle.pid)) await sleep(10);
    },
    stop: (graceMs) => stopProcess(current, graceMs),
    tail: (lines) => readTail(current.log, lines),
    async restart() {
      if (isAlive(handle.pid)) await stopProcess(current);
      // Until this process reaps it, the dead one is a zombie that still
      // holds its pid: PostgreSQL would take it for a live postmaster
      // ("lock file postmaster.pid already exists") and refuse to start.
      const deadline = Date.now() + 5_000;
      while (!reaped(handle.pid) && Date.now() < deadline) await sleep(10);
      adopt(await respawn());
    },
  };
  adopt(first);
  if (!detached) register(handle);
  return handle;
}

function listeningLine(log: string, offset: number): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(log).subarray(offset).toString('utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('"listening"')) continue;
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (rec.msg === 'listening') return rec;
    } catch {
      // a partial line
    }
  }
  return undefined;
}

export interface StartServiceOptions {
  /** Log and process name, e.g. gateway-a. */
  name: string;
  service: ServiceName;
  env: Record<string, string>;
  logDir: string;
  detached?: boolean;
  timeoutMs?: number;
}

/** Starts a Shoal service (node services/<service>/src/main.ts) and waits for its "listening" line. */
export async function startService(opts: StartServiceOptions): Promise<ServiceProcess> {
  const log = join(opts.logDir, `${opts.name}.log`);
  const launch = async (
    env: Record<string, string>,
  ): Promise<{ pid: number; listening: Record<string, unknown> }> => {
    // The log is appended to across restarts: look for this run's line only.
    const offset = existsSync(log) ? statSync(log).size : 0;
    const p = spawnLogged({
      name: opts.name,
      command: process.execPath,
      args: [
        '--disable-warning=ExperimentalWarning',
        join(REPO_ROOT, 'services', opts.service, 'src/main.ts'),
      ],
      env: minimalEnv(env),
      logDir: opts.logDir,
      detached: opts.detached ?? false,
    });
    let listening: Record<string, unknown> | undefined;
    await waitUntil(
      `${opts.name} to listen`,
      p,
      () => (listening = listeningLine(p.log, offset)) !== undefined,
      opts.timeoutMs ?? 30_000,
    );
    return { pid: p.pid, listening: listening! };
  };
  const first = await launch(opts.env);
  const svc: ServiceProcess = {
    name: opts.name,
    pid: first.pid,
    log,
    stopSignal: 'SIGTERM',
    group: true,
    listening: first.listening,
    alive: () => isAlive(svc.pid),
    async kill() {
      signal(svc, 'SIGKILL');
      while (isAlive(svc.pid)) await sleep(10);
    },
    stop: (graceMs) => stopProcess(svc, graceMs),
    tail: (lines) => readTail(log, lines),
    async restart() {
      if (isAlive(svc.pid)) await stopProcess(svc);
      const port = svc.listening.port ?? svc.listening.http;
      const admin = svc.listening.admin;
      const next = await launch({
        ...opts.env,
        ...(typeof port === 'number' ? { PORT: String(port) } : {}),
        ...(typeof admin === 'number' ? { ADMIN_PORT: String(admin) } : {}),
      });
      svc.pid = next.pid;
      svc.listening = next.listening;
    },
  };
  return svc;
}
