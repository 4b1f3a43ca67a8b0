// Bencoding (BEP 3). The tracker only produces bencode on its hot paths
// (http.ts assembles those bytes directly); this generic codec serves the
// rarer answers, the tests and the load tools, and decodes untrusted input
// strictly.
//
// Decoded representation:
// - byte strings -> Buffer (a copy, never a view of the input);
// - integers     -> number when Number.isSafeInteger, otherwise bigint;
// - lists        -> Array;
// - dictionaries -> null-prototype objects whose keys are binary strings
//   (latin1: one char per byte), so any key, `__proto__` included, is safe
//   and the raw bytes survive (`Buffer.from(key, 'latin1')`).
// Encoding accepts more (BencodeInput): strings are written as UTF-8, Maps and
// plain objects both work, and object keys are binary strings like decoded
// ones so decode(encode(x)) = x. A property whose value is undefined is left
// out (optional fields). Keys are sorted by raw bytes as BEP 3 requires.
//
// Strictness: the decoder accepts only the canonical encoding. It rejects
// trailing bytes, leading zeros, `-0`, empty integers, negative or oversized
// string lengths (checked against the remaining input before any allocation),
// non-string keys, and dictionaries whose keys are not strictly ascending.
// Unsorted and duplicate keys are both rejected (with distinct codes) rather
// than "last wins": a non-canonical dictionary would re-encode to different
// bytes, which breaks anything that hashes bencode (BEP 3 info dictionaries).
import { CH_0, CH_9, CH_COLON, CH_D, CH_E, CH_I, CH_L, CH_MINUS } from './ascii.ts';
import { ProtocolError } from './errors.ts';

export type BencodeValue = number | bigint | Buffer | BencodeValue[] | BencodeDict;
export interface BencodeDict {
  [key: string]: BencodeValue;
}

export type BencodeInput =
  | number
  | bigint
  | string
  | Uint8Array
  | readonly BencodeInput[]
  | ReadonlyMap<string | Uint8Array, BencodeInput>
  | { readonly [key: string]: BencodeInput | undefined };

export const BENCODE_DEFAULT_MAX_DEPTH = 64;
// Recursion depth is bounded well under V8's stack limit so a hostile input
// can only ever produce a ProtocolError.
const MAX_ALLOWED_DEPTH = 1024;

const MAX_INTEGER_DIGITS = 256;

// ---------------------------------------------------------------- encode

export function bencode(value: BencodeInput): Buffer {
  const parts: Buffer[] = [];
  encodeValue(value, parts, 0);
  return Buffer.concat(parts);
}

function encodeValue(value: BencodeInput, parts: Buffer[], depth: number): void {
  if (depth > MAX_ALLOWED_DEPTH) {
    throw new ProtocolError('PROTO_ERR_BENCODE_TOO_DEEP', `more than ${MAX_ALLOWED_DEPTH} levels`);
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new ProtocolError('PROTO_ERR_BENCODE_UNSUPPORTED_TYPE', 'number is not a safe integer');
    }
    parts.push(Buffer.from(`i${value}e`, 'latin1'));
  } else if (typeof value === 'bigint') {
    parts.push(Buffer.from(`i${value}e`, 'latin1'));
  } else if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    parts.push(Buffer.from(`${bytes.length}:`, 'latin1'), bytes);
  } else if (value instanceof Uint8Array) {
    parts.push(Buffer.from(`${value.length}:`, 'latin1'), Buffer.from(value));
  } else if (Array.isArray(value)) {
    parts.push(Buffer.from('l', 'latin1'));
    for (const item of value as readonly BencodeInput[]) encodeValue(item, parts, depth + 1);
    parts.push(Buffer.from('e', 'latin1'));
  } else if (value instanceof Map) {
    const entries: Array<[Buffer, BencodeInput]> = [];
    for (const [k, v] of value as ReadonlyMap<string | Uint8Array, BencodeInput>) {
      entries.push([keyBytes(k), v]);
    }
    encodeDict(entries, parts, depth);
  } else if (typeof value === 'object' && value !== null) {
    const entries: Array<[Buffer, BencodeInput]> = [];
    for (const k of Object.keys(value)) {
      const v = (value as { readonly [key: string]: BencodeInput | undefined })[k];
      if (v !== undefined) entries.push([keyBytes(k), v]);
    }
    encodeDict(entries, parts, depth);
  } else {
    throw new ProtocolError('PROTO_ERR_BENCODE_UNSUPPORTED_TYPE', typeof value);
  }
}

function keyBytes(key: string | Uint8Array): Buffer {
  if (typeof key !== 'string') return Buffer.from(key);
  for (let i = 0; i < key.length; i++) {
    if (key.charCodeAt(i) > 0xff) {
      throw new ProtocolError('PROTO_ERR_BENCODE_BAD_KEY', 'string keys are binary (latin1)');
    }
  }
  return Buffer.from(key, 'latin1');
}

function encodeDict(entries: Array<[Buffer, BencodeInput]>, parts: Buffer[], depth: number): void {
  entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  parts.push(Buffer.from('d', 'latin1'));
  for (let i = 0; i < entries.length; i++) {
    const [k, v] = entries[i] as [Buffer, BencodeInput];
    if (i > 0 && Buffer.compare((entries[i - 1] as [Buffer, BencodeInput])[0], k) === 0) {
      throw new ProtocolError('PROTO_ERR_BENCODE_DUPLICATE_KEY');
    }
    parts.push(Buffer.from(`${k.length}:`, 'latin1'), k);
    encodeValue(v, parts, depth + 1);
  }
  parts.push(Buffer.from('e', 'latin1'));
}

// ---------------------------------------------------------------- decode

export interface BdecodeOptions {
  /** Deepest list/dictionary nesting accepted (default 64, at most 1024). */
  maxDepth?: number;
}

