// HTTP tracker messages: the announce and scrape query strings (BEP 3, BEP 23
// compact, BEP 7 IPv6, BEP 48 scrape) and their bencoded answers.
//
// Queries are parsed from the raw text after '?' in one pass, straight into
// Buffers: Fastify's parser leaves info_hash percent-encoded and Node's
// querystring decodes it as UTF-8, which loses bytes (docs/decisions.md "Sources").
// Parameter names are matched literally (a percent-encoded name such as
// `info%5Fhash` is an unknown parameter and ignored, like any unknown name).
//
// Choices where trackers differ:
// - `info_hash` twice in an announce is PROTO_ERR_DUPLICATE_PARAM: the swarm
//   would be ambiguous (chihaya refuses it too). Any other repeated
//   parameter: the first occurrence wins.
// - `left` absent means "unknown", i.e. a leecher (LEFT_UNKNOWN), so a
//   client that omits it is never counted as a seeder it may not be.
// - `uploaded`/`downloaded` absent are 0. All three must be plain decimal
//   non-negative integers below 2^64 (BEP 15 carries them in 64 bits).
// - `numwant` absent or negative (some clients send the UDP -1 over HTTP)
//   is undefined: the gateway applies its default.
// - `event`: empty or `empty` is none; `paused` (BEP 21 partial seeds) is
//   none with `paused` set; anything unknown is PROTO_ERR_BAD_EVENT.
// - `compact` defaults to true; only `compact=0` asks for dictionaries.
//   `no_peer_id` is true when present with any value but `0`.
// - `key` and `ip` are percent-decoded binary (latin1) strings. BEP 7's
//   `ipv4`/`ipv6` are kept as they came, still percent-encoded, and decoded
//   and judged by parseAddressParam only when the gateway honours them
//   (docs/decisions.md "BEP 7 addresses"): a value the gateway ignores costs
//   a slice and can never fail an announce.
import { CH_0, CH_AMP, CH_EQ, CH_MINUS, CH_PCT, CH_PLUS } from './ascii.ts';
import { ProtocolError } from './errors.ts';
import type { ProtocolErrorCode } from './errors.ts';
import { addressToBytes, bytesToAddress, compactPeerSize } from './peers.ts';
import type { AnnounceEvent, AnnounceRequest, Family, ScrapeCounts } from './types.ts';

/** `left` of an announce that did not send it: 2^64 - 1, a leecher (also what UDP's -1 reads as). */
export const LEFT_UNKNOWN = 0xffff_ffff_ffff_ffffn;

const MAX_UINT64 = 0xffff_ffff_ffff_ffffn;

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Decodes `raw[start, end)` into `out` from `offset`; returns the decoded length,
 * or -1 as soon as it would exceed `limit` bytes. Characters above U+00FF cannot
 * come from an HTTP request line (Node's parser refuses raw non-ASCII; lenient
 * parsers hand bytes over as latin1), so they are an encoding error.
 */
function decodeInto(
  raw: string,
  start: number,
  end: number,
  out: Buffer,
  offset: number,
  limit: number,
): number {
  let o = offset;
  const stop = offset + limit;
  for (let i = start; i < end; i++) {
    let c = raw.charCodeAt(i);
    if (c === CH_PCT) {
      const hi = i + 2 < end ? hexDigit(raw.charCodeAt(i + 1)) : -1;
      const lo = hi >= 0 ? hexDigit(raw.charCodeAt(i + 2)) : -1;
      if (lo < 0) throw new ProtocolError('PROTO_ERR_BAD_ENCODING');
      c = (hi << 4) | lo;
      i += 2;
    } else if (c === CH_PLUS) {
      c = 0x20;
    } else if (c > 0xff) {
      throw new ProtocolError('PROTO_ERR_BAD_ENCODING');
    }
    if (o === stop) return -1;
    out[o++] = c;
  }
  return o - offset;
}

