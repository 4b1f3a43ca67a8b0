// Named parameters (@info_hash) in operator-supplied SQL, compiled to the
// positional $n that the PostgreSQL wire protocol takes. Quoted text,
// identifiers, dollar-quoted bodies and comments are skipped, so an '@' inside
// them is never taken for a parameter. MoChi's configurable queries use the
// same @name spelling.

export interface CompiledQuery {
  /** The query name in config (e.g. PG_QUERY_ANNOUNCE), for error reports. */
  readonly key: string;
  /** SQL with $1..$n. */
  readonly text: string;
  /** Parameter names in $n order: params[i] is bound to $(i+1). */
  readonly params: readonly string[];
}

export interface ParamSpec {
  readonly allowed: readonly string[];
  readonly required: readonly string[];
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;

/** The @names a query uses, each once, in order of first use; with the SQL rewritten to $n. */
export function rewriteNamed(sql: string): { text: string; params: string[] } {
  const params: string[] = [];
  const index = new Map<string, number>();
  let out = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (c === "'") {
      // E'...' strings let backslash escape the quote; standard strings double it.
      const escapes =
        i > 0 &&
        /[eE]/.test(sql[i - 1] as string) &&
        (i < 2 || !IDENT_PART.test(sql[i - 2] as string));
      const end = skipQuoted(sql, i, "'", escapes);
      out += sql.slice(i, end);
      i = end;
    } else if (c === '"') {
      const end = skipQuoted(sql, i, '"', false);
      out += sql.slice(i, end);
      i = end;
    } else if (c === '-' && next === '-') {
      const nl = sql.indexOf('\n', i);
      const end = nl === -1 ? n : nl;
      out += sql.slice(i, end);
      i = end;
    } else if (c === '/' && next === '*') {
      const end = skipBlockComment(sql, i);
      out += sql.slice(i, end);
      i = end;
    } else if (c === '$' && (i === 0 || !IDENT_PART.test(sql[i - 1] as string))) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag === null) {
        out += c;
        i++;
        continue;
      }
      const close = sql.indexOf(tag[0], i + tag[0].length);
      const end = close === -1 ? n : close + tag[0].length;
      out += sql.slice(i, end);
      i = end;
    } else if (
      c === '@' &&
      next !== undefined &&
      IDENT_START.test(next) &&
      (i === 0 || sql[i - 1] !== '@')
    ) {
      let j = i + 1;
      while (j < n && IDENT_PART.test(sql[j] as string)) j++;
      const name = sql.slice(i + 1, j).toLowerCase();
      let pos = index.get(name);
      if (pos === undefined) {
        params.push(name);
        pos = params.length;
        index.set(name, pos);
      }
      out += `$${pos}`;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return { text: out, params };
}

function skipQuoted(sql: string, start: number, quote: string, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (backslashEscapes && c === '\\') {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (sql[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return sql.length;
}

/** PostgreSQL block comments nest. */
function skipBlockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return sql.length;
}

/** Compiles one query; returns the problems (unknown / missing parameters) named after the query's key. */
export function compileQuery(
  key: string,
  sql: string,
  spec: ParamSpec,
): { query: CompiledQuery; problems: string[] } {
  const { text, params } = rewriteNamed(sql);
  const problems: string[] = [];
  const allowed = new Set(spec.allowed);
  const unknown = params.filter((p) => !allowed.has(p));
  if (unknown.length > 0) {
    problems.push(
      `unknown parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((p) => `@${p}`).join(', ')} (allowed: ${spec.allowed.map((p) => `@${p}`).join(', ')})`,
    );
  }
  const used = new Set(params);
  const missing = spec.required.filter((p) => !used.has(p));
  if (missing.length > 0) {
    problems.push(
      `missing required parameter${missing.length > 1 ? 's' : ''} ${missing.map((p) => `@${p}`).join(', ')}`,
    );
  }
  if (text.trim() === '') problems.push('is empty');
  return { query: { key, text, params }, problems };
}

/** Values in $n order for a compiled query; names the query accepts but the caller lacks become NULL. */
export function bind(query: CompiledQuery, values: Readonly<Record<string, unknown>>): unknown[] {
  const out = new Array<unknown>(query.params.length);
  for (let i = 0; i < query.params.length; i++) out[i] = values[query.params[i] as string] ?? null;
  return out;
}
