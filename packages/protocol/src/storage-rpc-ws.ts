// The WebSocket (WebTorrent) ops of the storage batch body, version 4 (layout
// in storage-rpc.ts; docs/webtorrent.md "The split topology"): a gateway of
// the split topology keeps its WebSocket peers in storage-api, which knows
// which gateway holds each peer's socket. The ops and their results are
// encoded and decoded here; storage-rpc-request.ts and storage-rpc-response.ts
// call in for op types 3..6.
import { ProtocolError } from './errors.ts';
import {
  HASH_SIZE,
  rpcField,
  truncated,
  type RpcCounts,
  type RpcWsAnnounce,
  type RpcWsHolder,
  type RpcWsLeave,
  type RpcWsOp,
  type RpcWsResult,
  type RpcWsScrape,
  type RpcWsTarget,
  EVENTS,
  EVENT_NUMBER,
} from './storage-rpc-format.ts';

export const OP_WS_ANNOUNCE = 3;
export const OP_WS_SCRAPE = 4;
export const OP_WS_HOLDER = 5;
export const OP_WS_LEAVE = 6;

/** A gateway id: 1..64 of [A-Za-z0-9_.:-] (docs/webtorrent.md "Design"). */
export const GATEWAY_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const FLAG_SEEDER = 1;
const U32_MAX = 0xffffffff;

export function isGatewayId(s: unknown): s is string {
  return typeof s === 'string' && GATEWAY_ID_PATTERN.test(s);
}

function checkGateway(gateway: string): void {
  if (!isGatewayId(gateway)) throw rpcField('gateway id is not 1..64 of A-Za-z0-9_.:-');
}

function checkHash(b: Buffer, what: string): void {
  if (b.length !== HASH_SIZE) throw rpcField(`${what} is not 20 bytes`);
}

/** Throws PROTO_ERR_RPC_BAD_FIELD when the wire cannot carry the WebSocket op. */
export function checkWsOp(op: RpcWsOp): void {
  switch (op.op) {
    case 'wsAnnounce':
      checkHash(op.infoHash, 'info_hash');
      checkHash(op.peerId, 'peer_id');
      checkGateway(op.gateway);
      if (!(op.event in EVENT_NUMBER)) throw rpcField('event');
      if (!Number.isInteger(op.numWant) || op.numWant < 0 || op.numWant > 0xffff)
        throw rpcField('numWant is not u16');
      if (
        !Number.isInteger(op.lifetimeSeconds) ||
        op.lifetimeSeconds < 1 ||
        op.lifetimeSeconds > U32_MAX
      )
        throw rpcField('lifetimeSeconds is not 1..u32');
      return;
    case 'wsScrape':
      if (op.infoHashes.length < 1 || op.infoHashes.length > 0xff)
        throw rpcField('scrape needs 1..255 hashes');
      for (const h of op.infoHashes) checkHash(h, 'info_hash');
      return;
    case 'wsHolder':
      checkHash(op.infoHash, 'info_hash');
      checkHash(op.peerId, 'peer_id');
      return;
    case 'wsLeave':
      checkGateway(op.gateway);
      if (op.peers.length < 1 || op.peers.length > 0xffff)
        throw rpcField('leave needs 1..65535 peers');
      for (const p of op.peers) {
        checkHash(p.infoHash, 'info_hash');
        checkHash(p.peerId, 'peer_id');
      }
      return;
  }
}

/** Bytes of a checked op, its type byte included. */
export function wsOpSize(op: RpcWsOp): number {
  switch (op.op) {
    case 'wsAnnounce':
      return 1 + 2 * HASH_SIZE + 1 + 1 + 2 + 4 + 1 + op.gateway.length;
    case 'wsScrape':
      return 2 + HASH_SIZE * op.infoHashes.length;
    case 'wsHolder':
      return 1 + 2 * HASH_SIZE;
    case 'wsLeave':
      return 1 + 1 + op.gateway.length + 2 + 2 * HASH_SIZE * op.peers.length;
  }
}

