import { readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { docTableRows } from '@shoal/testing/doc-tables';
import { StoreError, isStoreError, storeErrors, type StoreErrorCode } from './errors.ts';

const docs = readFileSync(new URL('../ERRORS.md', import.meta.url), 'utf8');
const rows = docTableRows(docs, 'STORE_ERR_').map(
  ([code = '', message = '', failureReason = '', httpStatus]) => ({
    code,
    message,
    failureReason,
    httpStatus: Number(httpStatus),
  }),
);

describe('storage error catalog', () => {
  it('ERRORS.md lists exactly the catalog codes, with the same texts and statuses', () => {
    expect(rows.map((r) => r.code).sort()).toEqual(Object.keys(storeErrors).sort());
    for (const r of rows) {
      expect(storeErrors[r.code as StoreErrorCode], r.code).toEqual({
        message: r.message,
        failureReason: r.failureReason,
        httpStatus: r.httpStatus,
      });
    }
  });

  it('the code union is the catalog, and errors carry code, message and failure reason', () => {
    expectTypeOf<StoreErrorCode>().toEqualTypeOf<keyof typeof storeErrors>();
    const err = new StoreError('STORE_ERR_TIMEOUT', 'no answer from Redis within 1000 ms', {
      cause: new Error('x'),
    });
    expect(isStoreError(err)).toBe(true);
    expect(err.code).toBe('STORE_ERR_TIMEOUT');
    expect(err.message).toBe('storage operation timed out: no answer from Redis within 1000 ms');
    expect(err.failureReason).toBe('tracker storage timed out, retry later');
    expect(err.cause).toBeInstanceOf(Error);
    expect(isStoreError(new Error('STORE_ERR_TIMEOUT'))).toBe(false);
  });
});
