import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { clientErrors } from './errors.ts';

const docs = readFileSync(new URL('../../../docs/storage-api.md', import.meta.url), 'utf8');
const rows = docs
  .split('\n')
  .filter((line) => line.startsWith('| `API_CLIENT_ERR_'))
  .map((line) => line.split('|').map((c) => c.trim().replaceAll('`', '')));

describe('storage-api client error catalog', () => {
  it('docs/storage-api.md lists exactly the catalog, with the same messages', () => {
    expect(
      Object.fromEntries(rows.map(([, code = '', message = '']) => [code, { message }])),
    ).toEqual(clientErrors);
  });
});
