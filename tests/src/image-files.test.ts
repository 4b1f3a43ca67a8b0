// What a service image carries, checked without a container engine: the
// Dockerfile's file set comes from scripts/image-files.sh, which this test runs
// into a temporary folder. No test code (unit tests, test/ folders with their
// helpers, fakes and fixtures), no devDependency, and the service still loads
// from what is left (docs/testing.md "Where test code lives").
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnService } from '@shoal/testing/launcher';
import { baseEnv, repoRoot, runBounded, spawnManaged } from '@shoal/testing/processes';
import {
  devPackagesIn,
  dockerfileEntrypoint,
  readManifest,
  testCodeIn,
  unreadDependencyFilesIn,
  walk,
} from './harness/image-contents.ts';

const SERVICES = ['announce-gateway', 'storage-api', 'gc-worker'] as const;

describe('the image checks', () => {
  it('find test code by name and by import, dev packages, and unread dependency files', () => {
    const app = mkdtempSync(join(tmpdir(), 'shoal-image-checks-'));
    try {
      const put = (path: string, text = '') => {
        mkdirSync(dirname(join(app, path)), { recursive: true });
        writeFileSync(join(app, path), text);
      };
      put('package.json', JSON.stringify({ name: 'x', devDependencies: { vitest: '*' } }));
      put('src/main.ts', "import { x } from './x.ts';\n");
      put('src/harness.ts', "import { it } from 'vitest';\n");
      put('src/helpers.ts', "export { peers } from '../test/peers.ts';\n");
      put('src/lazy.ts', "const t = await import('@shoal/testing/processes');\n");
      put('src/fake-store.ts');
      put('workspace/p/test/fixture.json', '{}');
      put('node_modules/vitest/index.js');
      put('node_modules/dep/index.js');
      put('node_modules/dep/index.d.ts');
      put('node_modules/dep/index.js.map');
      expect(testCodeIn(app).sort()).toEqual([
        'src/fake-store.ts (named as test code)',
        'src/harness.ts (imports vitest)',
        'src/helpers.ts (imports ../test/peers.ts)',
        'src/lazy.ts (imports @shoal/testing/processes)',
        'workspace/p/test/ (named as test code)',
        'workspace/p/test/fixture.json (named as test code)',
      ]);
      expect(devPackagesIn(app, [app])).toEqual(['vitest']);
      expect(unreadDependencyFilesIn(app).sort()).toEqual([
        'node_modules/dep/index.d.ts',
        'node_modules/dep/index.js.map',
      ]);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});

describe.each(SERVICES)('the %s image', (service) => {
  let work: string;
  let app: string;
  let packages: string[];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), `shoal-image-${service}-`));
    app = join(work, 'app');
    await runBounded('sh', ['scripts/image-files.sh', service, app], {
      name: `image-files ${service}`,
      env: baseEnv(),
      cwd: repoRoot,
      timeoutMs: 180_000,
    });
    packages = [app, ...readdirSync(join(app, 'workspace')).map((n) => join(app, 'workspace', n))];
  }, 200_000);

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('holds the service and its workspace packages, without test code', () => {
    expect(readManifest(app).name).toBe(`@shoal/${service}`);
    expect(existsSync(join(app, 'src/main.ts'))).toBe(true);
    // The chart's migration Job runs this path from the storage-api image.
    if (service === 'storage-api')
      expect(existsSync(join(app, 'workspace/storage/src/postgres/migrate-cli.ts'))).toBe(true);
    expect(walk(app).filter((p) => p.endsWith('.ts')).length).toBeGreaterThan(10);
    expect(testCodeIn(app)).toEqual([]);
  });

  it('installs no devDependency and no test-only package', () => {
    expect(devPackagesIn(app, packages)).toEqual([]);
    // The check sees the devDependencies: @shoal/testing is one of every service.
    expect(readManifest(app).devDependencies).toHaveProperty(['@shoal/testing']);
  });

  it('keeps no file of the dependencies that no service reads (declarations, TS sources, maps, Markdown)', () => {
    expect(unreadDependencyFilesIn(app)).toEqual([]);
    // ...while their code and licences stay.
    expect(existsSync(join(app, 'node_modules/fastify/fastify.js'))).toBe(true);
    expect(existsSync(join(app, 'node_modules/fastify/LICENSE'))).toBe(true);
  });

  it("loads: main.ts's imports resolve (it exits 1 on bad config) and every export imports", async () => {
    // NODE_ENV as the image sets it; a bad ADMIN_PORT stops main.ts right after its imports load.
    const main = spawnService({
      service,
      main: join(app, 'src/main.ts'),
      cwd: app,
      env: { NODE_ENV: 'production', ADMIN_PORT: 'not-a-port' },
    });
    const status = await main.waitForExit(20_000).finally(() => main.stop(1_000));
    const output = [...main.stdout, ...main.stderr].join('\n');
    expect(output).not.toContain('ERR_MODULE_NOT_FOUND');
    expect(status.code, main.describe()).toBe(1);
    expect(output).toContain('ADMIN_PORT');

    const entries = Object.values(readManifest(app).exports ?? {}).map((p) => join(app, p));
    const load = spawnManaged(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        '--input-type=module',
        '-e',
        `for (const p of ${JSON.stringify(entries)}) await import(p);`,
      ],
      {
        name: service,
        env: baseEnv({ NODE_ENV: 'production', ADMIN_PORT: 'not-a-port' }),
        cwd: app,
      },
    );
    const loaded = await load.waitForExit(20_000).finally(() => load.stop(1_000));
    expect(loaded.code, load.describe()).toBe(0);
  }, 60_000);

  it("starts with the Dockerfile's ENTRYPOINT from /app (its preload resolves)", async () => {
    const [command, ...args] = dockerfileEntrypoint(join(repoRoot, 'Dockerfile'));
    expect(command).toBe('node');
    const main = spawnManaged(process.execPath, args, {
      name: service,
      env: baseEnv({ NODE_ENV: 'production', ADMIN_PORT: 'not-a-port' }),
      cwd: app,
    });
    const status = await main.waitForExit(20_000).finally(() => main.stop(1_000));
    expect(status.code, main.describe()).toBe(1);
    expect(main.describe()).toContain('ADMIN_PORT');
  }, 60_000);
});