export function bdecode(buf: Buffer, opts?: BdecodeOptions): BencodeValue {
  const maxDepth = opts?.maxDepth ?? BENCODE_DEFAULT_MAX_DEPTH;
  if (!Number.isInteger(maxDepth) || maxDepth < 0 || maxDepth > MAX_ALLOWED_DEPTH) {
    throw new ProtocolError('PROTO_ERR_BAD_CONFIG', `maxDepth must be 0..${MAX_ALLOWED_DEPTH}`);
  }
  const d = new Decoder(buf, maxDepth);
  const value = d.value(0);
  if (d.pos !== buf.length) throw new ProtocolError('PROTO_ERR_BENCODE_TRAILING_DATA');
  return value;
}

class Decoder {
  pos = 0;
  readonly buf: Buffer;
  readonly maxDepth: number;

  constructor(buf: Buffer, maxDepth: number) {
    this.buf = buf;
    this.maxDepth = maxDepth;
  }

  value(depth: number): BencodeValue {
    const c = this.peek();
    if (c === CH_I) return this.integer();
    if (c >= CH_0 && c <= CH_9) return Buffer.from(this.bytes());
    if (c === CH_L || c === CH_D) {
      // Nesting counts containers: a top-level list is depth 1.
      if (depth >= this.maxDepth) {
        throw new ProtocolError('PROTO_ERR_BENCODE_TOO_DEEP', `more than ${this.maxDepth} levels`);
      }
      return c === CH_L ? this.list(depth + 1) : this.dict(depth + 1);
    }
    throw new ProtocolError('PROTO_ERR_BENCODE_BAD_TOKEN');
  }

  peek(): number {
    const c = this.buf[this.pos];
    if (c === undefined) throw new ProtocolError('PROTO_ERR_BENCODE_UNEXPECTED_END');
    return c;
  }

  integer(): number | bigint {
    const buf = this.buf;
    const start = ++this.pos;
    let i = start;
    if (buf[i] === CH_MINUS) i++;
    const digitsStart = i;
    while (i < buf.length) {
      const c = buf[i] as number;
      if (c < CH_0 || c > CH_9) break;
      // BigInt parsing is superlinear: a megabyte of digits must not cost seconds.
      if (i - digitsStart >= MAX_INTEGER_DIGITS) {
        throw new ProtocolError(
          'PROTO_ERR_BENCODE_BAD_INTEGER',
          `more than ${MAX_INTEGER_DIGITS} digits`,
        );
      }
      i++;
    }
    if (i >= buf.length) throw new ProtocolError('PROTO_ERR_BENCODE_UNEXPECTED_END');
    if (buf[i] !== CH_E || i === digitsStart)
      throw new ProtocolError('PROTO_ERR_BENCODE_BAD_INTEGER');
    const nDigits = i - digitsStart;
    if (buf[digitsStart] === CH_0 && (nDigits > 1 || digitsStart !== start)) {
      throw new ProtocolError('PROTO_ERR_BENCODE_BAD_INTEGER', 'leading zero or -0');
    }
    this.pos = i + 1;
    // 15 digits always fit a safe integer; longer goes through BigInt.
    if (nDigits <= 15) {
      let n = 0;
      for (let j = digitsStart; j < i; j++) n = n * 10 + ((buf[j] as number) - CH_0);
      return digitsStart === start ? n : -n;
    }
    const big = BigInt(buf.toString('latin1', start, i));
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(big)
      : big;
  }

  /** A string's bytes as a view of the input; callers copy what they keep. */
  bytes(): Buffer {
    const buf = this.buf;
    let i = this.pos;
    let len = 0;
    const digitsStart = i;
    while (i < buf.length) {
      const c = buf[i] as number;
      if (c < CH_0 || c > CH_9) break;
      len = len * 10 + (c - CH_0);
      // Checked per digit, so a 1e300-digit length never becomes a float.
      if (len > buf.length)
        throw new ProtocolError('PROTO_ERR_BENCODE_BAD_LENGTH', 'exceeds input');
      i++;
    }
    if (i >= buf.length) throw new ProtocolError('PROTO_ERR_BENCODE_UNEXPECTED_END');
    if (buf[i] !== CH_COLON) throw new ProtocolError('PROTO_ERR_BENCODE_BAD_LENGTH');
    if (buf[digitsStart] === CH_0 && i - digitsStart > 1) {
      throw new ProtocolError('PROTO_ERR_BENCODE_BAD_LENGTH', 'leading zero');
    }
    const start = i + 1;
    if (len > buf.length - start) throw new ProtocolError('PROTO_ERR_BENCODE_UNEXPECTED_END');
    this.pos = start + len;
    return buf.subarray(start, start + len);
  }

  list(depth: number): BencodeValue[] {
    this.pos++;
    const out: BencodeValue[] = [];
    while (this.peek() !== CH_E) out.push(this.value(depth));
    this.pos++;
    return out;
  }

  dict(depth: number): BencodeDict {
    this.pos++;
    const out = Object.create(null) as BencodeDict;
    let prev: Buffer | undefined;
    for (;;) {
      const c = this.peek();
      if (c === CH_E) break;
      if (c < CH_0 || c > CH_9) throw new ProtocolError('PROTO_ERR_BENCODE_BAD_KEY');
      const key = this.bytes();
      if (prev !== undefined) {
        const order = Buffer.compare(prev, key);
        if (order === 0) throw new ProtocolError('PROTO_ERR_BENCODE_DUPLICATE_KEY');
        if (order > 0) throw new ProtocolError('PROTO_ERR_BENCODE_UNSORTED_KEYS');
      }
      prev = key;
      out[key.toString('latin1')] = this.value(depth);
    }
    this.pos++;
    return out;
  }
}
