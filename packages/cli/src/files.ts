// Import files. Lists: one value per line (an info hash or a client prefix),
// optionally followed by whitespace and a note; blank lines and lines
// starting with `#` are skipped. Passkeys: CSV `passkey,user,expiresAt`
// (header optional, RFC 4180 quoting, expiresAt ISO 8601 or empty = never).
// Each entry remembers its line so the server's problems (by index) can be
// shown by line.
import { CliError } from './errors.ts';

export interface Parsed<T> {
  entries: T[];
  /** 1-based line of each entry. */
  lines: number[];
}

/** Lines with content (trimmed), with their 1-based numbers: blank lines and # comments skipped. */
export function contentLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const t = raw.trim();
      if (t !== '' && !t.startsWith('#')) out.push({ line: i + 1, text: t });
    });
  return out;
}

export function parseValueFile(text: string): Parsed<{ value: string; note?: string }> {
  const entries: Array<{ value: string; note?: string }> = [];
  const lines: number[] = [];
  for (const { line, text: t } of contentLines(text)) {
    const m = /^(\S+)(?:\s+(.*))?$/.exec(t);
    const value = m?.[1] ?? t;
    const note = m?.[2]?.trim();
    entries.push(note === undefined || note === '' ? { value } : { value, note });
    lines.push(line);
  }
  return { entries, lines };
}

/** One CSV record (no newlines inside fields). */
export function splitCsv(line: string, lineNumber: number): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length)
          throw new CliError('CLI_ERR_FILE', `line ${lineNumber}: unterminated quoted field`);
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i];
        i++;
      }
      if (i < line.length && line[i] !== ',') {
        throw new CliError('CLI_ERR_FILE', `line ${lineNumber}: text after a closing quote`);
      }
    } else {
      const end = line.indexOf(',', i);
      field = line.slice(i, end === -1 ? line.length : end);
      i = end === -1 ? line.length : end;
    }
    fields.push(field.trim());
    if (i >= line.length) return fields;
    i++; // the comma
  }
}

const COLUMNS = ['passkey', 'user', 'expiresAt'] as const;
type Column = (typeof COLUMNS)[number];
const HEADER_NAMES: Record<string, Column> = {
  passkey: 'passkey',
  user: 'user',
  expiresat: 'expiresAt',
  expires_at: 'expiresAt',
  expires: 'expiresAt',
};

export interface PasskeyRow {
  passkey: string;
  user?: string;
  expiresAt?: string;
}

export function parsePasskeyCsv(text: string): Parsed<PasskeyRow> {
  const entries: PasskeyRow[] = [];
  const lines: number[] = [];
  let columns: readonly Column[] = COLUMNS;
  contentLines(text).forEach(({ line, text: t }, i) => {
    const fields = splitCsv(t, line);
    // A header names the passkey column (a passkey is 8+ characters, so "passkey" is never one).
    if (i === 0 && fields.some((f) => f.toLowerCase() === 'passkey')) {
      const named = fields.map((f) => HEADER_NAMES[f.toLowerCase()]);
      const bad = fields.find((_, j) => named[j] === undefined);
      if (bad !== undefined) {
        throw new CliError(
          'CLI_ERR_FILE',
          `line ${line}: unknown column ${JSON.stringify(bad)} (columns: passkey,user,expiresAt)`,
        );
      }
      columns = named as Column[];
      return;
    }
    if (fields.length > columns.length) {
      throw new CliError(
        'CLI_ERR_FILE',
        `line ${line}: ${fields.length} fields, expected at most ${columns.length} (${columns.join(',')})`,
      );
    }
    const row: Partial<Record<Column, string>> = {};
    fields.forEach((f, j) => {
      const column = columns[j];
      if (column !== undefined && f !== '') row[column] = f;
    });
    if (row.passkey === undefined) throw new CliError('CLI_ERR_FILE', `line ${line}: no passkey`);
    entries.push({
      passkey: row.passkey,
      ...(row.user === undefined ? {} : { user: row.user }),
      ...(row.expiresAt === undefined ? {} : { expiresAt: row.expiresAt }),
    });
    lines.push(line);
  });
  return { entries, lines };
}
