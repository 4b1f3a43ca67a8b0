// podman as the container tests drive it (docs/testing.md "Container test"):
// the project's containers.conf (runc, no raised ulimits) through
// CONTAINERS_CONF, and every container of one test run carrying the label
// shoal.test.run=<run id>, so cleanup finds exactly that run's containers,
// whatever step failed, and never another run's.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { HarnessError } from '@shoal/testing/errors';
import { repoRoot } from '@shoal/testing/processes';

const execFileP = promisify(execFile);

export const REPO_ROOT = resolve(repoRoot);
export const RUN_LABEL = 'shoal.test.run';

export function podmanEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CONTAINERS_CONF:
      process.env.CONTAINERS_CONF ?? resolve(REPO_ROOT, 'deploy/containers/containers.conf'),
  };
}

/** Runs podman to completion; rejects with its stderr on a non-zero exit. */
export async function podman(args: readonly string[], timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await execFileP('podman', [...args], {
      env: podmanEnv(),
      timeout: timeoutMs,
      maxBuffer: 64 << 20,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: unknown; signal?: unknown };
    throw new HarnessError(
      'HARNESS_ERR_FAILED',
      `podman ${args.join(' ')}: ${String(e.code ?? e.signal)}\n${e.stderr ?? String(err)}`,
    );
  }
}

export interface ContainerSpec {
  /** Short name within the run (redis-0, gateway-a...). */
  name: string;
  image: string;
  /** Arguments after the image (the command, or the entrypoint's arguments). */
  args?: readonly string[];
  env?: Readonly<Record<string, string>>;
  /** `podman run --network`; default host (the test's ports are free host ports). */
  network?: string;
  /** Everything else `podman run` takes (--read-only, --tmpfs, -v...). */
  flags?: readonly string[];
}

export interface ContainerState {
  status: string;
  exitCode: number;
  running: boolean;
}

/** One container of a run, by its full name. */
export class Container {
  readonly name: string;
  readonly spec: ContainerSpec;
  constructor(name: string, spec: ContainerSpec) {
    this.name = name;
    this.spec = spec;
  }

  async logs(lines = 40): Promise<string> {
    try {
      // podman writes the container's stdout and stderr to its own two streams.
      const { stdout, stderr } = await execFileP(
        'podman',
        ['logs', '--tail', String(lines), this.name],
        { env: podmanEnv(), timeout: 10_000, maxBuffer: 16 << 20 },
      );
      return `${stdout}${stderr}`;
    } catch (err) {
      return `(no logs: ${String(err)})`;
    }
  }

  async state(): Promise<ContainerState> {
    const out = await podman([
      'inspect',
      '--format',
      '{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}',
      this.name,
    ]);
    const [status = '', code = '', running = ''] = out.trim().split(' ');
    return { status, exitCode: Number(code), running: running === 'true' };
  }

  /** Whether it runs, asked synchronously (a TrackerEndpoint's alive()). */
  runningNow(): boolean {
    const r = spawnSync('podman', ['inspect', '--format', '{{.State.Running}}', this.name], {
      env: podmanEnv(),
      encoding: 'utf8',
      timeout: 10_000,
    });
    return r.status === 0 && r.stdout.trim() === 'true';
  }

  async kill(signal = 'KILL'): Promise<void> {
    await podman(['kill', '--signal', signal, this.name]);
  }

  /** `podman stop`: the image's stop signal, then SIGKILL after `timeoutSeconds`. */
  async stop(timeoutSeconds: number): Promise<void> {
    await podman(
      ['stop', '--time', String(timeoutSeconds), this.name],
      (timeoutSeconds + 30) * 1000,
    );
  }
}

/** The containers of one test run: started with its label, listed and removed by it. */
export class ContainerRun {
  readonly id = randomBytes(6).toString('hex');
  readonly containers: Container[] = [];

  get filter(): string {
    return `label=${RUN_LABEL}=${this.id}`;
  }

  /** `podman run -d` on the host network, labelled with this run. */
  async start(spec: ContainerSpec): Promise<Container> {
    const name = `shoal-test-${this.id}-${spec.name}`;
    const env = Object.entries(spec.env ?? {}).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
    const container = new Container(name, spec);
    // Tracked before it runs: a half-created container is removed too.
    this.containers.push(container);
    await podman([
      'run',
      '--detach',
      '--name',
      name,
      '--label',
      `${RUN_LABEL}=${this.id}`,
      '--network',
      spec.network ?? 'host',
      ...env,
      ...(spec.flags ?? []),
      spec.image,
      ...(spec.args ?? []),
    ]);
    return container;
  }

  /** Names of this run's containers in any state (`podman ps -a`). */
  async list(): Promise<string[]> {
    const out = await podman(['ps', '--all', '--filter', this.filter, '--format', '{{.Names}}']);
    return out.split('\n').filter((l) => l !== '');
  }

  /** Names of this run's running containers. */
  async running(): Promise<string[]> {
    const out = await podman(['ps', '--filter', this.filter, '--format', '{{.Names}}']);
    return out.split('\n').filter((l) => l !== '');
  }

  /** Log tails of every container, for assertion messages. */
  async describe(lines = 30): Promise<string> {
    const parts = await Promise.all(
      this.containers.map(async (c) => `--- ${c.spec.name} (${c.name})\n${await c.logs(lines)}`),
    );
    return parts.join('\n');
  }

  /** Removes every container of the run, running or not; resolves to what is left (empty). */
  async removeAll(): Promise<string[]> {
    const names = await this.list();
    if (names.length > 0) await podman(['rm', '--force', '--time', '0', ...names], 120_000);
    return this.list();
  }
}
