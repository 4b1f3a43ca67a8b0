// Processes in their own process group with their output appended to
// <logDir>/<name>.log, for the servers of the local topology (Redis,
// Sentinel, PostgreSQL) and the services that deploy/local/up.sh leaves
// running: started, waited for (a server's own check), stopped with their
// clean signal (SIGKILL after a grace), crashed and restarted in place.
// Processes of a test are killed when the test worker exits; detached ones
// outlive it. Shoal's services are started through ./launcher.ts.
// docs/testing.md.
import { spawn } from 'node:child_process';
import { chownSync, closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseEnv, sleep, type ExitStatus } from './processes.ts';

export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

/** One process of the topology, by pid (it may belong to an earlier `up`). */
export interface TopologyProcess {
  name: string;
  pid: number;
  /** Log file (stdout + stderr); none for a service whose output is kept in memory only. */
  log?: string | undefined;
  /** Signal sent to stop it cleanly. */
  stopSignal: NodeJS.Signals;
  /** Kill the whole process group (services, Redis) or only the pid (postgres shuts its children down itself). */
  group: boolean;
}

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

export function signal(p: Pick<TopologyProcess, 'pid' | 'group'>, sig: NodeJS.Signals): void {
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

export function readTail(file: string | undefined, lines = 40): string {
  if (file === undefined) return '';
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

/** A spawned process; `exited` settles when it exits while this process still runs. */
export interface LoggedProcess extends TopologyProcess {
  exited: Promise<ExitStatus>;
}

export function spawnLogged(spec: SpawnSpec): LoggedProcess {
  mkdirSync(spec.logDir, { recursive: true });
  const log = join(spec.logDir, `${spec.name}.log`);
  const fd = openSync(log, 'a');
  if (spec.user !== undefined) chownSync(log, spec.user.uid, spec.user.gid);
  const child = spawn(spec.command, [...spec.args], {
    cwd: spec.cwd ?? REPO_ROOT,
    env: spec.env ?? baseEnv(),
    stdio: ['ignore', fd, fd],
    // Own process group: down.sh and stop() signal the group, and a Ctrl-C in
    // the shell that ran up.sh does not reach the topology.
    detached: true,
    ...(spec.user === undefined ? {} : { uid: spec.user.uid, gid: spec.user.gid }),
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`cannot start ${spec.name} (${spec.command})`);
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('error', () => resolve({ code: null, signal: null }));
    child.once('exit', (code, sig) => resolve({ code, signal: sig }));
  });
  const p: LoggedProcess = {
    name: spec.name,
    pid: child.pid,
    log,
    stopSignal: spec.stopSignal ?? 'SIGTERM',
    group: spec.group ?? true,
    exited,
  };
  if (spec.detached) child.unref();
  else register(p);
  return p;
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
