// UDP tracker protocol (BEP 15), its IPv6 answer layout (18-byte peers, same
// packet otherwise) and the BEP 41 options that follow an announce.
//
// decodeUdpRequest never throws anything but ProtocolError. A ProtocolError
// carries `transactionId` when the packet had the 16-byte header, so the
// gateway can answer an error action; without one the gateway drops the
// packet. Buffers in a decoded request (connectionId, infoHash, peerId,
// scrape hashes) are views of the packet: Node's dgram hands each message
// its own Buffer, so nothing is copied on the hot path.
//
// Choices where the BEP leaves room:
// - A connect request may carry bytes after its 16; they are ignored.
// - downloaded/left/uploaded are read unsigned, so a client's -1 for an
//   unknown `left` is 2^64 - 1 (LEFT_UNKNOWN), a leecher.
// - num_want <= -1 (any negative) means "default" (undefined).
// - key is 8 lowercase hex digits; ip is dotted text, undefined when 0.
// - BEP 41 options: EndOfOptions ends them, NOP is skipped, URLData pieces
//   are concatenated (latin1, byte for byte). An unknown option type or a
//   truncated option ends parsing, keeping what came before: options are
//   advisory, and dropping an otherwise valid announce for them would cost
//   the client its peers.
import { ProtocolError } from './errors.ts';
import type { AnnounceEvent, AnnounceRequest, ScrapeCounts } from './types.ts';

export const UDP_PROTOCOL_ID = 0x41727101980n;
const PROTOCOL_ID_HI = 0x417;
const PROTOCOL_ID_LO = 0x27101980;

export const UDP_ACTION_CONNECT = 0;
export const UDP_ACTION_ANNOUNCE = 1;
export const UDP_ACTION_SCRAPE = 2;
export const UDP_ACTION_ERROR = 3;

export const UDP_CONNECT_REQUEST_SIZE = 16;
export const UDP_ANNOUNCE_REQUEST_SIZE = 98;
export const UDP_CONNECT_RESPONSE_SIZE = 16;
export const UDP_ANNOUNCE_RESPONSE_HEADER_SIZE = 20;
export const UDP_SCRAPE_RESPONSE_ENTRY_SIZE = 12;

export const BEP41_END_OF_OPTIONS = 0;
export const BEP41_NOP = 1;
export const BEP41_URL_DATA = 2;

/** Two lowercase hex digits per byte value, for the announce's key. */
const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, b) =>
  b.toString(16).padStart(2, '0'),
);

/** `n.toString(16).padStart(8, '0')` without the radix conversion's runtime call. */
function hex32(n: number): string {
  return (
    HEX_BYTE[n >>> 24]! +
    HEX_BYTE[(n >>> 16) & 0xff]! +
    HEX_BYTE[(n >>> 8) & 0xff]! +
    HEX_BYTE[n & 0xff]!
  );
}

