// Just enough PromQL reading to list the series names an expression selects,
// so a test can check every dashboard and rule against the metric catalogue.
// Not a parser: it drops strings, label matchers, ranges and grouping clauses,
// then keeps the identifiers that are not functions or keywords.

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'inf',
  'nan',
]);

/** Grafana's interval variables, replaced by a fixed window when a query runs outside Grafana. */
export const GRAFANA_RATE_INTERVAL = '$__rate_interval';

export function withRateInterval(expr: string, window: string): string {
  return expr.split(GRAFANA_RATE_INTERVAL).join(window);
}

/** Series names (metrics or recording rules) that `expr` selects. */
export function selectedNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0];
    const after = stripped.slice((match.index ?? 0) + word.length).trimStart();
    if (after.startsWith('(')) continue;
    if (KEYWORDS.has(word.toLowerCase())) continue;
    // Duration and number suffixes (5m, 1e3) never start with a letter here: ranges are gone.
    names.add(word);
  }
  return [...names].sort();
}