/** Binary-safe application/x-www-form-urlencoded decoding: %XX -> byte, '+' -> space. */
export function percentDecode(s: string): Buffer {
  let pct = 0;
  for (let i = s.indexOf('%'); i !== -1; i = s.indexOf('%', i + 1)) pct++;
  const out = Buffer.allocUnsafe(Math.max(0, s.length - 2 * pct));
  // Every well-formed %XX shrinks by exactly 2, so the size is exact unless a
  // '%' is malformed, and then decodeInto throws or overruns the estimate.
  if (decodeInto(s, 0, s.length, out, 0, out.length) !== out.length) {
    throw new ProtocolError('PROTO_ERR_BAD_ENCODING');
  }
  return out;
}

function decodeString(raw: string, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    const c = raw.charCodeAt(i);
    if (c === CH_PCT || c === CH_PLUS || c > 0x7f) {
      return percentDecode(raw.slice(start, end)).toString('latin1');
    }
  }
  return raw.slice(start, end);
}

function decodeHash(raw: string, start: number, end: number, code: ProtocolErrorCode): Buffer {
  const out = Buffer.allocUnsafe(20);
  if (decodeInto(raw, start, end, out, 0, 20) !== 20) throw new ProtocolError(code);
  return out;
}

/**
 * A decimal integer of at most `maxDigits` digits, or -1 when the text is not
 * plain digits. Percent-encoded digits (RFC 3986 2.3 equivalence) take a slow path.
 */
function parseDigits(raw: string, start: number, end: number, maxDigits: number): number {
  const len = end - start;
  if (len > 0 && len <= maxDigits) {
    let v = 0;
    let i = start;
    for (; i < end; i++) {
      const d = raw.charCodeAt(i) - CH_0;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
    }
    if (i === end) return v;
  }
  const pct = raw.indexOf('%', start);
  if (pct === -1 || pct >= end) return -1;
  const text = percentDecode(raw.slice(start, end)).toString('latin1');
  return text.length > 0 && text.length <= maxDigits && /^[0-9]+$/.test(text) ? Number(text) : -1;
}

function parseUint64(raw: string, start: number, end: number): bigint {
  const small = parseDigits(raw, start, end, 15);
  if (small >= 0) return BigInt(small);
  const text = decodeString(raw, start, end);
  // 2^64 - 1 has 20 digits; leading zeros are tolerated, so trim before counting.
  if (!/^[0-9]+$/.test(text)) throw new ProtocolError('PROTO_ERR_BAD_NUMBER');
  const trimmed = text.replace(/^0+(?=.)/, '');
  if (trimmed.length > 20) throw new ProtocolError('PROTO_ERR_BAD_NUMBER');
  const v = BigInt(trimmed);
  if (v > MAX_UINT64) throw new ProtocolError('PROTO_ERR_BAD_NUMBER');
  return v;
}

/** BEP 21 `event=paused`: an event of its own on the wire, a state (`paused`) here. */
const PAUSED = 'paused';

function parseEvent(raw: string, start: number, end: number): AnnounceEvent | typeof PAUSED {
  const len = end - start;
  if (len === 0) return 'none';
  if (len === 7) {
    if (raw.startsWith('started', start)) return 'started';
    if (raw.startsWith('stopped', start)) return 'stopped';
  } else if (len === 9) {
    if (raw.startsWith('completed', start)) return 'completed';
  } else if (len === 5) {
    if (raw.startsWith('empty', start)) return 'none';
  } else if (len === 6) {
    if (raw.startsWith('paused', start)) return PAUSED;
  }
  throw new ProtocolError('PROTO_ERR_BAD_EVENT');
}

// A query is `name[=value]` parameters joined by '&'. A name ends at its
// first '=' (a value may contain more) or, without a value, at its '&'.

/** Where the name of the parameter at `i` ends: its '=', its '&', or `n`. */
function nameEndOf(raw: string, i: number, n: number): number {
  for (; i < n; i++) {
    const c = raw.charCodeAt(i);
    if (c === CH_EQ || c === CH_AMP) return i;
  }
  return n;
}