/** An unsigned 64-bit field; one BigInt when the high word is 0 (every real transfer count under 4 GiB). */
function readU64(buf: Buffer, offset: number): bigint {
  const hi = buf.readUInt32BE(offset);
  const lo = buf.readUInt32BE(offset + 4);
  return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

/** BEP 15 event numbers, index = wire value. */
const EVENTS: readonly AnnounceEvent[] = ['none', 'completed', 'started', 'stopped'];

export type UdpRequest =
  | { action: 'connect'; transactionId: number }
  | {
      action: 'announce';
      /** 8 bytes. */
      connectionId: Buffer;
      transactionId: number;
      request: AnnounceRequest;
      /** BEP 41 URLData, pieces concatenated; undefined when the packet had none. */
      urlData: string | undefined;
    }
  | { action: 'scrape'; connectionId: Buffer; transactionId: number; infoHashes: Buffer[] };

export interface UdpDecodeOptions {
  /** Scrape packets with more hashes fail with PROTO_ERR_TOO_MANY_HASHES (default: no limit beyond the datagram). */
  maxScrapeHashes?: number;
}

export function decodeUdpRequest(buf: Buffer, opts?: UdpDecodeOptions): UdpRequest {
  if (buf.length < 16) throw new ProtocolError('PROTO_ERR_SHORT_PACKET');
  const action = buf.readUInt32BE(8);
  const transactionId = buf.readUInt32BE(12);
  switch (action) {
    case UDP_ACTION_CONNECT:
      if (buf.readUInt32BE(0) !== PROTOCOL_ID_HI || buf.readUInt32BE(4) !== PROTOCOL_ID_LO) {
        throw new ProtocolError('PROTO_ERR_BAD_PROTOCOL_ID', undefined, { transactionId });
      }
      return { action: 'connect', transactionId };
    case UDP_ACTION_ANNOUNCE:
      return decodeAnnounce(buf, transactionId);
    case UDP_ACTION_SCRAPE:
      return decodeScrape(buf, transactionId, opts?.maxScrapeHashes);
    default:
      throw new ProtocolError('PROTO_ERR_BAD_ACTION', undefined, { transactionId });
  }
}

function decodeAnnounce(buf: Buffer, transactionId: number): UdpRequest {
  if (buf.length < UDP_ANNOUNCE_REQUEST_SIZE) {
    throw new ProtocolError('PROTO_ERR_SHORT_PACKET', 'announce is 98 bytes', { transactionId });
  }
  const event = EVENTS[buf.readUInt32BE(80)];
  if (event === undefined)
    throw new ProtocolError('PROTO_ERR_BAD_EVENT', undefined, { transactionId });
  const ipWord = buf.readUInt32BE(84);
  const numWant = buf.readInt32BE(92);
  const request: AnnounceRequest = {
    infoHash: buf.subarray(16, 36),
    peerId: buf.subarray(36, 56),
    port: buf.readUInt16BE(96),
    uploaded: readU64(buf, 72),
    downloaded: readU64(buf, 56),
    left: readU64(buf, 64),
    event,
    // BEP 15 numbers four events; BEP 21's paused has none, so no UDP announce is a partial seed.
    paused: false,
    numWant: numWant < 0 ? undefined : numWant,
    compact: true,
    noPeerId: false,
    key: hex32(buf.readUInt32BE(88)),
    ip:
      ipWord === 0
        ? undefined
        : `${ipWord >>> 24}.${(ipWord >>> 16) & 0xff}.${(ipWord >>> 8) & 0xff}.${ipWord & 0xff}`,
  };
  return {
    action: 'announce',
    connectionId: buf.subarray(0, 8),
    transactionId,
    request,
    urlData: buf.length > UDP_ANNOUNCE_REQUEST_SIZE ? decodeOptions(buf) : undefined,
  };
}

function decodeOptions(buf: Buffer): string | undefined {
  let urlData: string | undefined;
  let i = UDP_ANNOUNCE_REQUEST_SIZE;
  while (i < buf.length) {
    const type = buf[i] as number;
    if (type === BEP41_NOP) {
      i++;
      continue;
    }
    if (type !== BEP41_URL_DATA || i + 1 >= buf.length) break;
    const len = buf[i + 1] as number;
    if (i + 2 + len > buf.length) break;
    const piece = buf.toString('latin1', i + 2, i + 2 + len);
    urlData = urlData === undefined ? piece : urlData + piece;
    i += 2 + len;
  }
  return urlData;
}

function decodeScrape(
  buf: Buffer,
  transactionId: number,
  maxHashes: number | undefined,
): UdpRequest {
  const body = buf.length - 16;
  if (body === 0) throw new ProtocolError('PROTO_ERR_NO_HASHES', undefined, { transactionId });
  if (body % 20 !== 0) {
    throw new ProtocolError('PROTO_ERR_BAD_PACKET_LENGTH', undefined, { transactionId });
  }
  const count = body / 20;
  if (maxHashes !== undefined && count > maxHashes) {
    throw new ProtocolError('PROTO_ERR_TOO_MANY_HASHES', `at most ${maxHashes}`, { transactionId });
  }
  const infoHashes: Buffer[] = new Array<Buffer>(count);
  for (let k = 0; k < count; k++) infoHashes[k] = buf.subarray(16 + 20 * k, 36 + 20 * k);
  return { action: 'scrape', connectionId: buf.subarray(0, 8), transactionId, infoHashes };
}

// ---------------------------------------------------------------- responses
//
// Each encoder writes into a caller's buffer (the gateway keeps one per
// socket, so an answer allocates nothing) and returns the byte length; it
// throws RangeError when `out` is too small, before writing anything.

/** Checks that `out` holds `size` bytes, then writes the action and transaction id every answer starts with. */
function writeHeader(out: Buffer, size: number, action: number, transactionId: number): void {
  if (out.length < size)
    throw new RangeError(`output buffer needs ${size} bytes, has ${out.length}`);
  out.writeUInt32BE(action, 0);
  out.writeUInt32BE(transactionId, 4);
}

/** Counts above 2^32 - 1 cannot be expressed in BEP 15; saturate instead of wrapping. */
function u32(n: number): number {
  return n > 0xffffffff ? 0xffffffff : n < 0 ? 0 : n;
}

export function encodeConnectResponseInto(
  out: Buffer,
  transactionId: number,
  connectionId: Buffer,
): number {
  writeHeader(out, UDP_CONNECT_RESPONSE_SIZE, UDP_ACTION_CONNECT, transactionId);
  connectionId.copy(out, 8, 0, 8);
  return UDP_CONNECT_RESPONSE_SIZE;
}

/** `peers`: compact entries of the packet's family only (6 or 18 bytes each; torrust#1366). */
export function encodeAnnounceResponseInto(
  out: Buffer,
  transactionId: number,
  interval: number,
  leechers: number,
  seeders: number,
  peers: Buffer,
): number {
  const size = UDP_ANNOUNCE_RESPONSE_HEADER_SIZE + peers.length;
  writeHeader(out, size, UDP_ACTION_ANNOUNCE, transactionId);
  out.writeUInt32BE(u32(interval), 8);
  out.writeUInt32BE(u32(leechers), 12);
  out.writeUInt32BE(u32(seeders), 16);
  peers.copy(out, UDP_ANNOUNCE_RESPONSE_HEADER_SIZE);
  return size;
}

/** Per hash, in request order: seeders, completed, leechers (BEP 15). */
export function encodeScrapeResponseInto(
  out: Buffer,
  transactionId: number,
  counts: readonly ScrapeCounts[],
): number {
  const size = 8 + UDP_SCRAPE_RESPONSE_ENTRY_SIZE * counts.length;
  writeHeader(out, size, UDP_ACTION_SCRAPE, transactionId);
  let o = 8;
  for (const c of counts) {
    out.writeUInt32BE(u32(c.complete), o);
    out.writeUInt32BE(u32(c.downloaded), o + 4);
    out.writeUInt32BE(u32(c.incomplete), o + 8);
    o += UDP_SCRAPE_RESPONSE_ENTRY_SIZE;
  }
  return size;
}

/** Action 3 with the message as UTF-8 text (no terminator; the datagram length bounds it). */
export function encodeErrorResponseInto(
  out: Buffer,
  transactionId: number,
  message: string,
): number {
  const size = 8 + Buffer.byteLength(message, 'utf8');
  writeHeader(out, size, UDP_ACTION_ERROR, transactionId);
  out.write(message, 8, 'utf8');
  return size;
}

// ---------------------------------------------------------------- requests
//
// The client side, for tests and load tools: decodeUdpRequest(encodeUdpRequest(r))
// equals r for every request the decoder can produce.

export function encodeConnectRequest(transactionId: number): Buffer {
  const out = Buffer.allocUnsafe(UDP_CONNECT_REQUEST_SIZE);
  out.writeBigUInt64BE(UDP_PROTOCOL_ID, 0);
  out.writeUInt32BE(UDP_ACTION_CONNECT, 8);
  out.writeUInt32BE(transactionId, 12);
  return out;
}

/**
 * `request.key` is written as a hex uint32 (0 when absent or not hex),
 * `request.ip` as a dotted IPv4 (0 when absent), `numWant` undefined as -1,
 * and `urlData` as BEP 41 URLData options of at most 255 bytes each.
 */
export function encodeAnnounceRequest(
  connectionId: Buffer,
  transactionId: number,
  request: AnnounceRequest,
  urlData?: string,
): Buffer {
  const url = urlData === undefined ? undefined : Buffer.from(urlData, 'latin1');
  const pieces = url === undefined ? 0 : Math.max(1, Math.ceil(url.length / 255));
  const out = Buffer.alloc(UDP_ANNOUNCE_REQUEST_SIZE + (url?.length ?? 0) + 2 * pieces);
  connectionId.copy(out, 0, 0, 8);
  out.writeUInt32BE(UDP_ACTION_ANNOUNCE, 8);
  out.writeUInt32BE(transactionId, 12);
  request.infoHash.copy(out, 16, 0, 20);
  request.peerId.copy(out, 36, 0, 20);
  out.writeBigUInt64BE(request.downloaded, 56);
  out.writeBigUInt64BE(request.left, 64);
  out.writeBigUInt64BE(request.uploaded, 72);
  out.writeUInt32BE(EVENTS.indexOf(request.event), 80);
  out.writeUInt32BE(ipv4Word(request.ip), 84);
  const key = request.key === undefined ? 0 : Number.parseInt(request.key, 16);
  out.writeUInt32BE(Number.isInteger(key) && key >= 0 && key <= 0xffffffff ? key : 0, 88);
  out.writeInt32BE(request.numWant === undefined ? -1 : request.numWant, 92);
  out.writeUInt16BE(request.port, 96);
  if (url !== undefined) {
    let o = UDP_ANNOUNCE_REQUEST_SIZE;
    for (let p = 0; p < pieces; p++) {
      const chunk = url.subarray(p * 255, (p + 1) * 255);
      out[o] = BEP41_URL_DATA;
      out[o + 1] = chunk.length;
      chunk.copy(out, o + 2);
      o += 2 + chunk.length;
    }
  }
  return out;
}

function ipv4Word(ip: string | undefined): number {
  if (ip === undefined) return 0;
  const parts = ip.split('.');
  if (parts.length !== 4) return 0;
  let word = 0;
  for (const p of parts) {
    const octet = Number(p);
    if (!Number.isInteger(octet) || octet < 0 || octet > 255) return 0;
    word = word * 256 + octet;
  }
  return word;
}

export function encodeScrapeRequest(
  connectionId: Buffer,
  transactionId: number,
  infoHashes: readonly Buffer[],
): Buffer {
  const out = Buffer.alloc(16 + 20 * infoHashes.length);
  connectionId.copy(out, 0, 0, 8);
  out.writeUInt32BE(UDP_ACTION_SCRAPE, 8);
  out.writeUInt32BE(transactionId, 12);
  infoHashes.forEach((h, k) => h.copy(out, 16 + 20 * k, 0, 20));
  return out;
}

export function encodeUdpRequest(r: UdpRequest): Buffer {
  switch (r.action) {
    case 'connect':
      return encodeConnectRequest(r.transactionId);
    case 'announce':
      return encodeAnnounceRequest(r.connectionId, r.transactionId, r.request, r.urlData);
    case 'scrape':
      return encodeScrapeRequest(r.connectionId, r.transactionId, r.infoHashes);
  }
}
