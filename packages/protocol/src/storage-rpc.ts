// The gateway <-> storage-api batch body (docs/decisions.md "Services"
// and docs/storage-api.md): the announces and scrapes a gateway gathered in one tick, as one
// binary request, and their results in the same order. Big-endian throughout.
//
// request  = "SHB" u8 version, u16 count, count * op
//   op     = u8 type (1 announce, 2 scrape)
//   announce: 20 info_hash, 20 peer_id, u8 family (4|6), 4|16 address, u16 port,
//             u8 flags (bit0 seeder, bit1 withPeerIds), u8 event
//             (0 none, 1 completed, 2 started, 3 stopped: BEP 15 numbering), u16 numWant
//   scrape:   u8 n (1..255), n * 20 info_hash
// response = "SHR" u8 version, u16 count, count * result (same order as the ops)
//   result = u8 status (0 ok, 1 error)
//   ok announce: u32 seeders, u32 leechers, u32 downloaded, u16 peer count,
//                count * (6|18) compact peers of the op's family, u8 hasIds,
//                count * 20 peer ids when hasIds
//   ok scrape:   u8 n (= the op's n), n * (u32 seeders, u32 leechers, u32 downloaded)
//   error:       u8 len (1..255), len ASCII bytes of a code (e.g. STORE_ERR_UNAVAILABLE)
//
// Each result is its op's alone: a store answer the layout cannot carry (ids
// not parallel to the peers, a broken peer list, another kind than its op) is
// sent as that op's error (PROTO_ERR_RPC_BAD_FIELD / PROTO_ERR_RPC_MISMATCH),
// and a store answer without peer ids as hasIds 0 (docs/storage-api.md
// "Errors per op").
//
// A response does not repeat each op's type or family: the client decodes it
// against the ops it sent. Every length is checked against the remaining
// input before anything is read or allocated (docs/conventions.md "Errors"). Bump
// STORAGE_RPC_VERSION on any change to these bytes: a storage-api refuses a
// version it does not speak, so two releases never misread each other.
import { ProtocolError, isProtocolError } from './errors.ts';
import type { AnnounceEvent, Family } from './types.ts';

export const STORAGE_RPC_VERSION = 1;
export const STORAGE_RPC_CONTENT_TYPE = 'application/vnd.shoal.batch';
export const STORAGE_RPC_PATH = '/v1/batch';
/** HTTP header carrying the version, so a server can refuse before reading the body. */
export const STORAGE_RPC_VERSION_HEADER = 'x-shoal-rpc-version';
/** The u16 count field's ceiling. */
export const STORAGE_RPC_MAX_OPS = 0xffff;
/** The u8 n field's ceiling. */
export const STORAGE_RPC_MAX_SCRAPE_HASHES = 0xff;

const REQUEST_MAGIC = 0x534842; // "SHB"
const RESPONSE_MAGIC = 0x534852; // "SHR"
const HEADER_SIZE = 6;
const OP_ANNOUNCE = 1;
const OP_SCRAPE = 2;
const STATUS_OK = 0;
const STATUS_ERROR = 1;
const FLAG_SEEDER = 1;
const FLAG_WITH_PEER_IDS = 2;
const HASH_SIZE = 20;
const U32_MAX = 0xffffffff;
/** type, info_hash, peer_id, family, port, flags, event, numWant: everything but the address. */
const ANNOUNCE_FIXED_SIZE = 1 + HASH_SIZE + HASH_SIZE + 1 + 2 + 1 + 1 + 2;
const ANNOUNCE_RESULT_FIXED_SIZE = 1 + 12 + 2 + 1;
const COUNTS_SIZE = 12;
const ERROR_CODE_PATTERN = /^[A-Z0-9_]{1,255}$/;

const EVENTS: readonly AnnounceEvent[] = ['none', 'completed', 'started', 'stopped'];
const EVENT_NUMBER: Readonly<Record<AnnounceEvent, number>> = {
  none: 0,
  completed: 1,
  started: 2,
  stopped: 3,
};

/** One announce, with the fields of @shoal/storage's PeerAnnounce. */
export interface RpcAnnounce {
  op: 'announce';
  /** 20 bytes. */
  infoHash: Buffer;
  /** 20 bytes. */
  peerId: Buffer;
  family: Family;
  /** 4 bytes for family 4, 16 for family 6. */
  address: Buffer;
  /** 0..65535. */
  port: number;
  seeder: boolean;
  event: AnnounceEvent;
  /** 0..65535, already defaulted and capped by the gateway. */
  numWant: number;
  withPeerIds: boolean;
}

