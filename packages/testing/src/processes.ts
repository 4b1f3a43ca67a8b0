// Child processes that a test owns: real trackers and real BitTorrent
// clients. Every one is bounded in time and killed when the test is done, or
// when the test worker exits for any reason, so no run leaves strays behind.
import { spawn, type ChildProcess } from 'node:child_process';
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
  readonly exited: Promise<ExitStatus>;
  /** Still running (no exit observed yet). */
  alive(): boolean;
  /** Resolves with the exit status, or rejects with HARNESS_ERR_TIMEOUT (the process keeps running). */
  waitForExit(timeoutMs: number): Promise<ExitStatus>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed by a signal). */
  stop(graceMs?: number): Promise<number | null>;
  /** The tail of both streams, for assertion messages. */
  describe(): string;
}

export interface SpawnOptions {
  name: string;
  env: Readonly<Record<string, string>>;
  cwd?: string;
}

const MAX_LINES = 20_000;
const live = new Set<ChildProcess>();

// A worker that dies between beforeAll and afterAll must not leave trackers
// or clients holding ports for the next run.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function collect(
  stream: NodeJS.ReadableStream | null,
  into: string[],
  onLine?: (line: string) => void,
): void {
  if (stream === null) return;
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', (line) => {
    into.push(line);
    if (into.length > MAX_LINES) into.splice(0, into.length - MAX_LINES);
    onLine?.(line);
  });
}

export function spawnManaged(
  command: string,
  args: readonly string[],
  opts: SpawnOptions,
  onStdoutLine?: (line: string) => void,
): ManagedProcess {
  const child = spawn(command, args, {
    env: opts.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  collect(child.stdout, stdout, onStdoutLine);
  collect(child.stderr, stderr);
  let running = true;
  live.add(child);
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('error', (err) => {
      stderr.push(`spawn error: ${err.message}`);
      running = false;
      live.delete(child);
      resolve({ code: null, signal: null });
    });
    child.once('exit', (code, signal) => {
      running = false;
      live.delete(child);
      resolve({ code, signal });
    });
  });
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
    exited,
    alive: () => running,
    waitForExit,
    describe,
    async stop(graceMs = 10_000) {
      if (running) child.kill('SIGTERM');
      const status = await waitForExit(graceMs).catch(() => {
        child.kill('SIGKILL');
        return exited;
      });
      return status.code;
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
