// docs/client-backoff.md keeps a measured run of the client matrix
// (tests/src/client-matrix/run.ts, minutes long, outside `make test`). This
// keeps the documented table in the script's output format, so a rerun can
// replace it and the simulation in bench/ can read it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@shoal/testing/processes';
import { CASES, CLIENTS, formatTable, parseTable, rowOf } from './client-matrix/table.ts';

const doc = readFileSync(join(repoRoot, 'docs/client-backoff.md'), 'utf8');

describe('the client matrix table', () => {
  it('in docs/client-backoff.md is the script output, one row per client and answer', () => {
    const rows = parseTable(doc);
    expect(rows.map((r) => `${r.client} ${r.answer}`)).toEqual(
      CLIENTS.flatMap((c) => CASES.map((a) => `${c} ${a}`)),
    );
    expect(doc).toContain(formatTable(rows));
  });

  it('turns announce times into gaps, open-ended after the last one', () => {
    expect(rowOf('aria2', 'http-503', [1.2, 121.4, 241.1, 361.9], 420)).toEqual({
      client: 'aria2',
      answer: 'http-503',
      announces: 4,
      gaps: [
        { kind: 'seen', seconds: 120 },
        { kind: 'seen', seconds: 120 },
        { kind: 'seen', seconds: 121 },
      ],
    });
    const once = rowOf('libtorrent', 'http-failure', [0.9], 420);
    expect(once.gaps).toEqual([{ kind: 'open', atLeast: 419 }, { kind: 'none' }, { kind: 'none' }]);
    const never = formatTable([rowOf('qbittorrent', 'udp-shed', [], 420)]);
    expect(parseTable(never)[0]!.gaps.every((g) => g.kind === 'none')).toBe(true);
  });

  it('refuses a table in another format', () => {
    expect(() => parseTable(doc.replace('| gap 1 (s)', '| first gap'))).toThrow(/no table/);
    expect(() =>
      parseTable(formatTable([rowOf('aria2', 'udp-error', [1], 9)]).replace('>8', '8s')),
    ).toThrow(/not a gap/);
  });
});
