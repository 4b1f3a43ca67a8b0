// Every error code the code base answers or throws is in a package's errors.ts
// catalogue (docs/conventions.md "Errors"), so callers and operators can look
// each one up. Codes of libraries (fastify's FST_ERR_*, undici's UND_ERR_*,
// Node's ERR_*, ws's WS_ERR_*) are matched on, never raised, and are not ours to list.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const foreign = /^(FST_ERR_|UND_ERR_|WS_ERR_|ERR_)/;

function tracked(pattern: RegExp): string[] {
  return execFileSync('git', ['ls-files', '-z', '*.ts'], { cwd: repoRoot, encoding: 'utf8' })
    .split('\0')
    .filter((p) => pattern.test(p));
}

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');

describe('error codes', () => {
  // A catalogue is an object of codes declared `as const satisfies Record<...>`,
  // in a package's errors.ts (or, for storage-api's answers, its contract).
  const catalogued = new Set(
    tracked(/\.ts$/)
      .filter((p) => !p.endsWith('.test.ts'))
      .flatMap((p) =>
        [...read(p).matchAll(/^export const \w+ = \{\n([\s\S]*?)\n\} as const satisfies Record</gm)]
          .flatMap((block) => [...block[1]!.matchAll(/^ {2}([A-Z][A-Z0-9]*_ERR_[A-Z0-9_]+):/gm)])
          .map((m) => m[1]!),
      ),
  );

  it('are read from the catalogues', () => {
    expect(catalogued).toContain('STORE_ERR_UNAVAILABLE');
    expect(catalogued).toContain('PROTO_ERR_SHORT_PACKET');
    expect(catalogued).toContain('RPC_ERR_VERSION');
    expect(catalogued.size).toBeGreaterThan(50);
  });

  it('used in sources are all catalogued', () => {
    const unknown = new Set<string>();
    for (const path of tracked(/\.ts$/)) {
      if (path.endsWith('.test.ts')) continue; // tests may name codes that must not exist
      for (const m of read(path).matchAll(/['`"]([A-Z][A-Z0-9]*_ERR_[A-Z0-9_]*[A-Z0-9])['`"]/g)) {
        const code = m[1]!;
        if (!foreign.test(code) && !catalogued.has(code)) unknown.add(`${path}: ${code}`);
      }
      for (const m of read(path).matchAll(/\bcode: '([A-Z][A-Z0-9_]+)'/g)) {
        const code = m[1]!;
        if (!foreign.test(code) && !catalogued.has(code)) unknown.add(`${path}: ${code}`);
      }
    }
    expect([...unknown]).toEqual([]);
  });
});
