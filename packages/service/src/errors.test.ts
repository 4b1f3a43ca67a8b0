import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { serviceErrors } from './errors.ts';

const docs = readFileSync(new URL('../../../docs/observability.md', import.meta.url), 'utf8');
const rows = docs
  .split('\n')
  .filter((line) => /^\| `SERVICE_ERR_/.test(line))
  .map((line) => {
    const [code = '', message = ''] = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    return { code: code.replaceAll('`', ''), message };
  });

describe('@shoal/service error catalog', () => {
  it('docs/observability.md lists exactly the catalog, with the same messages', () => {
    expect(rows.map((r) => r.code).sort()).toEqual(Object.keys(serviceErrors).sort());
    for (const r of rows) {
      expect(serviceErrors[r.code as keyof typeof serviceErrors], r.code).toEqual({
        message: r.message,
      });
    }
  });
});
