import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { docTableRows } from '@shoal/testing/doc-tables';
import { isProtocolError, ProtocolError, protocolErrors } from './errors.ts';
import type { ProtocolErrorCode } from './errors.ts';

const srcDir = new URL('./', import.meta.url);
const docs = readFileSync(new URL('../ERRORS.md', import.meta.url), 'utf8');

interface Row {
  code: string;
  message: string;
  failureReason: string;
  raisedBy: string[];
}

const rows: Row[] = docTableRows(docs, 'PROTO_ERR_').map(
  ([code = '', message = '', failureReason = '', raisedBy = '']) => ({
    code,
    message,
    failureReason,
    raisedBy: raisedBy.split(',').map((s) => s.trim().replaceAll('`', '')),
  }),
);

describe('error catalog', () => {
  it('ERRORS.md lists exactly the catalog codes, with the same texts', () => {
    expect(rows.map((r) => r.code).sort()).toEqual(Object.keys(protocolErrors).sort());
    for (const r of rows) {
      expect(protocolErrors[r.code as ProtocolErrorCode], r.code).toEqual({
        message: r.message,
        failureReason: r.failureReason,
      });
    }
  });

  it('every code is thrown where ERRORS.md says, and by no module it leaves out', () => {
    const modules = readdirSync(srcDir).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'errors.ts' && f !== 'index.ts',
    );
    for (const r of rows) {
      const actual = modules.filter((f) =>
        readFileSync(new URL(f, srcDir), 'utf8').includes(`'${r.code}'`),
      );
      expect(actual.length > 0 ? actual : ['gateway'], r.code).toEqual(r.raisedBy.sort());
    }
  });

  it('the ProtocolErrorCode union is the catalog keys', () => {
    expectTypeOf<ProtocolErrorCode>().toEqualTypeOf<keyof typeof protocolErrors>();
    const all: Record<ProtocolErrorCode, true> = Object.fromEntries(
      Object.keys(protocolErrors).map((k) => [k, true]),
    ) as Record<ProtocolErrorCode, true>;
    expect(Object.keys(all)).toHaveLength(rows.length);
  });
});

describe('ProtocolError', () => {
  it('carries code, failure reason with a static detail, transaction id and cause', () => {
    const cause = new Error('root');
    const err = new ProtocolError('PROTO_ERR_MISSING_PARAM', 'port', { transactionId: 42, cause });
    expect(isProtocolError(err)).toBe(true);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('PROTO_ERR_MISSING_PARAM');
    expect(err.failureReason).toBe('missing parameter: port');
    expect(err.message).toBe('required announce parameter absent: port');
    expect(err.transactionId).toBe(42);
    expect(err.cause).toBe(cause);
    const bare = new ProtocolError('PROTO_ERR_SHORT_PACKET');
    expect(bare.transactionId).toBeUndefined();
    expect(bare.failureReason).toBe('packet too short');
    expect(isProtocolError(new Error('x'))).toBe(false);
  });
});