export interface RpcScrape {
  op: 'scrape';
  /** 1..255 hashes of 20 bytes. */
  infoHashes: Buffer[];
}

export type RpcOp = RpcAnnounce | RpcScrape;

export interface RpcCounts {
  seeders: number;
  leechers: number;
  downloaded: number;
}

export type RpcResult =
  | {
      ok: true;
      op: 'announce';
      seeders: number;
      leechers: number;
      downloaded: number;
      /** Compact peers of the op's family (6 or 18 bytes each). */
      peers: Buffer;
      /** Parallel to the peers when the op asked withPeerIds. */
      peerIds: Buffer[] | undefined;
    }
  | { ok: true; op: 'scrape'; counts: RpcCounts[] }
  | { ok: false; code: string };

export interface BatchRequestLimits {
  /** Most ops one request may carry (<= 65535). */
  maxOps: number;
  /** Most hashes one scrape op may carry (<= 255). */
  maxScrapeHashes: number;
}

function peerSize(family: Family): number {
  return family === 4 ? 6 : 18;
}

function addressSize(family: Family): number {
  return family === 4 ? 4 : 16;
}

function isU16(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff;
}

/** Counts are clamped into u32: a swarm past 4 billion is not a case to fail on. */
function u32(n: number): number {
  return n <= 0 ? 0 : n >= U32_MAX ? U32_MAX : Math.floor(n);
}

/**
 * Throws PROTO_ERR_RPC_BAD_FIELD when the wire cannot carry `op`: a client
 * checks each op before queueing it, so one bad op never reaches (and
 * fails) a batch.
 */
export function checkBatchOp(op: RpcOp): void {
  if (op.op === 'announce') {
    if (op.infoHash.length !== HASH_SIZE) throw rpcField('info_hash is not 20 bytes');
    if (op.peerId.length !== HASH_SIZE) throw rpcField('peer_id is not 20 bytes');
    if (op.family !== 4 && op.family !== 6) throw rpcField('family is not 4 or 6');
    if (op.address.length !== addressSize(op.family)) throw rpcField('address size');
    if (!isU16(op.port)) throw rpcField('port is not u16');
    if (!isU16(op.numWant)) throw rpcField('numWant is not u16');
    if (!(op.event in EVENT_NUMBER)) throw rpcField('event');
  } else {
    const n = op.infoHashes.length;
    if (n < 1 || n > STORAGE_RPC_MAX_SCRAPE_HASHES) throw rpcField('scrape needs 1..255 hashes');
    for (const h of op.infoHashes) {
      if (h.length !== HASH_SIZE) throw rpcField('info_hash is not 20 bytes');
    }
  }
}

function rpcField(detail: string): ProtocolError {
  return new ProtocolError('PROTO_ERR_RPC_BAD_FIELD', detail);
}

function truncated(): ProtocolError {
  return new ProtocolError('PROTO_ERR_RPC_TRUNCATED');
}

function writeHeader(buf: Buffer, magic: number, count: number): void {
  buf.writeUIntBE(magic, 0, 3);
  buf[3] = STORAGE_RPC_VERSION;
  buf.writeUInt16BE(count, 4);
}

/** Checks magic and version; returns the op/result count. */
function readHeader(buf: Buffer, magic: number): number {
  if (buf.length < HEADER_SIZE) throw truncated();
  if (buf.readUIntBE(0, 3) !== magic) throw new ProtocolError('PROTO_ERR_RPC_BAD_MAGIC');
  const version = buf[3];
  if (version !== STORAGE_RPC_VERSION) {
    throw new ProtocolError('PROTO_ERR_RPC_VERSION', `this side speaks ${STORAGE_RPC_VERSION}`);
  }
  return buf.readUInt16BE(4);
}

/** Reads the version byte of a request or response without decoding it (undefined when too short). */
export function peekBatchVersion(buf: Buffer): number | undefined {
  return buf.length >= 4 ? buf[3] : undefined;
}

