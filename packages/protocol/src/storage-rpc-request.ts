// The request half of the storage batch body (layout in storage-rpc.ts):
// the gateway encodes the ops it gathered in one tick, storage-api decodes
// them within its limits.
import { ProtocolError } from './errors.ts';
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
  type BatchRequestLimits,
  type RpcOp,
  EVENTS,
  EVENT_NUMBER,
} from './storage-rpc-format.ts';
import {
  OP_WS_ANNOUNCE,
  OP_WS_LEAVE,
  Reader,
  checkWsOp,
  readWsOp,
  writeWsOp,
  wsOpSize,
} from './storage-rpc-ws.ts';
import { PEER_KEY_HASH_SIZE, type Family } from './types.ts';

const REQUEST_MAGIC = 0x534842; // "SHB"
const OP_ANNOUNCE = 1;
const OP_SCRAPE = 2;
const FLAG_SEEDER = 1;
const FLAG_WITH_PEER_IDS = 2;
const FLAG_PARTIAL_SEED = 4;
/** An 8-byte key hash follows numWant (version 3; docs/decisions.md "Peers that move"). */
const FLAG_KEY_HASH = 8;
const KNOWN_FLAGS = FLAG_SEEDER | FLAG_WITH_PEER_IDS | FLAG_PARTIAL_SEED | FLAG_KEY_HASH;
/** type, info_hash, peer_id, family, port, flags, event, numWant: everything but the address. */
const ANNOUNCE_FIXED_SIZE = 1 + HASH_SIZE + HASH_SIZE + 1 + 2 + 1 + 1 + 2;

function addressSize(family: Family): number {
  return family === 4 ? 4 : 16;
}

function isU16(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff;
}

/**
 * Throws PROTO_ERR_RPC_BAD_FIELD when the wire cannot carry `op`: a client
 * checks each op before queueing it, so one bad op never reaches (and
 * fails) a batch.
 */
export function checkBatchOp(op: RpcOp): void {
  if (isWsOp(op)) checkWsOp(op);
  else if (op.op === 'announce') {
    if (op.infoHash.length !== HASH_SIZE) throw rpcField('info_hash is not 20 bytes');
    if (op.peerId.length !== HASH_SIZE) throw rpcField('peer_id is not 20 bytes');
    if (op.family !== 4 && op.family !== 6) throw rpcField('family is not 4 or 6');
    if (op.address.length !== addressSize(op.family)) throw rpcField('address size');
    if (!isU16(op.port)) throw rpcField('port is not u16');
    if (!isU16(op.numWant)) throw rpcField('numWant is not u16');
    if (!(op.event in EVENT_NUMBER)) throw rpcField('event');
    if (op.keyHash !== undefined && op.keyHash.length !== PEER_KEY_HASH_SIZE)
      throw rpcField(`keyHash is not ${PEER_KEY_HASH_SIZE} bytes`);
  } else {
    const n = op.infoHashes.length;
    if (n < 1 || n > STORAGE_RPC_MAX_SCRAPE_HASHES) throw rpcField('scrape needs 1..255 hashes');
    for (const h of op.infoHashes) {
      if (h.length !== HASH_SIZE) throw rpcField('info_hash is not 20 bytes');
    }
  }
}

export function encodeBatchRequest(ops: readonly RpcOp[]): Buffer {
  if (ops.length > STORAGE_RPC_MAX_OPS) {
    throw tooManyOps(STORAGE_RPC_MAX_OPS);
  }
  let size = HEADER_SIZE;
  for (const op of ops) {
    checkBatchOp(op);
    size += isWsOp(op)
      ? wsOpSize(op)
      : op.op === 'announce'
        ? ANNOUNCE_FIXED_SIZE +
          addressSize(op.family) +
          (op.keyHash === undefined ? 0 : PEER_KEY_HASH_SIZE)
        : 2 + HASH_SIZE * op.infoHashes.length;
  }
  const buf = Buffer.allocUnsafe(size);
  writeHeader(buf, REQUEST_MAGIC, ops.length);
  let o = HEADER_SIZE;
  for (const op of ops) {
    if (isWsOp(op)) {
      o = writeWsOp(buf, o, op);
    } else if (op.op === 'announce') {
      buf[o++] = OP_ANNOUNCE;
      o += op.infoHash.copy(buf, o);
      o += op.peerId.copy(buf, o);
      buf[o++] = op.family;
      o += op.address.copy(buf, o);
      o = buf.writeUInt16BE(op.port, o);
      buf[o++] =
        (op.seeder ? FLAG_SEEDER : 0) |
        (op.withPeerIds ? FLAG_WITH_PEER_IDS : 0) |
        (op.partialSeed === true ? FLAG_PARTIAL_SEED : 0) |
        (op.keyHash === undefined ? 0 : FLAG_KEY_HASH);
      buf[o++] = EVENT_NUMBER[op.event];
      o = buf.writeUInt16BE(op.numWant, o);
      if (op.keyHash !== undefined) o += op.keyHash.copy(buf, o);
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
    throw tooManyOps(limits.maxOps);
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
      if ((flags & ~KNOWN_FLAGS) !== 0) throw rpcField('unknown flags');
      const event = EVENTS[buf[o++] ?? 0xff];
      if (event === undefined) throw rpcField('event is not 0..3');
      const numWant = buf.readUInt16BE(o);
      o += 2;
      let keyHash: Buffer | undefined;
      if ((flags & FLAG_KEY_HASH) !== 0) {
        if (buf.length - o < PEER_KEY_HASH_SIZE) throw truncated();
        keyHash = Buffer.from(buf.subarray(o, o + PEER_KEY_HASH_SIZE));
        o += PEER_KEY_HASH_SIZE;
      }
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
        // Set only when true, so an op without the field decodes as it was encoded.
        ...((flags & FLAG_PARTIAL_SEED) !== 0 ? { partialSeed: true } : {}),
        ...(keyHash === undefined ? {} : { keyHash }),
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
    } else if (type !== undefined && type >= OP_WS_ANNOUNCE && type <= OP_WS_LEAVE) {
      const r = new Reader(buf, o);
      ops[i] = readWsOp(r, type, limits.maxScrapeHashes);
      o = r.o;
    } else {
      throw new ProtocolError('PROTO_ERR_RPC_BAD_OP');
    }
  }
  if (o !== buf.length) throw trailingData();
  return ops;
}