/** Where the parameter whose name ends at `nameEnd` ends: its '&' or `n`. */
function paramEndOf(raw: string, nameEnd: number, n: number): number {
  if (nameEnd === n || raw.charCodeAt(nameEnd) === CH_AMP) return nameEnd;
  const amp = raw.indexOf('&', nameEnd + 1);
  return amp === -1 ? n : amp;
}

/** numwant: -1 for a negative value (valid, means "the default"), else its value. */
function parseNumWant(raw: string, start: number, end: number): number {
  const negative = end > start && raw.charCodeAt(start) === CH_MINUS;
  const v = parseDigits(raw, negative ? start + 1 : start, end, 15);
  if (v < 0) throw new ProtocolError('PROTO_ERR_BAD_NUMBER', 'numwant');
  return negative ? -1 : v;
}

function parsePort(raw: string, start: number, end: number): number {
  const port = parseDigits(raw, start, end, 5);
  if (port < 0 || port > 0xffff) throw new ProtocolError('PROTO_ERR_BAD_PORT');
  return port;
}

/** compact and no_peer_id: true unless the value is exactly `0`. */
function isFlagSet(raw: string, start: number, end: number): boolean {
  return !(end - start === 1 && raw.charCodeAt(start) === CH_0);
}

/**
 * Parses an announce query (the text after '?'). Throws ProtocolError only.
 * Each field starts undefined and is set with `??=`, which parses only the
 * first occurrence of a parameter (first wins); defaults apply at the end.
 */
export function parseAnnounceQuery(rawQuery: string): AnnounceRequest {
  const raw = rawQuery;
  const n = raw.length;
  let infoHash: Buffer | undefined, peerId: Buffer | undefined;
  let port: number | undefined, numWant: number | undefined;
  let uploaded: bigint | undefined, downloaded: bigint | undefined, left: bigint | undefined;
  let event: AnnounceEvent | typeof PAUSED | undefined;
  let compact: boolean | undefined, noPeerId: boolean | undefined;
  let key: string | undefined, ip: string | undefined;
  let ipv4: string | undefined, ipv6: string | undefined;

  for (let i = 0; i < n;) {
    const nameEnd = nameEndOf(raw, i, n);
    const vEnd = paramEndOf(raw, nameEnd, n);
    const vStart = nameEnd === vEnd ? vEnd : nameEnd + 1;
    // Names are told apart by their length first (shortest first), then compared in place.
    switch (nameEnd - i) {
      case 2:
        if (raw.startsWith('ip', i)) ip ??= decodeString(raw, vStart, vEnd);
        break;
      case 3:
        if (raw.startsWith('key', i)) key ??= decodeString(raw, vStart, vEnd);
        break;
      case 4:
        if (raw.startsWith('port', i)) port ??= parsePort(raw, vStart, vEnd);
        else if (raw.startsWith('left', i)) left ??= parseUint64(raw, vStart, vEnd);
        else if (raw.startsWith('ipv6', i)) ipv6 ??= raw.slice(vStart, vEnd);
        else if (raw.startsWith('ipv4', i)) ipv4 ??= raw.slice(vStart, vEnd);
        break;
      case 5:
        if (raw.startsWith('event', i)) event ??= parseEvent(raw, vStart, vEnd);
        break;
      case 7:
        if (raw.startsWith('peer_id', i))
          peerId ??= decodeHash(raw, vStart, vEnd, 'PROTO_ERR_BAD_PEER_ID');
        else if (raw.startsWith('numwant', i)) numWant ??= parseNumWant(raw, vStart, vEnd);
        else if (raw.startsWith('compact', i)) compact ??= isFlagSet(raw, vStart, vEnd);
        break;
      case 8:
        if (raw.startsWith('uploaded', i)) uploaded ??= parseUint64(raw, vStart, vEnd);
        break;
      case 9:
        if (raw.startsWith('info_hash', i)) {
          if (infoHash !== undefined)
            throw new ProtocolError('PROTO_ERR_DUPLICATE_PARAM', 'info_hash');
          infoHash = decodeHash(raw, vStart, vEnd, 'PROTO_ERR_BAD_INFO_HASH');
        }
        break;
      case 10:
        if (raw.startsWith('downloaded', i)) downloaded ??= parseUint64(raw, vStart, vEnd);
        else if (raw.startsWith('no_peer_id', i)) noPeerId ??= isFlagSet(raw, vStart, vEnd);
        break;
      default:
        break;
    }
    i = vEnd + 1;
  }

  if (infoHash === undefined) throw new ProtocolError('PROTO_ERR_MISSING_PARAM', 'info_hash');
  if (peerId === undefined) throw new ProtocolError('PROTO_ERR_MISSING_PARAM', 'peer_id');
  if (port === undefined) throw new ProtocolError('PROTO_ERR_MISSING_PARAM', 'port');
  return {
    infoHash,
    peerId,
    port,
    uploaded: uploaded ?? 0n,
    downloaded: downloaded ?? 0n,
    left: left ?? LEFT_UNKNOWN,
    event: event === undefined || event === PAUSED ? 'none' : event,
    paused: event === PAUSED,
    numWant: numWant === undefined || numWant < 0 ? undefined : numWant,
    compact: compact ?? true,
    noPeerId: noPeerId ?? false,
    key,
    ip,
    ...(ipv4 === undefined ? {} : { ipv4 }),
    ...(ipv6 === undefined ? {} : { ipv6 }),
  };
}

