// What the built images hold (docs/testing.md "Where test code lives"): /app
// copied out of each image passes the same checks as scripts/image-files.sh's
// output in tests/src/image-files.test.ts (no test code by name or import, no
// devDependency, no dependency file that nothing runs), and the image's own
// settings are the ones the chart relies on: uid/gid 10001, production mode,
// the early-signals preload, no build-time CA in its environment.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  devPackagesIn,
  dockerfileEntrypoint,
  readManifest,
  testCodeIn,
  unreadDependencyFilesIn,
} from '../src/harness/image-contents.ts';
import { REPO_ROOT, RUN_LABEL, podman } from './harness/podman.ts';

const images = inject('images');
const SERVICES = [
  ['announce-gateway', images.gateway],
  ['storage-api', images.storageApi],
  ['gc-worker', images.gcWorker],
] as const;

interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
}

let work = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'shoal-image-contents-'));
});
afterAll(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

describe.each(SERVICES)('the built %s image', (service, image) => {
  let app = '';

  beforeAll(async () => {
    app = join(work, service);
    // A created container is never started: it only lends its file system to `podman cp`.
    const id = (await podman(['create', '--label', `${RUN_LABEL}=image-contents`, image])).trim();
    try {
      await podman(['cp', `${id}:/app`, app], 120_000);
    } finally {
      await podman(['rm', '--force', id]);
    }
  }, 180_000);

  it('holds the service without test code, devDependencies or unread dependency files', async () => {
    expect(readManifest(app).name).toBe(`@shoal/${service}`);
    const workspace = (await readdir(join(app, 'workspace'))).map((n) => join(app, 'workspace', n));
    expect(workspace.length).toBeGreaterThan(2);
    expect(testCodeIn(app)).toEqual([]);
    expect(devPackagesIn(app, [app, ...workspace])).toEqual([]);
    expect(unreadDependencyFilesIn(app)).toEqual([]);
  });

  it('runs as uid 10001 in production mode with the early-signals preload, and keeps no CA setting', async () => {
    const config = JSON.parse(
      await podman(['image', 'inspect', '--format', '{{json .Config}}', image]),
    ) as ImageConfig;
    expect(config.User).toBe('10001:10001');
    expect(config.WorkingDir).toBe('/app');
    expect(config.Env).toContain('NODE_ENV=production');
    expect((config.Env ?? []).filter((e) => /CA_CERTS|SSL_CERT/.test(e))).toEqual([]);
    const entrypoint = dockerfileEntrypoint(join(REPO_ROOT, 'Dockerfile'));
    expect(config.Entrypoint).toEqual(entrypoint);
    expect(entrypoint).toContain('@shoal/service/early-signals');
  });
});