/** Writes a checked op at `o`; returns the offset after it. */
export function writeWsOp(buf: Buffer, o: number, op: RpcWsOp): number {
  switch (op.op) {
    case 'wsAnnounce':
      buf[o++] = OP_WS_ANNOUNCE;
      o += op.infoHash.copy(buf, o);
      o += op.peerId.copy(buf, o);
      buf[o++] = op.seeder ? FLAG_SEEDER : 0;
      buf[o++] = EVENT_NUMBER[op.event];
      o = buf.writeUInt16BE(op.numWant, o);
      o = buf.writeUInt32BE(op.lifetimeSeconds, o);
      return writeGateway(buf, o, op.gateway);
    case 'wsScrape':
      buf[o++] = OP_WS_SCRAPE;
      buf[o++] = op.infoHashes.length;
      for (const h of op.infoHashes) o += h.copy(buf, o);
      return o;
    case 'wsHolder':
      buf[o++] = OP_WS_HOLDER;
      o += op.infoHash.copy(buf, o);
      return o + op.peerId.copy(buf, o);
    case 'wsLeave':
      buf[o++] = OP_WS_LEAVE;
      o = writeGateway(buf, o, op.gateway);
      o = buf.writeUInt16BE(op.peers.length, o);
      for (const p of op.peers) {
        o += p.infoHash.copy(buf, o);
        o += p.peerId.copy(buf, o);
      }
      return o;
  }
}

function writeGateway(buf: Buffer, o: number, gateway: string): number {
  buf[o++] = gateway.length;
  return o + buf.write(gateway, o, 'latin1');
}

/** A reader over one body: every length is checked before it is read. */
export class Reader {
  readonly buf: Buffer;
  o: number;
  constructor(buf: Buffer, offset: number) {
    this.buf = buf;
    this.o = offset;
  }

  need(n: number): void {
    if (this.buf.length - this.o < n) throw truncated();
  }

  u8(): number {
    this.need(1);
    return this.buf[this.o++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.o);
    this.o += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.o);
    this.o += 4;
    return v;
  }

  /** A copy: a store may keep it without pinning the body. */
  bytes(n: number): Buffer {
    this.need(n);
    const b = Buffer.from(this.buf.subarray(this.o, this.o + n));
    this.o += n;
    return b;
  }

  /** u8 length, then that many bytes of a gateway id; 0 when `optional` gives undefined. */
  gateway(optional: boolean): string | undefined {
    const n = this.u8();
    if (n === 0 && optional) return undefined;
    this.need(n);
    const s = this.buf.toString('latin1', this.o, this.o + n);
    this.o += n;
    if (!isGatewayId(s)) throw rpcField('gateway id is not 1..64 of A-Za-z0-9_.:-');
    return s;
  }
}

/** Reads the op after its type byte `type` (3..6). */
export function readWsOp(r: Reader, type: number, maxScrapeHashes: number): RpcWsOp {
  switch (type) {
    case OP_WS_ANNOUNCE: {
      const infoHash = r.bytes(HASH_SIZE);
      const peerId = r.bytes(HASH_SIZE);
      const flags = r.u8();
      if ((flags & ~FLAG_SEEDER) !== 0) throw rpcField('unknown flags');
      const event = EVENTS[r.u8()];
      if (event === undefined) throw rpcField('event is not 0..3');
      const numWant = r.u16();
      const lifetimeSeconds = r.u32();
      if (lifetimeSeconds === 0) throw rpcField('lifetimeSeconds is 0');
      const gateway = r.gateway(false)!;
      return {
        op: 'wsAnnounce',
        infoHash,
        peerId,
        seeder: (flags & FLAG_SEEDER) !== 0,
        event,
        numWant,
        lifetimeSeconds,
        gateway,
      } satisfies RpcWsAnnounce;
    }
    case OP_WS_SCRAPE: {
      const n = r.u8();
      if (n === 0) throw rpcField('scrape needs 1..255 hashes');
      if (n > maxScrapeHashes)
        throw new ProtocolError('PROTO_ERR_RPC_TOO_MANY_HASHES', `at most ${maxScrapeHashes}`);
      r.need(n * HASH_SIZE);
      const infoHashes: Buffer[] = [];
      for (let j = 0; j < n; j++) infoHashes.push(r.bytes(HASH_SIZE));
      return { op: 'wsScrape', infoHashes } satisfies RpcWsScrape;
    }
    case OP_WS_HOLDER:
      return {
        op: 'wsHolder',
        infoHash: r.bytes(HASH_SIZE),
        peerId: r.bytes(HASH_SIZE),
      } satisfies RpcWsHolder;
    default: {
      const gateway = r.gateway(false)!;
      const n = r.u16();
      if (n === 0) throw rpcField('leave needs 1..65535 peers');
      // Checked before the array is sized by it.
      r.need(n * 2 * HASH_SIZE);
      const peers: Array<{ infoHash: Buffer; peerId: Buffer }> = [];
      for (let j = 0; j < n; j++)
        peers.push({ infoHash: r.bytes(HASH_SIZE), peerId: r.bytes(HASH_SIZE) });
      return { op: 'wsLeave', gateway, peers } satisfies RpcWsLeave;
    }
  }
}