/** An address of one family from BEP 7's `ipv4=` / `ipv6=`, with its port when the value named one. */
export interface AddressParam {
  family: Family;
  /** 4 or 16 bytes. */
  bytes: Buffer;
  /** undefined: the announce's `port`. */
  port: number | undefined;
}

/**
 * BEP 7 `ipv4=` / `ipv6=` text (percent-decoded): an address of `family`, or
 * an endpoint as RFC 2732 writes it (`a.b.c.d:port`, `[v6]:port`; `[v6]`
 * alone too). libtorrent sends bare addresses (one parameter per listen
 * address). Refused with PROTO_ERR_BAD_ADDRESS_PARAM: text of the other
 * family, IPv4-mapped IPv6 in `ipv6=` (it names an IPv4 peer), the
 * unspecified address (nobody can dial it), a port outside 1..65535, and
 * anything else that is not an address, malformed percent-encoding included.
 * `query` is the parameter's value as it came in the query string.
 */
export function parseAddressParam(query: string, family: Family): AddressParam {
  const name = family === 4 ? 'ipv4' : 'ipv6';
  let text: string;
  try {
    text = decodeString(query, 0, query.length);
  } catch {
    throw new ProtocolError('PROTO_ERR_BAD_ADDRESS_PARAM', name);
  }
  let host = text;
  let port: number | undefined;
  if (family === 6 && text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) throw new ProtocolError('PROTO_ERR_BAD_ADDRESS_PARAM', name);
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') port = endpointPort(rest, name);
  } else if (family === 4) {
    const colon = text.indexOf(':');
    if (colon !== -1) {
      host = text.slice(0, colon);
      port = endpointPort(text.slice(colon), name);
    }
  }
  const address = addressToBytes(host);
  // addressToBytes reads IPv4-mapped IPv6 as IPv4: in `ipv6=` that is the wrong family.
  if (address === undefined || address.family !== family || address.bytes.every((b) => b === 0))
    throw new ProtocolError('PROTO_ERR_BAD_ADDRESS_PARAM', name);
  return { family, bytes: address.bytes, port };
}

/** `:port` after an endpoint's address: 1..65535, digits only. */
function endpointPort(rest: string, name: string): number {
  if (!/^:[0-9]{1,5}$/.test(rest)) throw new ProtocolError('PROTO_ERR_BAD_ADDRESS_PARAM', name);
  const port = Number(rest.slice(1));
  if (port < 1 || port > 0xffff) throw new ProtocolError('PROTO_ERR_BAD_ADDRESS_PARAM', name);
  return port;
}

/**
 * The info_hashes of a scrape query (BEP 48), in request order, duplicates
 * dropped (a bencoded dictionary cannot hold a key twice). No info_hash is an
 * error: full scrapes are not served. More than `maxHashes` distinct hashes
 * fails before the surplus is decoded.
 */
