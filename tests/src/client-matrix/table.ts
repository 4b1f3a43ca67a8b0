// The client matrix's result table (docs/client-backoff.md): one row per
// client and answer, the delays between its consecutive announces. The
// format is stable: docs/client-backoff.md holds a measured copy, the
// simulation in bench/ reads it, and client-matrix.test.ts checks the copy
// against this parser.

export const CLIENTS = ['libtorrent', 'qbittorrent', 'transmission', 'aria2'] as const;
export type ClientId = (typeof CLIENTS)[number];

export const CASES = [
  'http-failure',
  'http-failure-interval',
  'http-503',
  'http-shed',
  'udp-error',
  'udp-silence',
  'udp-shed',
  'gateway-http-outage',
] as const;
export type CaseId = (typeof CASES)[number];

/** Re-announce gaps reported per row. */
export const GAPS = 3;

export const HEADER = [
  'client',
  'answer',
  'announces',
  ...Array.from({ length: GAPS }, (_, i) => `gap ${i + 1} (s)`),
] as const;

/**
 * A gap in whole seconds, or `>N` when the window closed N seconds after the
 * last announce without another one, or `-` when an earlier gap was already
 * open-ended (or the client never announced).
 */
export type Gap =
  { kind: 'seen'; seconds: number } | { kind: 'open'; atLeast: number } | { kind: 'none' };

export interface Row {
  client: ClientId;
  answer: CaseId;
  /** Announces the tracker received in the window (retransmissions included). */
  announces: number;
  gaps: Gap[];
}

/** Rows from announce times (seconds since the run started) and the window's end. */
export function rowOf(
  client: ClientId,
  answer: CaseId,
  times: readonly number[],
  end: number,
): Row {
  const gaps: Gap[] = [];
  for (let i = 1; i <= GAPS; i++) {
    const prev = times[i - 1];
    const next = times[i];
    if (prev === undefined) gaps.push({ kind: 'none' });
    else if (next === undefined) {
      gaps.push({ kind: 'open', atLeast: Math.floor(end - prev) });
      while (gaps.length < GAPS) gaps.push({ kind: 'none' });
      break;
    } else gaps.push({ kind: 'seen', seconds: Math.round(next - prev) });
  }
  return { client, answer, announces: times.length, gaps };
}

function gapText(g: Gap): string {
  if (g.kind === 'seen') return String(g.seconds);
  if (g.kind === 'open') return `>${g.atLeast}`;
  return '-';
}

function parseGap(text: string): Gap {
  if (text === '-') return { kind: 'none' };
  if (/^>\d+$/.test(text)) return { kind: 'open', atLeast: Number(text.slice(1)) };
  if (/^\d+$/.test(text)) return { kind: 'seen', seconds: Number(text) };
  throw new Error(`not a gap: ${JSON.stringify(text)}`);
}

/** The markdown table, columns padded so prettier leaves it as it is. */
export function formatTable(rows: readonly Row[]): string {
  const cells = [
    [...HEADER],
    ...rows.map((r) => [r.client, r.answer, String(r.announces), ...r.gaps.map(gapText)]),
  ];
  const widths = HEADER.map((_, c) => Math.max(3, ...cells.map((row) => row[c]!.length)));
  const line = (row: readonly string[]) =>
    `| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  const rule = `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`;
  return [line(cells[0]!), rule, ...cells.slice(1).map(line)].join('\n');
}

/** The rows of the first matrix table in `markdown`; throws on anything not in this format. */
export function parseTable(markdown: string): Row[] {
  const lines = markdown.split('\n');
  const split = (l: string) =>
    l
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim());
  const start = lines.findIndex(
    (l) => l.startsWith('|') && split(l).join('|') === HEADER.join('|'),
  );
  if (start === -1) throw new Error(`no table with the header ${HEADER.join(' | ')}`);
  const rows: Row[] = [];
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith('|')) break;
    const [client = '', answer = '', announces = '', ...gaps] = split(l);
    if (!(CLIENTS as readonly string[]).includes(client))
      throw new Error(`unknown client ${client}`);
    if (!(CASES as readonly string[]).includes(answer)) throw new Error(`unknown answer ${answer}`);
    if (!/^\d+$/.test(announces)) throw new Error(`announces not a count: ${announces}`);
    if (gaps.length !== GAPS) throw new Error(`row with ${gaps.length} gaps: ${l}`);
    rows.push({
      client: client as ClientId,
      answer: answer as CaseId,
      announces: Number(announces),
      gaps: gaps.map(parseGap),
    });
  }
  return rows;
}
