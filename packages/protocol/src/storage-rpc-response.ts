// The response half of the storage batch body (layout in storage-rpc.ts):
// storage-api encodes each op's result, one op's problem staying that op's
// error, and the gateway decodes them against the ops it sent.
import { ProtocolError, isProtocolError } from './errors.ts';
import {
  HASH_SIZE,
  HEADER_SIZE,
  STORAGE_RPC_MAX_OPS,
  STORAGE_RPC_MAX_SCRAPE_HASHES,
  readHeader,
  rpcField,
  tooManyOps,
  trailingData,
  truncated,
  writeHeader,
  isWsOp,
  type RpcCounts,
  type RpcOp,
  type RpcResult,
  type RpcWsResult,
} from './storage-rpc-format.ts';
import {
  Reader,
  checkWsResult,
  readWsResult,
  writeWsResult,
  wsResultSize,
} from './storage-rpc-ws.ts';
import type { Family } from './types.ts';

const RESPONSE_MAGIC = 0x534852; // "SHR"
const STATUS_OK = 0;
const STATUS_ERROR = 1;
const U32_MAX = 0xffffffff;
const ANNOUNCE_RESULT_FIXED_SIZE = 1 + 16 + 2 + 1;
const COUNTS_SIZE = 16;
/** The partial-seed count of a store that could not tell (a custom query without the column). */
const UNKNOWN = U32_MAX;
const ERROR_CODE_PATTERN = /^[A-Z0-9_]{1,255}$/;

function peerSize(family: Family): number {
  return family === 4 ? 6 : 18;
}

/** Counts are clamped into u32: a swarm past 4 billion is not a case to fail on. */
function u32(n: number): number {
  return n <= 0 ? 0 : n >= U32_MAX ? U32_MAX : Math.floor(n);
}

/** Partial seeds: UNKNOWN for undefined, otherwise clamped below it. */
function partialU32(n: number | undefined): number {
  return n === undefined ? UNKNOWN : Math.min(u32(n), UNKNOWN - 1);
}

function readPartial(buf: Buffer, o: number): { partialSeeds?: number } {
  const v = buf.readUInt32BE(o);
  return v === UNKNOWN ? {} : { partialSeeds: v };
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
    throw tooManyOps(STORAGE_RPC_MAX_OPS);
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
    else if (isWsResult(r)) size += 1 + wsResultSize(r);
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
    } else if (isWsResult(r)) {
      buf[o++] = STATUS_OK;
      o = writeWsResult(buf, o, r);
    } else if (r.op === 'announce') {
      buf[o++] = STATUS_OK;
      o = buf.writeUInt32BE(u32(r.seeders), o);
      o = buf.writeUInt32BE(u32(r.leechers), o);
      o = buf.writeUInt32BE(u32(r.downloaded), o);
      o = buf.writeUInt32BE(partialU32(r.partialSeeds), o);
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
        o = buf.writeUInt32BE(partialU32(c.partialSeeds), o);
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
  if (isWsResult(r)) {
    if (strict && (op === undefined || !isWsOp(op)))
      throw new ProtocolError('PROTO_ERR_RPC_MISMATCH', 'result kind');
    checkWsResult(r, op !== undefined && isWsOp(op) ? op : undefined);
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
function isWsResult(r: RpcResult & { ok: true }): r is RpcWsResult {
  return r.op !== 'announce' && r.op !== 'scrape';
}

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
    } else if (isWsOp(op)) {
      const r = new Reader(buf, o);
      results.push(readWsResult(r, op));
      o = r.o;
    } else if (op.op === 'announce') {
      if (buf.length - o < ANNOUNCE_RESULT_FIXED_SIZE - 2) throw truncated();
      const seeders = buf.readUInt32BE(o);
      const leechers = buf.readUInt32BE(o + 4);
      const downloaded = buf.readUInt32BE(o + 8);
      const partial = readPartial(buf, o + 12);
      const n = buf.readUInt16BE(o + 16);
      o += 18;
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
      results.push({
        ok: true,
        op: 'announce',
        seeders,
        leechers,
        downloaded,
        ...partial,
        peers,
        peerIds,
      });
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
          ...readPartial(buf, o + 12),
        };
        o += COUNTS_SIZE;
      }
      results.push({ ok: true, op: 'scrape', counts });
    }
  }
  if (o !== buf.length) throw trailingData();
  return results;
}
