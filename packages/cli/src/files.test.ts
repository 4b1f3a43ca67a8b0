// Import files and durations as operators write them (docs/policy.md "CLI").
import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.ts';
import { CliError } from './errors.ts';
import { parsePasskeyCsv, parseValueFile, splitCsv } from './files.ts';
import { formatTable } from './table.ts';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    return err instanceof CliError ? err.code : 'not a CliError';
  }
  return undefined;
}

describe('parseDuration', () => {
  it('takes s, m, h, d', () => {
    expect(parseDuration('90s', '--ttl')).toBe(90);
    expect(parseDuration('30m', '--ttl')).toBe(1800);
    expect(parseDuration('12h', '--ttl')).toBe(43_200);
    expect(parseDuration('30d', '--ttl')).toBe(2_592_000);
  });
  it('refuses zero, no unit, other units, fractions and signs with a usage error', () => {
    for (const bad of ['0s', '30', '2w', '1.5h', '-5m', 'd', ''])
      expect(
        codeOf(() => parseDuration(bad, '--ttl')),
        bad,
      ).toBe('CLI_ERR_USAGE');
  });
});

describe('parseValueFile', () => {
  it('one value per line, optional note, comments and blank lines skipped, CRLF and BOM tolerated, lines remembered', () => {
    const text = '\uFEFF# list\r\naaaa\r\n\r\n  -TR2940  Transmission 2.94 \r\n# end\r\nbbbb\n';
    expect(parseValueFile(text)).toEqual({
      entries: [
        { value: 'aaaa' },
        { value: '-TR2940', note: 'Transmission 2.94' },
        { value: 'bbbb' },
      ],
      lines: [2, 4, 6],
    });
  });
  it('an empty file imports nothing', () => {
    expect(parseValueFile('# nothing\n\n')).toEqual({ entries: [], lines: [] });
  });
});

describe('passkey CSV', () => {
  it('splits RFC 4180 quoted fields', () => {
    expect(splitCsv('a,"b, c","say ""hi""",', 1)).toEqual(['a', 'b, c', 'say "hi"', '']);
    expect(codeOf(() => splitCsv('a,"open', 3))).toBe('CLI_ERR_FILE');
    expect(codeOf(() => splitCsv('"a"b', 3))).toBe('CLI_ERR_FILE');
  });
  it('header optional and in any order; empty user and expiry are left out', () => {
    const withHeader = parsePasskeyCsv(
      'expiresAt,passkey\n2030-01-01T00:00:00Z,key-00000001\n,key-00000002\n',
    );
    expect(withHeader).toEqual({
      entries: [
        { passkey: 'key-00000001', expiresAt: '2030-01-01T00:00:00Z' },
        { passkey: 'key-00000002' },
      ],
      lines: [2, 3],
    });
    expect(parsePasskeyCsv('key-00000003,,\nkey-00000004,eve\n').entries).toEqual([
      { passkey: 'key-00000003' },
      { passkey: 'key-00000004', user: 'eve' },
    ]);
  });
  it('unknown columns, too many fields and rows without a passkey are file errors', () => {
    expect(codeOf(() => parsePasskeyCsv('passkey,email\n'))).toBe('CLI_ERR_FILE');
    expect(codeOf(() => parsePasskeyCsv('k,u,2030-01-01,x\n'))).toBe('CLI_ERR_FILE');
    expect(codeOf(() => parsePasskeyCsv(',alice\n'))).toBe('CLI_ERR_FILE');
  });
});

describe('formatTable', () => {
  it('aligns columns, right-aligns numbers, trims trailing spaces', () => {
    expect(
      formatTable(
        [
          ['NAME', 'N', 'NOTE'],
          ['a', '100', ''],
          ['long name', '7', 'x'],
        ],
        ['left', 'right'],
      ),
    ).toBe('NAME         N  NOTE\na          100\nlong name    7  x\n');
  });
});
