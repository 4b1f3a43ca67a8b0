// A strict bencode reader (BEP 3) for checking tracker answers and reading
// .torrent files. The npm `bencode` package decodes dictionary keys as UTF-8
// and falls back to hex, so binary keys such as scrape's info hashes cannot be
// mapped back reliably; here every string stays a Buffer and keys are latin1
// (one char per byte, lossless).
import { HarnessError } from './errors.ts';

export type BValue = number | Buffer | BValue[] | BDict;
export interface BDict {
  [key: string]: BValue;
}

export interface Decoded {
  value: BValue;
  /** Byte ranges of dictionary values by key path ("info"), for hashing them raw. */
  spans: Map<string, [number, number]>;
}

function bad(detail: string): HarnessError {
  return new HarnessError('HARNESS_ERR_BAD_REPLY', `bencode: ${detail}`);
}

export function decodeBencode(buf: Buffer): Decoded {
  let pos = 0;
  const spans = new Map<string, [number, number]>();
  const digitsUntil = (end: number): number => {
    const stop = buf.indexOf(end, pos);
    if (stop < 0) throw bad(`unterminated number at ${pos}`);
    const text = buf.toString('latin1', pos, stop);
    if (!/^(0|-?[1-9][0-9]*)$/.test(text)) throw bad(`bad number "${text.slice(0, 30)}" at ${pos}`);
    pos = stop + 1;
    return Number(text);
  };
  const next = (path: string, depth: number): BValue => {
    if (depth > 64) throw bad('nested too deep');
    const c = buf[pos];
    if (c === undefined) throw bad('unexpected end');
    if (c === 0x69 /* i */) {
      pos++;
      return digitsUntil(0x65 /* e */);
    }
    if (c === 0x6c /* l */) {
      pos++;
      const list: BValue[] = [];
      while (buf[pos] !== 0x65) list.push(next('', depth + 1));
      pos++;
      return list;
    }
    if (c === 0x64 /* d */) {
      pos++;
      const dict: BDict = {};
      while (buf[pos] !== 0x65) {
        const key = next('', depth + 1);
        if (!Buffer.isBuffer(key)) throw bad('dictionary key is not a string');
        const k = key.toString('latin1');
        const start = pos;
        dict[k] = next(path === '' ? k : `${path}.${k}`, depth + 1);
        spans.set(path === '' ? k : `${path}.${k}`, [start, pos]);
      }
      pos++;
      return dict;
    }
    if (c >= 0x30 && c <= 0x39) {
      const len = digitsUntil(0x3a /* : */);
      if (pos + len > buf.length) throw bad(`string of ${len} bytes runs past the end`);
      const s = buf.subarray(pos, pos + len);
      pos += len;
      return s;
    }
    throw bad(`unexpected byte 0x${c.toString(16)} at ${pos}`);
  };
  const value = next('', 0);
  if (pos !== buf.length) throw bad(`${buf.length - pos} trailing bytes`);
  return { value, spans };
}

export function isDict(v: BValue | undefined): v is BDict {
  return typeof v === 'object' && !Buffer.isBuffer(v) && !Array.isArray(v);
}
