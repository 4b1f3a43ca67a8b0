import { describe, expect, it } from 'vitest';
import { bind, compileQuery, rewriteNamed } from './sql.ts';
import { QUERY_CONFIG_KEYS, QUERY_NAMES, QUERY_PARAMS, defaultQueries } from './queries.ts';

describe('named parameters', () => {
  it('numbers each name once, in order of first use', () => {
    expect(rewriteNamed('SELECT @b, @a, @b FROM t WHERE x = @A')).toEqual({
      text: 'SELECT $1, $2, $1 FROM t WHERE x = $2',
      params: ['b', 'a'],
    });
  });

  it("leaves '@' alone inside strings, quoted identifiers, comments and dollar quotes", () => {
    const sql = [
      "SELECT 'mail@host', E'it\\'s @x', \"col@y\", $$ @z $$, $tag$ @w $tag$ -- @c",
      '/* @d /* nested @e */ @f */ @real',
    ].join('\n');
    const { text, params } = rewriteNamed(sql);
    expect(params).toEqual(['real']);
    expect(text).toContain("'mail@host'");
    expect(text).toContain('$$ @z $$');
    expect(text.endsWith('$1')).toBe(true);
  });

  it('leaves PostgreSQL operators such as @> and @@ alone', () => {
    expect(rewriteNamed("SELECT a @> b, v @@ to_tsquery('x'), @n").params).toEqual(['n']);
  });

  it('reports unknown and missing parameters with the query name', () => {
    const { problems } = compileQuery(
      'PG_QUERY_KV_GET',
      'SELECT value FROM kv WHERE key = @key AND ns = @namespace',
      {
        allowed: ['context', 'key'],
        required: ['context', 'key'],
      },
    );
    expect(problems).toEqual([
      expect.stringContaining('@namespace'),
      expect.stringContaining('missing required parameter @context'),
    ]);
  });

  it('binds values in $n order and absent names as NULL', () => {
    const { query } = compileQuery('Q', 'SELECT @x, @y, @x', { allowed: ['x', 'y'], required: [] });
    expect(bind(query, { x: 1 })).toEqual([1, null]);
  });

  it('every default query compiles cleanly in both dialects', () => {
    for (const dialect of ['postgres', 'cockroach'] as const) {
      const sql = defaultQueries(dialect);
      for (const name of QUERY_NAMES) {
        expect(
          compileQuery(QUERY_CONFIG_KEYS[name], sql[name], QUERY_PARAMS[name]).problems,
        ).toEqual([]);
      }
    }
  });
});