export function encodeBatchRequest(ops: readonly RpcOp[]): Buffer {
  if (ops.length > STORAGE_RPC_MAX_OPS) {
    throw new ProtocolError('PROTO_ERR_RPC_TOO_MANY_OPS', `at most ${STORAGE_RPC_MAX_OPS}`);
  }
  let size = HEADER_SIZE;
  for (const op of ops) {
    checkBatchOp(op);
    size +=
      op.op === 'announce'
        ? ANNOUNCE_FIXED_SIZE + addressSize(op.family)
        : 2 + HASH_SIZE * op.infoHashes.length;
  }
  const buf = Buffer.allocUnsafe(size);
  writeHeader(buf, REQUEST_MAGIC, ops.length);
  let o = HEADER_SIZE;
  for (const op of ops) {
    if (op.op === 'announce') {
      buf[o++] = OP_ANNOUNCE;
      o += op.infoHash.copy(buf, o);
      o += op.peerId.copy(buf, o);
      buf[o++] = op.family;
      o += op.address.copy(buf, o);
      o = buf.writeUInt16BE(op.port, o);
      buf[o++] = (op.seeder ? FLAG_SEEDER : 0) | (op.withPeerIds ? FLAG_WITH_PEER_IDS : 0);
      buf[o++] = EVENT_NUMBER[op.event];
      o = buf.writeUInt16BE(op.numWant, o);
    } else {
      buf[o++] = OP_SCRAPE;
      buf[o++] = op.infoHashes.length;
      for (const h of op.infoHashes) o += h.copy(buf, o);
    }
  }
  return buf;
}

/**
 * Decodes a gateway's batch. The returned Buffers are copies, so a store may
 * keep them without pinning the whole request body.
 */
export function decodeBatchRequest(buf: Buffer, limits: BatchRequestLimits): RpcOp[] {
  const count = readHeader(buf, REQUEST_MAGIC);
  if (count > limits.maxOps) {
    throw new ProtocolError('PROTO_ERR_RPC_TOO_MANY_OPS', `at most ${limits.maxOps}`);
  }
  // The smallest op is a one-hash scrape (22 bytes) or an IPv4 announce (52):
  // a count the body cannot hold is refused before the array is sized by it.
  if (count * (2 + HASH_SIZE) > buf.length - HEADER_SIZE) throw truncated();
  const ops: RpcOp[] = new Array<RpcOp>(count);
  let o = HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    if (o >= buf.length) throw truncated();
    const type = buf[o++];
    if (type === OP_ANNOUNCE) {
      if (buf.length - o < ANNOUNCE_FIXED_SIZE - 1 + 4) throw truncated();
      const infoHash = Buffer.from(buf.subarray(o, o + HASH_SIZE));
      o += HASH_SIZE;
      const peerId = Buffer.from(buf.subarray(o, o + HASH_SIZE));
      o += HASH_SIZE;
      const family = buf[o++];
      if (family !== 4 && family !== 6) throw rpcField('family is not 4 or 6');
      const addrLen = addressSize(family);
      if (buf.length - o < addrLen + 6) throw truncated();
      const address = Buffer.from(buf.subarray(o, o + addrLen));
      o += addrLen;
      const port = buf.readUInt16BE(o);
      o += 2;
      const flags = buf[o++] ?? 0;
      if ((flags & ~(FLAG_SEEDER | FLAG_WITH_PEER_IDS)) !== 0) throw rpcField('unknown flags');
      const event = EVENTS[buf[o++] ?? 0xff];
      if (event === undefined) throw rpcField('event is not 0..3');
      const numWant = buf.readUInt16BE(o);
      o += 2;
      ops[i] = {
        op: 'announce',
        infoHash,
        peerId,
        family,
        address,
        port,
        seeder: (flags & FLAG_SEEDER) !== 0,
        event,
        numWant,
        withPeerIds: (flags & FLAG_WITH_PEER_IDS) !== 0,
      };
    } else if (type === OP_SCRAPE) {
      if (o >= buf.length) throw truncated();
      const n = buf[o++] ?? 0;
      if (n === 0) throw rpcField('scrape needs 1..255 hashes');
      if (n > limits.maxScrapeHashes) {
        throw new ProtocolError(
          'PROTO_ERR_RPC_TOO_MANY_HASHES',
          `at most ${limits.maxScrapeHashes}`,
        );
      }
      if (buf.length - o < n * HASH_SIZE) throw truncated();
      const infoHashes: Buffer[] = new Array<Buffer>(n);
      for (let j = 0; j < n; j++) {
        infoHashes[j] = Buffer.from(buf.subarray(o, o + HASH_SIZE));
        o += HASH_SIZE;
      }
      ops[i] = { op: 'scrape', infoHashes };
    } else {
      throw new ProtocolError('PROTO_ERR_RPC_BAD_OP');
    }
  }
  if (o !== buf.length) throw new ProtocolError('PROTO_ERR_RPC_TRAILING_DATA');
  return ops;
}

