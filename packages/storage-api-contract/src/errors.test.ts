import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { docTableRows } from '@shoal/testing/doc-tables';
import { clientErrors } from './errors.ts';

const docs = readFileSync(new URL('../../../docs/storage-api.md', import.meta.url), 'utf8');
const rows = docTableRows(docs, 'API_CLIENT_ERR_');

describe('storage-api client error catalog', () => {
  it('docs/storage-api.md lists exactly the catalog, with the same messages', () => {
    expect(
      Object.fromEntries(rows.map(([code = '', message = '']) => [code, { message }])),
    ).toEqual(clientErrors);
  });
});