/** Throws the coded error that keeps a WebSocket result of `op` off the wire. */
export function checkWsResult(r: RpcWsResult, op: RpcWsOp | undefined): void {
  if (op !== undefined && op.op !== r.op) throw rpcMismatch();
  switch (r.op) {
    case 'wsAnnounce':
      if (r.targets.length > 0xffff) throw rpcField('more than 65535 targets');
      for (const t of r.targets) {
        checkHash(t.peerId, 'peer_id');
        checkGateway(t.gateway);
      }
      return;
    case 'wsScrape':
      if (r.counts.length < 1 || r.counts.length > 0xff)
        throw rpcField('scrape needs 1..255 counts');
      if (op?.op === 'wsScrape' && op.infoHashes.length !== r.counts.length) throw rpcMismatch();
      return;
    case 'wsHolder':
      if (r.gateway !== undefined) checkGateway(r.gateway);
      return;
    case 'wsLeave':
      return;
  }
}

function rpcMismatch(): ProtocolError {
  return new ProtocolError('PROTO_ERR_RPC_MISMATCH', 'result kind');
}

/** Bytes of a checked ok result after its status byte. */
export function wsResultSize(r: RpcWsResult): number {
  switch (r.op) {
    case 'wsAnnounce': {
      let size = 12 + 2;
      for (const t of r.targets) size += HASH_SIZE + 1 + t.gateway.length;
      return size;
    }
    case 'wsScrape':
      return 1 + 12 * r.counts.length;
    case 'wsHolder':
      return 1 + (r.gateway?.length ?? 0);
    case 'wsLeave':
      return 0;
  }
}

function u32(n: number): number {
  return n <= 0 ? 0 : n >= U32_MAX ? U32_MAX : Math.floor(n);
}

/** Writes a checked ok result after its status byte; returns the offset after it. */
export function writeWsResult(buf: Buffer, o: number, r: RpcWsResult): number {
  switch (r.op) {
    case 'wsAnnounce':
      o = buf.writeUInt32BE(u32(r.seeders), o);
      o = buf.writeUInt32BE(u32(r.leechers), o);
      o = buf.writeUInt32BE(u32(r.downloaded), o);
      o = buf.writeUInt16BE(r.targets.length, o);
      for (const t of r.targets) {
        o += t.peerId.copy(buf, o);
        o = writeGateway(buf, o, t.gateway);
      }
      return o;
    case 'wsScrape':
      buf[o++] = r.counts.length;
      for (const c of r.counts) {
        o = buf.writeUInt32BE(u32(c.seeders), o);
        o = buf.writeUInt32BE(u32(c.leechers), o);
        o = buf.writeUInt32BE(u32(c.downloaded), o);
      }
      return o;
    case 'wsHolder':
      if (r.gateway === undefined) {
        buf[o++] = 0;
        return o;
      }
      return writeGateway(buf, o, r.gateway);
    case 'wsLeave':
      return o;
  }
}

/** Reads the ok result of `op` after its status byte. */
export function readWsResult(r: Reader, op: RpcWsOp): RpcWsResult {
  switch (op.op) {
    case 'wsAnnounce': {
      const seeders = r.u32();
      const leechers = r.u32();
      const downloaded = r.u32();
      const n = r.u16();
      r.need(n * (HASH_SIZE + 2));
      const targets: RpcWsTarget[] = [];
      for (let j = 0; j < n; j++)
        targets.push({ peerId: r.bytes(HASH_SIZE), gateway: r.gateway(false)! });
      return { ok: true, op: 'wsAnnounce', seeders, leechers, downloaded, targets };
    }
    case 'wsScrape': {
      const n = r.u8();
      if (n !== op.infoHashes.length) throw rpcMismatch();
      r.need(n * 12);
      const counts: RpcCounts[] = [];
      for (let j = 0; j < n; j++)
        counts.push({ seeders: r.u32(), leechers: r.u32(), downloaded: r.u32() });
      return { ok: true, op: 'wsScrape', counts };
    }
    case 'wsHolder': {
      const gateway = r.gateway(true);
      return gateway === undefined
        ? { ok: true, op: 'wsHolder' }
        : { ok: true, op: 'wsHolder', gateway };
    }
    case 'wsLeave':
      return { ok: true, op: 'wsLeave' };
  }
}
