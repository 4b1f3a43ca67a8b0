// What a service image carries, checked without a container engine: the
// Dockerfile's file set comes from scripts/image-files.sh, which this test runs
// into a temporary folder. No test code (unit tests, test/ folders with their
// helpers, fakes and fixtures), no devDependency, and the service still loads
// from what is left (docs/testing.md "Where test code lives").
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnService } from '@shoal/testing/launcher';
import { baseEnv, repoRoot, runBounded, spawnManaged } from '@shoal/testing/processes';

const SERVICES = ['announce-gateway', 'storage-api', 'gc-worker'] as const;

interface Manifest {
  name: string;
  exports?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** Every path below `dir` (relative to `root`), not descending into node_modules. */
function walk(root: string, dir = root, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    out.push(relative(root, path) + (entry.isDirectory() ? '/' : ''));
    if (entry.isDirectory()) walk(root, path, out);
  }
  return out;
}

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
    const paths = walk(app);
    expect(paths.filter((p) => p.endsWith('.ts')).length).toBeGreaterThan(10);
    const testCode = paths.filter(
      (p) =>
        /\.test\.ts$/.test(p) ||
        /(^|\/)(test|tests|fixtures|__fixtures__)\/$/.test(p) ||
        /(^|\/)(fake-[^/]*|test-support\.ts|conformance\.ts)$/.test(p),
    );
    expect(testCode).toEqual([]);
  });

  it('installs no devDependency and no test-only package', () => {
    const manifests = packages.map(readManifest);
    const prod = new Set(manifests.flatMap((m) => Object.keys(m.dependencies ?? {})));
    const devOnly = [
      ...new Set(manifests.flatMap((m) => Object.keys(m.devDependencies ?? {}))),
      '@shoal/testing',
      '@shoal/tests',
      'vitest',
      'typescript',
    ].filter((name) => !prod.has(name));
    expect(devOnly).toContain('@shoal/testing');
    expect(devOnly.filter((name) => existsSync(join(app, 'node_modules', name)))).toEqual([]);
    const tests = readdirSync(join(app, 'node_modules'), { recursive: true })
      .map(String)
      .filter((p) => /\.test\.ts$/.test(p));
    expect(tests).toEqual([]);
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
});
