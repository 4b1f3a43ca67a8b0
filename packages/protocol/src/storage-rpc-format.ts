// The storage batch body's version, limits, types and the header both
// directions share; the layout is described in storage-rpc.ts, the request
// codec is storage-rpc-request.ts, the response codec storage-rpc-response.ts.
import { ProtocolError } from './errors.ts';
import type { AnnounceEvent, PeerAnnounce } from './types.ts';

export const STORAGE_RPC_VERSION = 4;
export const STORAGE_RPC_CONTENT_TYPE = 'application/vnd.shoal.batch';
export const STORAGE_RPC_PATH = '/v1/batch';
/** HTTP header carrying the version, so a server can refuse before reading the body. */
export const STORAGE_RPC_VERSION_HEADER = 'x-shoal-rpc-version';
/** The u16 count field's ceiling. */
export const STORAGE_RPC_MAX_OPS = 0xffff;
/** The u8 n field's ceiling. */
export const STORAGE_RPC_MAX_SCRAPE_HASHES = 0xff;

export const HEADER_SIZE = 6;

/** An op's event byte (BEP 15 numbering), for the announce ops of both kinds. */
export const EVENTS: readonly AnnounceEvent[] = ['none', 'completed', 'started', 'stopped'];
export const EVENT_NUMBER: Readonly<Record<AnnounceEvent, number>> = {
  none: 0,
  completed: 1,
  started: 2,
  stopped: 3,
};
export const HASH_SIZE = 20;

/** One announce, with the fields a store takes (PeerAnnounce). */
export interface RpcAnnounce extends PeerAnnounce {
  op: 'announce';
}

export interface RpcScrape {
  op: 'scrape';
  /** 1..255 hashes of 20 bytes. */
  infoHashes: Buffer[];
}

/** The ops of the peer store (the PeerStore's announce and scrape). */
export type RpcPeerOp = RpcAnnounce | RpcScrape;

/**
 * A WebSocket peer's announce from a socket held by `gateway` (version 4;
 * docs/webtorrent.md "The split topology"): joins, updates or (stopped)
 * removes the peer and picks up to numWant recipients for its offers.
 */
export interface RpcWsAnnounce {
  op: 'wsAnnounce';
  infoHash: Buffer;
  peerId: Buffer;
  seeder: boolean;
  event: AnnounceEvent;
  numWant: number;
  /** The peer's lifetime, 1..u32 seconds (the gateway's WS_PEER_LIFETIME_SECONDS). */
  lifetimeSeconds: number;
  gateway: string;
}

/** WebSocket peers' counts of 1..255 swarms. */
export interface RpcWsScrape {
  op: 'wsScrape';
  infoHashes: Buffer[];
}

/** The gateway holding a WebSocket peer's socket (an answer's recipient). */
export interface RpcWsHolder {
  op: 'wsHolder';
  infoHash: Buffer;
  peerId: Buffer;
}

/** Takes out 1..65535 peers, where `gateway` still holds them. */
export interface RpcWsLeave {
  op: 'wsLeave';
  gateway: string;
  peers: Array<{ infoHash: Buffer; peerId: Buffer }>;
}

export type RpcWsOp = RpcWsAnnounce | RpcWsScrape | RpcWsHolder | RpcWsLeave;

export type RpcOp = RpcPeerOp | RpcWsOp;

export function isWsOp(op: RpcOp): op is RpcWsOp {
  return op.op !== 'announce' && op.op !== 'scrape';
}

/** One recipient of a WebSocket announce's offers. */
export interface RpcWsTarget {
  peerId: Buffer;
  gateway: string;
}

export type RpcWsResult =
  | {
      ok: true;
      op: 'wsAnnounce';
      seeders: number;
      leechers: number;
      downloaded: number;
      targets: RpcWsTarget[];
    }
  | { ok: true; op: 'wsScrape'; counts: RpcCounts[] }
  /** gateway undefined: the peer is in no swarm. */
  | { ok: true; op: 'wsHolder'; gateway?: string }
  | { ok: true; op: 'wsLeave' };

export interface RpcCounts {
  seeders: number;
  leechers: number;
  downloaded: number;
  /** BEP 21 partial seeds among the leechers; undefined when the store could not tell. */
  partialSeeds?: number;
}

export type RpcResult =
  | {
      ok: true;
      op: 'announce';
      seeders: number;
      leechers: number;
      downloaded: number;
      partialSeeds?: number;
      /** Compact peers of the op's family (6 or 18 bytes each). */
      peers: Buffer;
      /** Parallel to the peers when the op asked withPeerIds. */
      peerIds: Buffer[] | undefined;
    }
  | { ok: true; op: 'scrape'; counts: RpcCounts[] }
  | RpcWsResult
  | { ok: false; code: string };

export interface BatchRequestLimits {
  /** Most ops one request may carry (<= 65535). */
  maxOps: number;
  /** Most hashes one scrape op may carry (<= 255). */
  maxScrapeHashes: number;
}

export function rpcField(detail: string): ProtocolError {
  return new ProtocolError('PROTO_ERR_RPC_BAD_FIELD', detail);
}

export function truncated(): ProtocolError {
  return new ProtocolError('PROTO_ERR_RPC_TRUNCATED');
}

export function trailingData(): ProtocolError {
  return new ProtocolError('PROTO_ERR_RPC_TRAILING_DATA');
}

/** More ops or results than `max`. */
export function tooManyOps(max: number): ProtocolError {
  return new ProtocolError('PROTO_ERR_RPC_TOO_MANY_OPS', `at most ${max}`);
}

export function writeHeader(buf: Buffer, magic: number, count: number): void {
  buf.writeUIntBE(magic, 0, 3);
  buf[3] = STORAGE_RPC_VERSION;
  buf.writeUInt16BE(count, 4);
}

/** Checks magic and version; returns the op/result count. */
export function readHeader(buf: Buffer, magic: number): number {
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
