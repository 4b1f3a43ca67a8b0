// What a service image's /app must not hold, checked on the file tree alone:
// tests/src/image-files.test.ts runs it on scripts/image-files.sh's output,
// and the container tests on /app copied out of the built images
// (docs/testing.md "Where test code lives").
import { readdirSync, readFileSync, type Dirent } from 'node:fs';
import { join, relative } from 'node:path';

export interface Manifest {
  name: string;
  exports?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** The Dockerfile's ENTRYPOINT (exec form), as the images run it. */
export function dockerfileEntrypoint(dockerfile: string): string[] {
  const line = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(dockerfile, 'utf8'));
  return JSON.parse(line?.[1] ?? '[]') as string[];
}

export function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** Every path below `dir` (relative to `root`, folders ending in `/`), not descending into node_modules. */
export function walk(root: string, dir = root, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    out.push(relative(root, path) + (entry.isDirectory() ? '/' : ''));
    if (entry.isDirectory()) walk(root, path, out);
  }
  return out;
}

/** Files under a node_modules folder, not following links (the workspace packages are linked in). */
function dependencyFiles(dir: string, out: string[] = []): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) dependencyFiles(path, out);
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

const TEST_NAME =
  /(^|\/)((test|tests|fixtures|__fixtures__)\/|[^/]*\.test\.ts$|fake-[^/]*$|test-support\.ts$|conformance\.ts$)/;
// An import of a test runner, a test library or a test folder marks test code
// whatever the file is called.
const TEST_IMPORT =
  /(?:from\s*|import\s*\(\s*|import\s+)['"](vitest(?:\/[^'"]*)?|node:test|fast-check|@shoal\/testing(?:\/[^'"]*)?|@shoal\/tests|@shoal\/[^'"]*\/conformance|[^'"]*\/test\/[^'"]*)['"]/;

/** Paths of /app (outside node_modules) that are test code, by name or by what they import. */
export function testCodeIn(app: string): string[] {
  return walk(app).flatMap((path) => {
    if (TEST_NAME.test(path)) return [`${path} (named as test code)`];
    if (!/\.[cm]?[jt]s$/.test(path)) return [];
    const found = TEST_IMPORT.exec(readFileSync(join(app, path), 'utf8'));
    return found === null ? [] : [`${path} (imports ${found[1]})`];
  });
}

/** Packages in /app/node_modules that only development or tests use. */
export function devPackagesIn(app: string, packageDirs: readonly string[]): string[] {
  const manifests = packageDirs.map(readManifest);
  const prod = new Set(manifests.flatMap((m) => Object.keys(m.dependencies ?? {})));
  const devOnly = [
    ...new Set([
      ...manifests.flatMap((m) => Object.keys(m.devDependencies ?? {})),
      '@shoal/testing',
      '@shoal/tests',
      'vitest',
      'typescript',
    ]),
  ].filter((name) => !prod.has(name));
  return devOnly.filter((name) => {
    try {
      readdirSync(join(app, 'node_modules', name));
      return true;
    } catch {
      return false;
    }
  });
}

/** Files of the dependencies that a running service never reads (scripts/image-files.sh removes them). */
export function unreadDependencyFilesIn(app: string): string[] {
  return dependencyFiles(join(app, 'node_modules'))
    .map((path) => relative(app, path))
    .filter((path) => /\.(d\.[cm]?ts|[cm]?ts|map|md|markdown)$/.test(path));
}
