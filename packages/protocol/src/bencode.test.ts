import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bdecode, bencode } from './bencode.ts';
import type { BencodeValue } from './bencode.ts';
import { codeOf } from '../test/thrown.ts';
import type { ProtocolErrorCode } from './errors.ts';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('bencode golden bytes', () => {
  it('encodes the BEP 3 examples', () => {
    expect(bencode('spam').toString('latin1')).toBe('4:spam');
    expect(bencode('').toString('latin1')).toBe('0:');
    expect(bencode(3).toString('latin1')).toBe('i3e');
    expect(bencode(-3).toString('latin1')).toBe('i-3e');
    expect(bencode(0).toString('latin1')).toBe('i0e');
    expect(bencode(['spam', 'eggs']).toString('latin1')).toBe('l4:spam4:eggse');
    expect(bencode({ cow: 'moo', spam: 'eggs' }).toString('latin1')).toBe(
      'd3:cow3:moo4:spam4:eggse',
    );
    expect(bencode({ spam: ['a', 'b'] }).toString('latin1')).toBe('d4:spaml1:a1:bee');
  });

  it('sorts keys by raw bytes, not by insertion or locale', () => {
    const m = new Map<string | Buffer, string>([
      ['b', '1'],
      [Buffer.from([0xff]), '2'],
      ['B', '3'],
      ['a\u0000', '4'],
      ['a', '5'],
    ]);
    expect(bencode(m)).toEqual(
      Buffer.concat([b('d1:B1:31:a1:52:a\u00001:41:b1:11:'), Buffer.from([0xff]), b('1:2e')]),
    );
  });

  it('writes strings as UTF-8 with their byte length, and bigints exactly', () => {
    expect(bencode('é')).toEqual(Buffer.from([0x32, 0x3a, 0xc3, 0xa9]));
    expect(bencode(2n ** 64n).toString('latin1')).toBe('i18446744073709551616e');
  });

  it('leaves out object properties whose value is undefined', () => {
    expect(bencode({ a: 1, b: undefined }).toString('latin1')).toBe('d1:ai1ee');
  });

  it('refuses values bencode cannot carry', () => {
    expect(codeOf(() => bencode(1.5))).toBe('PROTO_ERR_BENCODE_UNSUPPORTED_TYPE');
    expect(codeOf(() => bencode(null as never))).toBe('PROTO_ERR_BENCODE_UNSUPPORTED_TYPE');
    expect(codeOf(() => bencode(true as never))).toBe('PROTO_ERR_BENCODE_UNSUPPORTED_TYPE');
    expect(codeOf(() => bencode({ '\u0100': 1 }))).toBe('PROTO_ERR_BENCODE_BAD_KEY');
    expect(
      codeOf(() =>
        bencode(
          new Map<string | Buffer, number>([
            ['a', 1],
            [Buffer.from('a'), 2],
          ]),
        ),
      ),
    ).toBe('PROTO_ERR_BENCODE_DUPLICATE_KEY');
  });
});