export function parseScrapeQuery(rawQuery: string, maxHashes: number): Buffer[] {
  const raw = rawQuery;
  const n = raw.length;
  const out: Buffer[] = [];
  let seen: Set<string> | undefined;
  for (let i = 0; i < n;) {
    const nameEnd = nameEndOf(raw, i, n);
    const end = paramEndOf(raw, nameEnd, n);
    if (nameEnd - i === 9 && raw.startsWith('info_hash', i)) {
      const start = nameEnd === end ? end : nameEnd + 1;
      const hash = decodeHash(raw, start, end, 'PROTO_ERR_BAD_INFO_HASH');
      seen ??= new Set();
      const id = hash.toString('latin1');
      if (!seen.has(id)) {
        if (out.length >= maxHashes) {
          throw new ProtocolError('PROTO_ERR_TOO_MANY_HASHES', `at most ${maxHashes}`);
        }
        seen.add(id);
        out.push(hash);
      }
    }
    i = end + 1;
  }
  if (out.length === 0) throw new ProtocolError('PROTO_ERR_NO_HASHES');
  return out;
}

// ---------------------------------------------------------------- responses

export interface HttpAnnounceResponse {
  interval: number;
  minInterval: number;
  complete: number;
  incomplete: number;
  downloaded: number;
  family: Family;
  /** Compact entries of `family`: 6 bytes (v4) or 18 bytes (v6) each; a partial trailing entry is dropped. */
  peers: Buffer;
  /** Parallel to peers; used by non-compact answers only. */
  peerIds: Buffer[] | undefined;
  /**
   * BEP 7: compact entries of the other family, when the peer is also
   * registered at an address of that family (`ipv4=` / `ipv6=`): the answer
   * then carries `peers` and `peers6` together, or one non-compact list of both.
   */
  otherPeers?: Buffer | undefined;
  /** Parallel to otherPeers; used by non-compact answers only. */
  otherPeerIds?: Buffer[] | undefined;
  compact: boolean;
  noPeerId: boolean;
  /** BEP 3 `warning message`: shown by clients, the announce still succeeds. */
  warning?: string;
  /** BEP 24 `external ip`: the address the tracker saw the client at, 4 or 16 raw bytes. */
  externalIp?: Buffer | undefined;
}

function int(n: number): number {
  if (!Number.isSafeInteger(n)) {
    throw new ProtocolError(
      'PROTO_ERR_BENCODE_UNSUPPORTED_TYPE',
      'integer field is not an integer',
    );
  }
  return n;
}

const EXTERNAL_IP_V4 = '11:external ip4:';
const EXTERNAL_IP_V6 = '11:external ip16:';

/** The key and length prefix of `external ip`, or '' without one. */
function externalIpHead(ip: Buffer | undefined): string {
  if (ip === undefined) return '';
  if (ip.length === 4) return EXTERNAL_IP_V4;
  if (ip.length === 16) return EXTERNAL_IP_V6;
  throw new ProtocolError('PROTO_ERR_BENCODE_UNSUPPORTED_TYPE', 'external ip is not 4 or 16 bytes');
}

/**
 * Bencoded announce answer with keys in byte order (BEP 3). Compact (BEP 23):
 * `peers` is always present, empty for an IPv6 answer, because clients reject
 * a reply without it (aquatic#82); IPv6 peers go in `peers6` (BEP 7), and an
 * answer with `otherPeers` carries both. Non-compact: `peers` is a list of
 * {ip, peer id, port} for either family, both when `otherPeers` is given.
 * `external ip` (BEP 24) sorts between `downloaded` and `incomplete`; its
 * bytes are copied in, never made a string.
 */