export interface EncodeBatchResponseOptions {
  /**
   * Told of each result that cannot travel as it is (peer ids not parallel
   * to the peers, a peer list of the wrong size, a result of another kind
   * than its op, an error code outside A-Z0-9_). That result travels as an
   * error result carrying the problem's code (PROTO_ERR_RPC_BAD_FIELD or
   * PROTO_ERR_RPC_MISMATCH); the other results travel untouched.
   */
  onInvalid?: (index: number, err: ProtocolError) => void;
}

/**
 * Pass the decoded ops when there are any: an announce result's peer count
 * depends on the op's family, which the result does not carry.
 *
 * One result's problem is that op's error, never its neighbours'
 * (docs/storage-api.md "Errors per op"): only a batch-level mismatch (more
 * results than the wire carries, another count than the ops) throws.
 */
export function encodeBatchResponse(
  results: readonly RpcResult[],
  ops?: readonly RpcOp[],
  options: EncodeBatchResponseOptions = {},
): Buffer {
  if (results.length > STORAGE_RPC_MAX_OPS) {
    throw new ProtocolError('PROTO_ERR_RPC_TOO_MANY_OPS', `at most ${STORAGE_RPC_MAX_OPS}`);
  }
  if (ops !== undefined && ops.length !== results.length) {
    throw new ProtocolError('PROTO_ERR_RPC_MISMATCH', 'result count');
  }
  const counts = new Array<number>(results.length);
  // Copied only when a result has to be replaced by its error.
  let sent: RpcResult[] | undefined;
  let size = HEADER_SIZE;
  for (let i = 0; i < results.length; i++) {
    let r = results[i] as RpcResult;
    try {
      counts[i] = checkResult(r, ops?.[i], ops !== undefined);
    } catch (err) {
      if (!isProtocolError(err)) throw err;
      options.onInvalid?.(i, err);
      r = { ok: false, code: err.code };
      sent ??= results.slice();
      sent[i] = r;
      counts[i] = 0;
    }
    if (!r.ok) size += 2 + r.code.length;
    else if (r.op === 'announce') {
      size += ANNOUNCE_RESULT_FIXED_SIZE + r.peers.length;
      if (r.peerIds !== undefined) size += r.peerIds.length * HASH_SIZE;
    } else size += 2 + r.counts.length * COUNTS_SIZE;
  }
  const out = sent ?? results;
  const buf = Buffer.allocUnsafe(size);
  writeHeader(buf, RESPONSE_MAGIC, out.length);
  let o = HEADER_SIZE;
  for (let i = 0; i < out.length; i++) {
    const r = out[i] as RpcResult;
    if (!r.ok) {
      buf[o++] = STATUS_ERROR;
      buf[o++] = r.code.length;
      o += buf.write(r.code, o, 'latin1');
    } else if (r.op === 'announce') {
      buf[o++] = STATUS_OK;
      o = buf.writeUInt32BE(u32(r.seeders), o);
      o = buf.writeUInt32BE(u32(r.leechers), o);
      o = buf.writeUInt32BE(u32(r.downloaded), o);
      o = buf.writeUInt16BE(counts[i] ?? 0, o);
      o += r.peers.copy(buf, o);
      if (r.peerIds === undefined) {
        buf[o++] = 0;
      } else {
        buf[o++] = 1;
        for (const id of r.peerIds) o += id.copy(buf, o);
      }
    } else {
      buf[o++] = STATUS_OK;
      buf[o++] = r.counts.length;
      for (const c of r.counts) {
        o = buf.writeUInt32BE(u32(c.seeders), o);
        o = buf.writeUInt32BE(u32(c.leechers), o);
        o = buf.writeUInt32BE(u32(c.downloaded), o);
      }
    }
  }
  return buf;
}

/**
 * Throws the coded ProtocolError that keeps one result off the wire;
 * returns an announce result's peer count (0 for the other kinds).
 * `strict`: the ops were passed, so each result must be of its op's kind.
 */
function checkResult(r: RpcResult, op: RpcOp | undefined, strict: boolean): number {
  if (!r.ok) {
    if (typeof r.code !== 'string' || !ERROR_CODE_PATTERN.test(r.code))
      throw rpcField('error code is not 1..255 of A-Z0-9_');
    return 0;
  }
  if (r.op === 'announce') {
    if (strict && op?.op !== 'announce') {
      throw new ProtocolError('PROTO_ERR_RPC_MISMATCH', 'result kind');
    }
    const count = announcePeerCount(r.peers, op);
    if (r.peerIds !== undefined) {
      if (r.peerIds.length !== count) throw rpcField('peerIds do not match peers');
      for (const id of r.peerIds) if (id.length !== HASH_SIZE) throw rpcField('peer id size');
    }
    return count;
  }
  if (strict && op?.op !== 'scrape') {
    throw new ProtocolError('PROTO_ERR_RPC_MISMATCH', 'result kind');
  }
  const n = r.counts.length;
  if (n < 1 || n > STORAGE_RPC_MAX_SCRAPE_HASHES) throw rpcField('scrape needs 1..255 counts');
  if (op?.op === 'scrape' && n !== op.infoHashes.length) {
    throw new ProtocolError('PROTO_ERR_RPC_MISMATCH', 'scrape size');
  }
  return 0;
}