describe('bdecode', () => {
  it('decodes to Buffers, numbers, bigints, arrays and null-prototype dictionaries', () => {
    const v = bdecode(b('d3:agei-42e3:bigi9007199254740993e4:listli1e0:e4:name5:shoale')) as Record<
      string,
      BencodeValue
    >;
    expect(Object.getPrototypeOf(v)).toBeNull();
    expect(v.age).toBe(-42);
    expect(v.big).toBe(9007199254740993n);
    expect(v.list).toEqual([1, Buffer.alloc(0)]);
    expect(v.name).toEqual(Buffer.from('shoal'));
  });

  it('keeps binary keys byte for byte, __proto__ included', () => {
    const v = bdecode(
      Buffer.concat([b('d9:__proto__i1e2:'), Buffer.from([0xc3, 0xa9]), b('i2ee')]),
    ) as Record<string, BencodeValue>;
    expect(Object.keys(v)).toEqual(['__proto__', '\u00c3\u00a9']);
    expect(v['__proto__']).toBe(1);
  });

  it('returns copies, not views of the input', () => {
    const input = b('3:abc');
    const out = bdecode(input) as Buffer;
    input[2] = 0x7a;
    expect(out.toString()).toBe('abc');
  });

  it.each<[string, ProtocolErrorCode]>([
    ['', 'PROTO_ERR_BENCODE_UNEXPECTED_END'],
    ['i1', 'PROTO_ERR_BENCODE_UNEXPECTED_END'],
    ['4:spa', 'PROTO_ERR_BENCODE_UNEXPECTED_END'],
    ['l', 'PROTO_ERR_BENCODE_UNEXPECTED_END'],
    ['d1:a', 'PROTO_ERR_BENCODE_UNEXPECTED_END'],
    ['i1ei2e', 'PROTO_ERR_BENCODE_TRAILING_DATA'],
    ['4:spamx', 'PROTO_ERR_BENCODE_TRAILING_DATA'],
    ['x', 'PROTO_ERR_BENCODE_BAD_TOKEN'],
    ['-1:a', 'PROTO_ERR_BENCODE_BAD_TOKEN'],
    ['ie', 'PROTO_ERR_BENCODE_BAD_INTEGER'],
    ['i-e', 'PROTO_ERR_BENCODE_BAD_INTEGER'],
    ['i-0e', 'PROTO_ERR_BENCODE_BAD_INTEGER'],
    ['i03e', 'PROTO_ERR_BENCODE_BAD_INTEGER'],
    ['i1.5e', 'PROTO_ERR_BENCODE_BAD_INTEGER'],
    ['i+1e', 'PROTO_ERR_BENCODE_BAD_INTEGER'],
    [`i${'9'.repeat(300)}e`, 'PROTO_ERR_BENCODE_BAD_INTEGER'],
    ['03:abc', 'PROTO_ERR_BENCODE_BAD_LENGTH'],
    ['3x:abc', 'PROTO_ERR_BENCODE_BAD_LENGTH'],
    ['99999999999999999999999:a', 'PROTO_ERR_BENCODE_BAD_LENGTH'],
    ['di1ei2ee', 'PROTO_ERR_BENCODE_BAD_KEY'],
    ['d1:bi1e1:ai2ee', 'PROTO_ERR_BENCODE_UNSORTED_KEYS'],
    ['d1:ai1e1:ai2ee', 'PROTO_ERR_BENCODE_DUPLICATE_KEY'],
  ])('rejects %j with %s', (input, code) => {
    expect(codeOf(() => bdecode(b(input)))).toBe(code);
  });

  it('checks a string length against the input before allocating it', () => {
    // 4 GiB claimed, 1 byte present: must fail on the length, not on memory.
    expect(codeOf(() => bdecode(b('4294967296:a')))).toBe('PROTO_ERR_BENCODE_BAD_LENGTH');
  });

  it('bounds nesting at 64 by default and honours maxDepth', () => {
    const nested = (n: number) => b('l'.repeat(n) + 'e'.repeat(n));
    expect(bdecode(nested(64))).toBeDefined();
    expect(codeOf(() => bdecode(nested(65)))).toBe('PROTO_ERR_BENCODE_TOO_DEEP');
    expect(codeOf(() => bdecode(nested(100_000)))).toBe('PROTO_ERR_BENCODE_TOO_DEEP');
    expect(codeOf(() => bdecode(nested(3), { maxDepth: 2 }))).toBe('PROTO_ERR_BENCODE_TOO_DEEP');
    expect(bdecode(b('i1e'), { maxDepth: 0 })).toBe(1);
    expect(codeOf(() => bdecode(b('i1e'), { maxDepth: 1e9 }))).toBe('PROTO_ERR_BAD_CONFIG');
  });
});

// Values in the decoder's normal form: integers as number when safe, else bigint.
const bencodeValue: fc.Arbitrary<BencodeValue> = fc.letrec<{ value: BencodeValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc
      .bigInt({ min: -(2n ** 70n), max: 2n ** 70n })
      .filter((n) => n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)),
    fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
    fc.array(tie('value'), { maxLength: 5 }),
    fc
      .dictionary(
        fc.uint8Array({ maxLength: 6 }).map((u) => Buffer.from(u).toString('latin1')),
        tie('value'),
        { maxKeys: 5 },
      )
      .map((d) => Object.assign(Object.create(null) as Record<string, BencodeValue>, d)),
  ),
})).value;

describe('bencode properties', () => {
  it('decode(encode(x)) = x', () => {
    fc.assert(
      fc.property(bencodeValue, (v) => {
        expect(bdecode(bencode(v))).toEqual(v);
      }),
      { numRuns: 500 },
    );
  });

  it('encode(decode(bytes)) = bytes for every accepted input (canonical form only)', () => {
    fc.assert(
      fc.property(bencodeValue, (v) => {
        const bytes = bencode(v);
        expect(bencode(bdecode(bytes))).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });
});
