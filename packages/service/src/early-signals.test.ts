// A service as a container's process 1 (the images' entrypoint preloads
// early-signals.ts): a new PID namespace (`unshare --pid`) makes Node process
// 1 as a container does, where the kernel ignores SIGTERM without a handler.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  baseEnv,
  sleep,
  spawnManaged,
  waitFor,
  type ManagedProcess,
} from '@shoal/testing/processes';

const preload = fileURLToPath(new URL('./early-signals.ts', import.meta.url));
let proc: ManagedProcess | undefined;

afterEach(async () => {
  await proc?.kill();
  proc = undefined;
});

/** Node as process 1 of a new PID namespace, running `script` after the given preloads. */
async function asProcessOne(script: string, preloads: string[]): Promise<number> {
  proc = spawnManaged(
    'unshare',
    [
      '--user',
      '--map-root-user',
      '--pid',
      '--fork',
      '--kill-child',
      process.execPath,
      '--disable-warning=ExperimentalWarning',
      ...preloads.flatMap((p) => ['--import', p]),
      '--input-type=module',
      '-e',
      `${script}; console.log('up', process.pid);`,
    ],
    { name: 'process-1', env: baseEnv() },
  );
  const p = proc;
  await waitFor('the script to run', () => p.stdout.includes('up 1') || !p.alive(), 20_000);
  expect(p.stdout, p.describe()).toContain('up 1');
  // unshare's one child is Node.
  return Number(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim());
}

describe('a service as process 1', () => {
  it('ignores SIGTERM without a listener: the case the preload exists for', async () => {
    const node = await asProcessOne('setInterval(() => {}, 1000)', []);
    process.kill(node, 'SIGTERM');
    await sleep(1000);
    expect(proc?.alive()).toBe(true);
  });

  it('exits 143 on SIGTERM during start-up, before any drain listens', async () => {
    const node = await asProcessOne('setInterval(() => {}, 1000)', [preload]);
    process.kill(node, 'SIGTERM');
    const status = await proc!.waitForExit(10_000);
    expect(status.code, proc!.describe()).toBe(143);
  });

  it('leaves SIGTERM to the drain once one listens', async () => {
    const drain = `process.once('SIGTERM', () => { console.log('draining'); setTimeout(() => process.exit(0), 200); }); setInterval(() => {}, 1000)`;
    const node = await asProcessOne(drain, [preload]);
    process.kill(node, 'SIGTERM');
    const status = await proc!.waitForExit(10_000);
    expect(status.code, proc!.describe()).toBe(0);
    expect(proc!.stdout).toContain('draining');
  });
});
