// Comments and docs cite what they rely on inside this repository: a docs/
// page, a BEP or RFC, or an upstream project's public issue (owner/project#N).
// Never a file outside the repository nor this project's own tracker numbers
// (docs/conventions.md "Comments"): a reader of the repository alone must be
// able to follow every citation.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const self = 'tests/src/comment-citations.test.ts';

const outsideFiles = new RegExp(
  ['STYLE', 'ARCHITECTURE'].map((n) => `\\b${n}\\.md\\b`).join('|') + '|FIELD' + '-NOTES',
);
// A tracker number has at most 5 digits, which keeps colours such as #000000 out.
const trackerNumber = new RegExp('\\b[Ii]ssue #?\\d+\\b|(?<![\\w/.&-])#\\d{1,5}\\b');
const sharedDir = new RegExp('\\.\\./' + 'shared\\b');

/** Where the benchmark harness outside the repository is a documented input (SHOAL_SHARED), not a citation. */
const harnessUsers = (path: string) => path.startsWith('bench/') || path === 'BENCHMARKS.md';

function trackedTextFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: repoRoot, encoding: 'utf8' });
  return out
    .split('\0')
    .filter((p) => p !== '' && p !== 'pnpm-lock.yaml' && p !== self) // this file names the forms it forbids
    .filter((p) => /\.(ts|js|sh|ya?ml|json|md|conf|tpl|txt)$|(^|\/)(Dockerfile|Makefile)$/.test(p));
}

describe('citations in comments and docs', () => {
  const files = trackedTextFiles();

  it('finds the files it checks', () => {
    expect(files).toContain('Dockerfile');
    expect(files).toContain('docs/decisions.md');
    expect(files.filter((p) => p.endsWith('.ts')).length).toBeGreaterThan(100);
  });

  it('name no file outside the repository and no tracker number', () => {
    const found: string[] = [];
    for (const path of files) {
      const lines = readFileSync(join(repoRoot, path), 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (
          outsideFiles.test(line) ||
          trackerNumber.test(line) ||
          (!harnessUsers(path) && sharedDir.test(line))
        ) {
          found.push(`${path}:${i + 1}: ${line.trim()}`);
        }
      });
    }
    // Fix: write what the comment relies on into docs/ and cite that page.
    expect(found).toEqual([]);
  });

  it('recognises the forms it forbids and allows upstream references', () => {
    const bad = [
      '// see STYLE.md',
      '// (issue 5)',
      '// Issue 8: x',
      '# FIELD' + '-NOTES',
      'fixes #12',
      '// ../shared/x',
    ];
    expect(
      bad.filter((l) => outsideFiles.test(l) || trackerNumber.test(l) || sharedDir.test(l)),
    ).toEqual(bad);
    const good = [
      '// chihaya#417',
      '// kubernetes-client/javascript#828',
      '// docs/decisions.md "Sources"',
      '#000000',
    ];
    expect(
      good.filter((l) => outsideFiles.test(l) || trackerNumber.test(l) || sharedDir.test(l)),
    ).toEqual([]);
  });
});
