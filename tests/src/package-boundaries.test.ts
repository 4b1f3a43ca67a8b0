// The workspace's layering (docs/testing.md "Where test code lives"): no
// package depends on a service, and a service's or package's src/ holds only
// what ships (unit tests beside their code excepted); test helpers and fakes
// live in test/ folders or in @shoal/testing, which is test code throughout.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@shoal/testing/processes';

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

function workspaces(folder: 'packages' | 'services'): { dir: string; manifest: Manifest }[] {
  return readdirSync(join(repoRoot, folder)).map((name) => {
    const dir = join(folder, name);
    const manifest = JSON.parse(
      readFileSync(join(repoRoot, dir, 'package.json'), 'utf8'),
    ) as Manifest;
    return { dir, manifest };
  });
}

function sources(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { recursive: true })
    .map(String)
    .filter((p) => p.endsWith('.ts') && !p.split('/').includes('node_modules'))
    .map((p) => join(dir, p));
}

const services = workspaces('services');
const packages = workspaces('packages');
const serviceNames = services.map((s) => s.manifest.name);

describe('package boundaries', () => {
  it('finds the services', () => {
    expect(serviceNames).toContain('@shoal/announce-gateway');
  });

  it('no package depends on or imports a service', () => {
    const problems: string[] = [];
    for (const { dir, manifest } of packages) {
      const deps = { ...manifest.dependencies, ...manifest.devDependencies };
      for (const name of serviceNames)
        if (name in deps) problems.push(`${dir}/package.json: depends on ${name}`);
      for (const file of sources(dir)) {
        const text = readFileSync(join(repoRoot, file), 'utf8');
        for (const name of serviceNames)
          if (text.includes(`'${name}'`) || text.includes(`'${name}/`))
            problems.push(`${file}: imports ${name}`);
        if (/from '(\.\.\/)+services\//.test(text)) problems.push(`${file}: imports services/`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('src/ holds no test helper or fake: only code that ships and unit tests beside it', () => {
    const problems: string[] = [];
    for (const { dir, manifest } of [...packages, ...services]) {
      if (manifest.name === '@shoal/testing') continue;
      for (const file of sources(join(dir, 'src'))) {
        if (file.endsWith('.test.ts')) continue;
        if (/(^|\/)(fake-[^/]*|test-support\.ts)$|\/(test|fixtures)\//.test(file))
          problems.push(`${file}: test code in src/`);
        const text = readFileSync(join(repoRoot, file), 'utf8');
        if (/from '(vitest|@shoal\/testing(\/[^']*)?)'/.test(text))
          problems.push(`${file}: imports test code`);
      }
    }
    expect(problems).toEqual([]);
  });
});