export function encodeAnnounceResponse(r: HttpAnnounceResponse): Buffer {
  const lead = `d8:completei${int(r.complete)}e10:downloadedi${int(r.downloaded)}e`;
  const ip = r.externalIp;
  const ipHead = externalIpHead(ip);
  const tail =
    `10:incompletei${int(r.incomplete)}e8:intervali${int(r.interval)}e` +
    `12:min intervali${int(r.minInterval)}e5:peers`;
  const warning = r.warning === undefined ? undefined : Buffer.from(r.warning, 'utf8');
  const warningHead = warning === undefined ? '' : `15:warning message${warning.length}:`;

  if (!r.compact) {
    const head = lead + ipHead + (ip === undefined ? '' : ip.toString('latin1')) + tail;
    return encodeNonCompact(head, r, warningHead, warning);
  }

  const other = r.otherPeers;
  const v4 = r.family === 4 ? r.peers : other;
  const v6 = r.family === 6 ? r.peers : other;
  const v4Len = v4 === undefined ? 0 : whole(v4.length, 4);
  const v6Len = v6 === undefined ? -1 : whole(v6.length, 6);
  const mid = `${v4Len}:`;
  const mid6 = v6Len < 0 ? '' : `6:peers6${v6Len}:`;
  const total =
    lead.length +
    ipHead.length +
    (ip?.length ?? 0) +
    tail.length +
    mid.length +
    v4Len +
    mid6.length +
    Math.max(v6Len, 0) +
    warningHead.length +
    (warning?.length ?? 0) +
    1;
  const out = Buffer.allocUnsafe(total);
  let o = out.write(lead, 0, 'latin1');
  if (ip !== undefined) {
    // Byte loops: at 20 bytes, two native write/copy calls cost more than the bytes.
    for (let k = 0; k < ipHead.length; k++) out[o++] = ipHead.charCodeAt(k);
    for (let k = 0; k < ip.length; k++) out[o++] = ip[k]!;
  }
  o += out.write(tail, o, 'latin1');
  o += out.write(mid, o, 'latin1');
  if (v4 !== undefined) o += v4.copy(out, o, 0, v4Len);
  if (v6 !== undefined) {
    o += out.write(mid6, o, 'latin1');
    o += v6.copy(out, o, 0, v6Len);
  }
  if (warning !== undefined) {
    o += out.write(warningHead, o, 'latin1');
    o += warning.copy(out, o);
  }
  out[o] = 0x65;
  return out;
}

/** `length` cut down to whole compact entries of `family`: a partial trailing entry is dropped. */
function whole(length: number, family: Family): number {
  return length - (length % compactPeerSize(family));
}

function encodeNonCompact(
  head: string,
  r: HttpAnnounceResponse,
  warningHead: string,
  warning: Buffer | undefined,
): Buffer {
  const parts: Buffer[] = [Buffer.from(`${head}l`, 'latin1')];
  const withIds = !r.noPeerId;
  dictPeers(parts, r.family, r.peers, withIds ? r.peerIds : undefined);
  if (r.otherPeers !== undefined)
    dictPeers(parts, r.family === 4 ? 6 : 4, r.otherPeers, withIds ? r.otherPeerIds : undefined);
  parts.push(Buffer.from('e', 'latin1'));
  if (warning !== undefined) parts.push(Buffer.from(warningHead, 'latin1'), warning);
  parts.push(Buffer.from('e', 'latin1'));
  return Buffer.concat(parts);
}

/** Appends one BEP 3 dictionary per compact entry of `peers` to `parts`. */
function dictPeers(
  parts: Buffer[],
  family: Family,
  peers: Buffer,
  peerIds: Buffer[] | undefined,
): void {
  const size = compactPeerSize(family);
  const peersLen = whole(peers.length, family);
  for (let off = 0, k = 0; off < peersLen; off += size, k++) {
    const ip = bytesToAddress(peers.subarray(off, off + size - 2));
    const port = peers.readUInt16BE(off + size - 2);
    const id = peerIds?.[k];
    if (id === undefined) {
      parts.push(Buffer.from(`d2:ip${ip.length}:${ip}4:porti${port}ee`, 'latin1'));
    } else {
      parts.push(
        Buffer.from(`d2:ip${ip.length}:${ip}7:peer id${id.length}:`, 'latin1'),
        id,
        Buffer.from(`4:porti${port}ee`, 'latin1'),
      );
    }
  }
}

