import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { StoreError } from '@shoal/storage';
import { ApiError, apiErrors, errorAnswer } from './errors.ts';

const docs = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const rows = docs
  .split('\n')
  .filter((line) => /^\| `(RPC|KV)_ERR_/.test(line))
  .map((line) => {
    const [code = '', status = '', message = ''] = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    return { code: code.replaceAll('`', ''), status: Number(status), message };
  });

describe('storage-api error catalog', () => {
  it('README.md lists exactly the catalog, with the same statuses and messages', () => {
    expect(rows.map((r) => r.code).sort()).toEqual(Object.keys(apiErrors).sort());
    for (const r of rows) {
      expect(apiErrors[r.code as keyof typeof apiErrors], r.code).toEqual({
        message: r.message,
        httpStatus: r.status,
      });
    }
  });

  it('answers API, store and unknown errors with a code and a status', () => {
    expect(errorAnswer(new ApiError('KV_ERR_NOT_FOUND'))).toEqual({
      status: 404,
      body: { code: 'KV_ERR_NOT_FOUND', message: 'no such key' },
    });
    expect(errorAnswer(new StoreError('STORE_ERR_TIMEOUT'))).toMatchObject({
      status: 504,
      body: { code: 'STORE_ERR_TIMEOUT' },
    });
    // Unknown throws never leak their message.
    expect(errorAnswer(new Error('password=hunter2'))).toEqual({
      status: 500,
      body: { code: 'RPC_ERR_INTERNAL', message: 'internal error' },
    });
  });
});
