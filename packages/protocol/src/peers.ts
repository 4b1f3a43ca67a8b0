// Addresses and compact peers: 4-byte IPv4 + 2-byte port (BEP 23) and 16-byte
// IPv6 + 2-byte port (BEP 7), all big-endian. addressToBytes runs once per
// request on the socket's remote address, so it parses by hand instead of
// going through net.isIP plus a second parse.
import { ProtocolError } from './errors.ts';
import type { Family } from './types.ts';

export const COMPACT_PEER_V4_SIZE = 6;
export const COMPACT_PEER_V6_SIZE = 18;

export function compactPeerSize(family: Family): 6 | 18 {
  return family === 4 ? COMPACT_PEER_V4_SIZE : COMPACT_PEER_V6_SIZE;
}

/**
 * Parses dotted-quad IPv4 or RFC 4291 IPv6 text (a `%zone` suffix is ignored).
 * IPv4-mapped IPv6 (::ffff:a.b.c.d, what a dual-stack socket reports for an
 * IPv4 client) comes back as family 4, so one client is one peer whichever
 * socket it reached. Returns undefined for anything else; octets with leading
 * zeros are refused because some parsers read them as octal.
 */
export function addressToBytes(text: string): { family: Family; bytes: Buffer } | undefined {
  if (text.indexOf(':') === -1) {
    const bytes = Buffer.allocUnsafe(4);
    return parseIPv4(text, 0, text.length, bytes, 0) ? { family: 4, bytes } : undefined;
  }
  // Dual-stack sockets report every IPv4 client this way: skip the IPv6 parser.
  if (text.length > 7 && MAPPED_PREFIX.test(text) && text.indexOf(':', 7) === -1) {
    const bytes = Buffer.allocUnsafe(4);
    return parseIPv4(text, 7, text.length, bytes, 0) ? { family: 4, bytes } : undefined;
  }
  const bytes = Buffer.allocUnsafe(16);
  if (!parseIPv6(text, bytes)) return undefined;
  if (isV4Mapped(bytes)) return { family: 4, bytes: bytes.subarray(12) };
  return { family: 6, bytes };
}

const MAPPED_PREFIX = /^::ffff:/i;
/** Scratch for a trailing dotted quad inside IPv6 text; parsing is synchronous. */
const dotted = Buffer.alloc(4);

function isV4Mapped(b: Buffer): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function parseIPv4(s: string, start: number, end: number, out: Buffer, offset: number): boolean {
  let i = start;
  for (let octet = 0; octet < 4; octet++) {
    if (octet > 0) {
      if (s.charCodeAt(i) !== 0x2e) return false;
      i++;
    }
    const digitsStart = i;
    let v = 0;
    while (i < end && i - digitsStart < 3) {
      const c = s.charCodeAt(i) - 0x30;
      if (c < 0 || c > 9) break;
      v = v * 10 + c;
      i++;
    }
    const n = i - digitsStart;
    if (n === 0 || v > 255 || (n > 1 && s.charCodeAt(digitsStart) === 0x30)) return false;
    out[offset + octet] = v;
  }
  return i === end;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

function parseIPv6(s: string, out: Buffer): boolean {
  let end = s.indexOf('%');
  if (end === -1) end = s.length;
  const words = [0, 0, 0, 0, 0, 0, 0, 0];
  let n = 0;
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === 0x3a) {
    if (s.charCodeAt(1) !== 0x3a) return false;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    let v = 0;
    let j = i;
    while (j < end && j - i < 4) {
      const h = hexValue(s.charCodeAt(j));
      if (h < 0) break;
      v = (v << 4) | h;
      j++;
    }
    if (j === i) return false;
    if (j < end && s.charCodeAt(j) === 0x2e) {
      // Trailing dotted quad (RFC 4291 2.2 form 3) fills the last two words.
      if (n > 6) return false;
      if (!parseIPv4(s, i, end, dotted, 0)) return false;
      words[n++] = ((dotted[0] as number) << 8) | (dotted[1] as number);
      words[n++] = ((dotted[2] as number) << 8) | (dotted[3] as number);
      break;
    }
    if (n === 8) return false;
    words[n++] = v;
    if (j === end) break;
    if (s.charCodeAt(j) !== 0x3a) return false;
    if (s.charCodeAt(j + 1) === 0x3a) {
      if (gap !== -1) return false;
      gap = n;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === end) return false;
    }
  }
  if (gap === -1 ? n !== 8 : n > 7) return false;
  let w = 0;
  const tailStart = gap === -1 ? 8 : 8 - (n - gap);
  for (let k = 0; k < 8; k++) {
    let v = 0;
    if (gap === -1 || k < gap) v = words[w++] as number;
    else if (k >= tailStart) v = words[w++] as number;
    out[2 * k] = v >>> 8;
    out[2 * k + 1] = v & 0xff;
  }
  return true;
}

/** 4 bytes -> dotted quad; 16 bytes -> RFC 5952 text (::ffff:a.b.c.d for IPv4-mapped, as Node prints it). */
export function bytesToAddress(bytes: Buffer): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new ProtocolError('PROTO_ERR_BAD_ADDRESS');
  if (isV4Mapped(bytes)) return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  // RFC 5952 4.2: compress the longest run (>= 2) of zero words, the first on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let k = 0; k < 8;) {
    if (bytes.readUInt16BE(2 * k) !== 0) {
      k++;
      continue;
    }
    const runStart = k;
    while (k < 8 && bytes.readUInt16BE(2 * k) === 0) k++;
    if (k - runStart > bestLen) {
      bestStart = runStart;
      bestLen = k - runStart;
    }
  }
  let out = '';
  for (let k = 0; k < 8; k++) {
    if (k === bestStart) {
      out += '::';
      k += bestLen - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += bytes.readUInt16BE(2 * k).toString(16);
  }
  return out;
}

/** 4-byte address -> 6-byte compact peer; 16-byte address -> 18-byte compact peer. */
export function encodeCompactPeer(address: Buffer, port: number): Buffer {
  if (address.length !== 4 && address.length !== 16) {
    throw new ProtocolError('PROTO_ERR_BAD_ADDRESS');
  }
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new ProtocolError('PROTO_ERR_BAD_PORT');
  }
  const out = Buffer.allocUnsafe(address.length + 2);
  address.copy(out, 0);
  out.writeUInt16BE(port, address.length);
  return out;
}

export function decodeCompactPeers(
  buf: Buffer,
  family: Family,
): Array<{ address: string; port: number }> {
  const size = compactPeerSize(family);
  if (buf.length % size !== 0) throw new ProtocolError('PROTO_ERR_BAD_PEERS_LENGTH');
  const out: Array<{ address: string; port: number }> = [];
  for (let off = 0; off < buf.length; off += size) {
    out.push({
      address: bytesToAddress(buf.subarray(off, off + size - 2)),
      port: buf.readUInt16BE(off + size - 2),
    });
  }
  return out;
}
