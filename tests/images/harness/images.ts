// The images the container tests run, built once per test run (vitest's
// globalSetup, tests/images/global-setup.ts) and cached by podman's layer
// cache: the local base (scripts/container-base.sh), the three service
// images from the Dockerfile (scripts/images.sh), and the Redis and
// PostgreSQL test images of deploy/containers on the same base.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { HarnessError } from '@shoal/testing/errors';
import { REPO_ROOT, podman, podmanEnv } from './podman.ts';

const execFileP = promisify(execFile);

export interface TestImages {
  base: string;
  gateway: string;
  storageApi: string;
  gcWorker: string;
  redis: string;
  postgres: string;
}

/**
 * The tag of the images the tests build: not the chart's (`make images` keeps
 * its own), and one per checkout, so two checkouts testing at once on one
 * machine never run each other's images.
 */
export const TEST_TAG = `test-${createHash('sha256').update(REPO_ROOT).digest('hex').slice(0, 10)}`;

export function testImages(base: string): TestImages {
  return {
    base,
    gateway: `localhost/shoal-announce-gateway:${TEST_TAG}`,
    storageApi: `localhost/shoal-storage-api:${TEST_TAG}`,
    gcWorker: `localhost/shoal-gc-worker:${TEST_TAG}`,
    redis: `localhost/shoal-test-redis:${TEST_TAG}`,
    postgres: `localhost/shoal-test-postgres:${TEST_TAG}`,
  };
}

async function script(path: string, env: Record<string, string>, timeoutMs: number) {
  try {
    const { stdout } = await execFileP('bash', [resolve(REPO_ROOT, path)], {
      cwd: REPO_ROOT,
      env: { ...podmanEnv(), ...env },
      timeout: timeoutMs,
      maxBuffer: 64 << 20,
    });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new HarnessError(
      'HARNESS_ERR_FAILED',
      `${path} failed:\n${(e.stderr ?? String(err)).slice(-4000)}`,
    );
  }
}

/** Builds (or finds in the cache) every image the container tests need. */
export async function buildTestImages(): Promise<TestImages> {
  const base = (await script('scripts/container-base.sh', {}, 600_000)).trim().split('\n').pop()!;
  const images = testImages(base);
  // podman whatever else runs here: the tests run the images with podman.
  await script(
    'scripts/images.sh',
    { TAG: TEST_TAG, NODE_IMAGE: base, ENGINE: 'podman' },
    1_200_000,
  );
  for (const [name, image] of [
    ['redis', images.redis],
    ['postgres', images.postgres],
  ] as const) {
    await podman(
      [
        'build',
        '--quiet',
        '--network',
        'host',
        '--build-arg',
        `BASE_IMAGE=${base}`,
        '--tag',
        image,
        resolve(REPO_ROOT, 'deploy/containers', name),
      ],
      600_000,
    );
  }
  return images;
}