/** BEP 48 `flags` of a scrape answer; a full scrape (docs/full-scrape.md) sends them. */
export interface ScrapeFlags {
  /** BEP 48 `min_request_interval`: seconds before asking again. */
  minRequestIntervalSeconds: number;
  /** `truncated: 1` when the answer leaves swarms out (a full scrape over its bound). */
  truncated: boolean;
}

/**
 * BEP 48 scrape answer: d5:filesd<20-byte hash>d8:completei..e10:downloadedi..e10:incompletei..eee e,
 * plus BEP 21 `downloaders` (between downloaded and incomplete) when a file has it.
 * Hashes are written in byte order (bencode keys must be sorted); a repeated hash is written once.
 * With `flags`, `5:flagsd20:min_request_intervali..e[9:truncatedi1e]e` follows `files`.
 */
export function encodeScrapeResponse(
  files: ReadonlyArray<{ infoHash: Buffer } & ScrapeCounts>,
  flags?: ScrapeFlags,
): Buffer {
  const sorted = files.slice().sort((a, b) => Buffer.compare(a.infoHash, b.infoHash));
  const parts: Buffer[] = [Buffer.from('d5:filesd', 'latin1')];
  let prev: Buffer | undefined;
  for (const f of sorted) {
    if (prev !== undefined && prev.equals(f.infoHash)) continue;
    prev = f.infoHash;
    parts.push(
      Buffer.from(`${f.infoHash.length}:`, 'latin1'),
      f.infoHash,
      Buffer.from(
        `d8:completei${int(f.complete)}e10:downloadedi${int(f.downloaded)}e` +
          (f.downloaders === undefined ? '' : `11:downloadersi${int(f.downloaders)}e`) +
          `10:incompletei${int(f.incomplete)}ee`,
        'latin1',
      ),
    );
  }
  parts.push(Buffer.from('e', 'latin1'));
  if (flags !== undefined)
    parts.push(
      Buffer.from(
        `5:flagsd20:min_request_intervali${int(flags.minRequestIntervalSeconds)}e` +
          `${flags.truncated ? '9:truncatedi1e' : ''}e`,
        'latin1',
      ),
    );
  parts.push(Buffer.from('e', 'latin1'));
  return Buffer.concat(parts);
}

/** When a refused client should come back (docs/decisions.md "Failure answers"). */
export interface FailureTiming {
  /** `interval`: libtorrent reads it from a failure too and waits at least this long. */
  intervalSeconds?: number;
  /** `min interval`: libtorrent falls back to it when `interval` is absent. */
  minIntervalSeconds?: number;
  /** BEP 31 `retry in`, sent in whole minutes rounded up. */
  retryInSeconds?: number;
}

/**
 * d14:failure reason<reason>e, plus `interval`, `min interval` and BEP 31
 * `retry in` when given (keys in bencode's byte order). Without `interval`
 * libtorrent waits its default 1800 s (docs/decisions.md "Failure answers").
 */
export function encodeFailure(reason: string, timing?: FailureTiming): Buffer {
  const text = Buffer.from(reason, 'utf8');
  let tail = '';
  if (timing?.intervalSeconds !== undefined)
    tail += `8:intervali${seconds(timing.intervalSeconds)}e`;
  if (timing?.minIntervalSeconds !== undefined)
    tail += `12:min intervali${seconds(timing.minIntervalSeconds)}e`;
  // BEP 31 counts `retry in` in minutes; round up so a client never retries early.
  if (timing?.retryInSeconds !== undefined)
    tail += `8:retry ini${Math.ceil(seconds(timing.retryInSeconds) / 60)}e`;
  return Buffer.concat([
    Buffer.from(`d14:failure reason${text.length}:`, 'latin1'),
    text,
    Buffer.from(`${tail}e`, 'latin1'),
  ]);
}

/** A whole, non-negative number of seconds for a bencoded integer. */
function seconds(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.ceil(n) : 0;
}
