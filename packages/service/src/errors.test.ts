import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { docTableRows } from '@shoal/testing/doc-tables';
import { serviceErrors } from './errors.ts';

const docs = readFileSync(new URL('../../../docs/observability.md', import.meta.url), 'utf8');
const rows = docTableRows(docs, 'SERVICE_ERR_').map(([code = '', message = '']) => ({
  code,
  message,
}));

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