/**
 * The peer count of an announce result: bytes / (6|18) for the op's family.
 * Without the op, a length that is not a multiple of 18 can only be IPv4 and
 * 0 is 0 either way; any other length is ambiguous (18 bytes: three IPv4
 * peers or one IPv6 peer) and refused rather than guessed.
 */
function announcePeerCount(peers: Buffer, op: RpcOp | undefined): number {
  let family: Family;
  if (op !== undefined) {
    if (op.op !== 'announce') throw new ProtocolError('PROTO_ERR_RPC_MISMATCH', 'result kind');
    family = op.family;
  } else if (peers.length % 18 !== 0) {
    family = 4;
  } else if (peers.length === 0) {
    return 0;
  } else {
    throw rpcField('peers of an unknown family: pass the ops');
  }
  const size = peerSize(family);
  if (peers.length % size !== 0) throw rpcField('peers length');
  const count = peers.length / size;
  if (count > 0xffff) throw rpcField('more than 65535 peers');
  return count;
}

export function decodeBatchResponse(buf: Buffer, ops: readonly RpcOp[]): RpcResult[] {
  const count = readHeader(buf, RESPONSE_MAGIC);
  if (count !== ops.length) throw new ProtocolError('PROTO_ERR_RPC_MISMATCH', 'result count');
  const results: RpcResult[] = [];
  let o = HEADER_SIZE;
  for (const op of ops) {
    if (o >= buf.length) throw truncated();
    const status = buf[o++];
    if (status === STATUS_ERROR) {
      if (o >= buf.length) throw truncated();
      const len = buf[o++] ?? 0;
      if (buf.length - o < len) throw truncated();
      const code = buf.toString('latin1', o, o + len);
      if (!ERROR_CODE_PATTERN.test(code)) throw rpcField('error code is not 1..255 of A-Z0-9_');
      o += len;
      results.push({ ok: false, code });
    } else if (status !== STATUS_OK) {
      throw rpcField('status is not 0 or 1');
    } else if (op.op === 'announce') {
      if (buf.length - o < ANNOUNCE_RESULT_FIXED_SIZE - 2) throw truncated();
      const seeders = buf.readUInt32BE(o);
      const leechers = buf.readUInt32BE(o + 4);
      const downloaded = buf.readUInt32BE(o + 8);
      const n = buf.readUInt16BE(o + 12);
      o += 14;
      const peersLen = n * peerSize(op.family);
      if (buf.length - o < peersLen + 1) throw truncated();
      const peers = buf.subarray(o, o + peersLen);
      o += peersLen;
      const hasIds = buf[o++];
      let peerIds: Buffer[] | undefined;
      if (hasIds === 1) {
        if (buf.length - o < n * HASH_SIZE) throw truncated();
        peerIds = new Array<Buffer>(n);
        for (let j = 0; j < n; j++) {
          peerIds[j] = buf.subarray(o, o + HASH_SIZE);
          o += HASH_SIZE;
        }
      } else if (hasIds !== 0) {
        throw rpcField('hasIds is not 0 or 1');
      }
      results.push({ ok: true, op: 'announce', seeders, leechers, downloaded, peers, peerIds });
    } else {
      if (o >= buf.length) throw truncated();
      const n = buf[o++] ?? 0;
      if (n !== op.infoHashes.length)
        throw new ProtocolError('PROTO_ERR_RPC_MISMATCH', 'scrape size');
      if (buf.length - o < n * COUNTS_SIZE) throw truncated();
      const counts: RpcCounts[] = new Array<RpcCounts>(n);
      for (let j = 0; j < n; j++) {
        counts[j] = {
          seeders: buf.readUInt32BE(o),
          leechers: buf.readUInt32BE(o + 4),
          downloaded: buf.readUInt32BE(o + 8),
        };
        o += COUNTS_SIZE;
      }
      results.push({ ok: true, op: 'scrape', counts });
    }
  }
  if (o !== buf.length) throw new ProtocolError('PROTO_ERR_RPC_TRAILING_DATA');
  return results;
}
