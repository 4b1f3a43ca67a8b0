import { readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { docTableRows } from '@shoal/testing/doc-tables';
import { isPolicyError, PolicyError, policyErrors } from './errors.ts';
import type { PolicyErrorCode } from './errors.ts';

const docs = readFileSync(new URL('../ERRORS.md', import.meta.url), 'utf8');

interface Row {
  code: string;
  failureReason: string;
  httpStatus: number;
  message: string;
}

const rows: Row[] = docTableRows(docs, 'POLICY_ERR_').map(
  ([code = '', failureReason = '', httpStatus, message = '']) => ({
    code,
    failureReason,
    httpStatus: Number(httpStatus),
    message,
  }),
);

describe('error catalog', () => {
  it('ERRORS.md lists exactly the catalog codes, with the same texts and statuses', () => {
    expect(rows.map((r) => r.code).sort()).toEqual(Object.keys(policyErrors).sort());
    for (const r of rows) {
      const entry = policyErrors[r.code as PolicyErrorCode];
      expect(
        {
          message: entry.message,
          failureReason: entry.failureReason,
          httpStatus: entry.httpStatus,
        },
        r.code,
      ).toEqual({ message: r.message, failureReason: r.failureReason, httpStatus: r.httpStatus });
    }
  });

  it('the PolicyErrorCode union is the catalog keys', () => {
    expectTypeOf<PolicyErrorCode>().toEqualTypeOf<keyof typeof policyErrors>();
    expect(new Set(rows.map((r) => r.code)).size).toBe(rows.length);
  });

  it("admin input errors are 400; only NOT_LOADED and JWT_KEYS_UNAVAILABLE are the tracker's fault", () => {
    const ours = new Set(['POLICY_ERR_NOT_LOADED', 'POLICY_ERR_JWT_KEYS_UNAVAILABLE']);
    for (const [code, e] of Object.entries(policyErrors)) {
      if (code.startsWith('POLICY_ERR_BAD_')) expect(e.httpStatus, code).toBe(400);
      expect(e.ours, code).toBe(ours.has(code));
    }
  });
});

describe('PolicyError', () => {
  it('carries code, detail, cause, problems and the catalog texts', () => {
    const cause = new Error('root');
    const problems = [{ index: 2, code: 'POLICY_ERR_BAD_PASSKEY' as const, value: 'x' }];
    const err = new PolicyError('POLICY_ERR_BAD_PASSKEY', '1 of 3 entries are bad', {
      cause,
      problems,
    });
    expect(isPolicyError(err)).toBe(true);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('PolicyError');
    expect(err.code).toBe('POLICY_ERR_BAD_PASSKEY');
    expect(err.message).toBe('passkey must be 8-128 of [A-Za-z0-9_-]: 1 of 3 entries are bad');
    expect(err.cause).toBe(cause);
    expect(err.problems).toEqual(problems);
    expect(err.httpStatus).toBe(400);
    const bare = new PolicyError('POLICY_ERR_RATE_LIMITED');
    expect(bare.message).toBe('per-address request rate exceeded');
    expect(bare.failureReason).toBe('too many requests from your address, slow down');
    expect(bare.httpStatus).toBe(429);
    expect(bare.problems).toEqual([]);
    expect(isPolicyError(new Error('x'))).toBe(false);
  });
});
