// Child processes that a test owns: Shoal's services (through the launcher),
// real trackers and real BitTorrent clients. Every one is bounded in time and
// killed when the test is done, or when the test worker exits for any reason,
// so no run leaves strays behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { HarnessError } from './errors.ts';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** stdout lines as they arrive (the last MAX_LINES). */
  readonly stdout: readonly string[];
  /** stderr lines as they arrive (the last MAX_LINES). */
  readonly stderr: readonly string[];
  /** Both streams' lines in arrival order (the last MAX_LINES). */
  readonly output: readonly string[];
  readonly exited: Promise<ExitStatus>;
  /** Still running (no exit observed yet). */
  alive(): boolean;
  /** Resolves with the exit status, or rejects with HARNESS_ERR_TIMEOUT (the process keeps running). */
  waitForExit(timeoutMs: number): Promise<ExitStatus>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed by a signal). */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL at once (a crash); resolves once it has exited. */
  kill(): Promise<void>;
  /** The tail of both streams, for assertion messages. */
  describe(): string;
}

export interface SpawnOptions {
  name: string;
  env: Readonly<Record<string, string>>;
  cwd?: string;
  /** Run it in its own process group and signal the group (a service and whatever it starts). */
  group?: boolean;
  /** Also append both streams to this file, for reading after the run. */
  logFile?: string;
}

const MAX_LINES = 20_000;
const live = new Map<ChildProcess, boolean>();

function signal(child: ChildProcess, group: boolean, sig: NodeJS.Signals): void {
  if (!group || child.pid === undefined) {
    child.kill(sig);
    return;
  }
  try {
    process.kill(-child.pid, sig);
  } catch {
    // Already gone.
  }
}

// A worker that dies between beforeAll and afterAll must not leave services,
// trackers or clients holding ports for the next run.
process.once('exit', () => {
  for (const [child, group] of live) signal(child, group, 'SIGKILL');
});

function push(into: string[], line: string): void {
  into.push(line);
  if (into.length > MAX_LINES) into.splice(0, into.length - MAX_LINES);
}

function collect(
  stream: NodeJS.ReadableStream | null,
  into: string[],
  onLine: (line: string) => void,
): void {
  if (stream === null) return;
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', (line) => {
    push(into, line);
    onLine(line);
  });
}

export function spawnManaged(
  command: string,
  args: readonly string[],
  opts: SpawnOptions,
  onStdoutLine?: (line: string) => void,
): ManagedProcess {
  const group = opts.group ?? false;
  const child = spawn(command, args, {
    env: opts.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: group,
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const output: string[] = [];
  const logFd = opts.logFile === undefined ? undefined : openSync(opts.logFile, 'a');
  const record = (line: string): void => {
    push(output, line);
    if (logFd !== undefined) writeSync(logFd, `${line}\n`);
  };
  collect(child.stdout, stdout, (line) => {
    record(line);
    onStdoutLine?.(line);
  });
  collect(child.stderr, stderr, record);
  let running = true;
  live.set(child, group);
  const exited = new Promise<ExitStatus>((resolve) => {
    const done = (status: ExitStatus): void => {
      running = false;
      live.delete(child);
      resolve(status);
    };
    child.once('error', (err) => {
      stderr.push(`spawn error: ${err.message}`);
      done({ code: null, signal: null });
    });
    child.once('exit', (code, sig) => {
      // Anything left in the group (a service starts none) goes with it.
      if (group) signal(child, true, 'SIGKILL');
      // Its last lines (a service's "stopped") are read once both streams
      // close; a grandchild that keeps them open delays that by a bound only.
      const last = setTimeout(() => done({ code, signal: sig }), 1_000);
      child.once('close', () => {
        clearTimeout(last);
        done({ code, signal: sig });
      });
    });
  });
  if (logFd !== undefined) void exited.finally(() => closeSync(logFd));
  const describe = (): string =>
    `${opts.name} (pid ${child.pid ?? '?'})\n--- stdout (tail)\n${stdout.slice(-30).join('\n')}\n--- stderr (tail)\n${stderr.slice(-30).join('\n')}`;
  const waitForExit = (timeoutMs: number): Promise<ExitStatus> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new HarnessError(
            'HARNESS_ERR_TIMEOUT',
            `${opts.name} still running after ${timeoutMs} ms\n${describe()}`,
          ),
        );
      }, timeoutMs);
      void exited.then((status) => {
        clearTimeout(timer);
        resolve(status);
      });
    });
  return {
    name: opts.name,
    pid: child.pid ?? -1,
    stdout,
    stderr,
    output,
    exited,
    alive: () => running,
    waitForExit,
    describe,
    async stop(graceMs = 10_000) {
      if (running) signal(child, group, 'SIGTERM');
      const status = await waitForExit(graceMs).catch(() => {
        signal(child, group, 'SIGKILL');
        return exited;
      });
      return status.code;
    },
    async kill() {
      if (running) signal(child, group, 'SIGKILL');
      await exited;
    },
  };
}

export interface RunResult extends ExitStatus {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion within `timeoutMs`; rejects with a coded error on timeout or non-zero exit. */
export async function runBounded(
  command: string,
  args: readonly string[],
  opts: SpawnOptions & { timeoutMs: number },
): Promise<RunResult> {
  const proc = spawnManaged(command, args, opts);
  let status: ExitStatus;
  try {
    status = await proc.waitForExit(opts.timeoutMs);
  } catch (err) {
    await proc.stop(1_000);
    throw err;
  }
  const result = { ...status, stdout: proc.stdout.join('\n'), stderr: proc.stderr.join('\n') };
  if (status.code !== 0) {
    throw new HarnessError(
      'HARNESS_ERR_FAILED',
      `${opts.name} exited with ${status.code ?? status.signal}\n${proc.describe()}`,
    );
  }
  return result;
}

/** The environment a child gets: a clean PATH with the project's Node 24 first, nothing inherited that could configure it. */
export function baseEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: `${toolsBin}:${process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
  };
  for (const key of ['HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'TZ'] as const) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return { ...env, ...extra };
}

export const repoRoot = new URL('../../../', import.meta.url).pathname;
export const toolsBin = `${repoRoot}.tools/bin`;

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `everyMs` until it returns true; rejects with HARNESS_ERR_TIMEOUT after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline)
      throw new HarnessError('HARNESS_ERR_TIMEOUT', `waiting for ${what} (${timeoutMs} ms)`);
    await sleep(everyMs);
  }
}
