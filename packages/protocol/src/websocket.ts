// The WebTorrent WebSocket tracker protocol (docs/webtorrent.md "Protocol"):
// JSON text messages, as the `bittorrent-tracker` npm client
// (lib/client/websocket-tracker.js) sends and reads them, and as its server
// (lib/server/parse-websocket.js, server.js) and aquatic_ws answer. There is
// no BEP: the reference client is the specification. info_hash, peer_id and
// offer_id are "binary strings": one JSON character per byte (U+0000..U+00FF).
//
// The decoder never echoes what it cannot check: offers and answers are
// re-encoded from their `type` and `sdp` only, so a relayed message carries
// no field the sender chose beyond those.
import { ProtocolError } from './errors.ts';
import type { AnnounceEvent, ScrapeCounts } from './types.ts';

/** Bytes of info_hash, peer_id, to_peer_id and offer_id. */
export const WS_ID_BYTES = 20;

/** A WebRTC session description as RTCPeerConnection hands it to simple-peer. */
export interface WsSessionDescription {
  type: 'offer' | 'answer';
  sdp: string;
}

export interface WsOffer {
  /** 20 bytes, chosen by the offering client; its answer names it. */
  offerId: Buffer;
  offer: WsSessionDescription;
}

export interface WsAnnounce {
  action: 'announce';
  infoHash: Buffer;
  peerId: Buffer;
  /** Absent `event` (the client's periodic update) is 'none'. */
  event: AnnounceEvent;
  /** `event: "paused"` (BEP 21); event is then 'none'. */
  paused: boolean;
  /** Only a `left` of exactly 0 makes a seeder; absent, null or unreadable is a leecher (aquatic_ws). */
  seeder: boolean;
  /** `numwant` when it is a non-negative integer; the offers count otherwise. */
  numWant: number | undefined;
  /** At most `maxOffers`; later ones are ignored (docs/webtorrent.md "Limits"). */
  offers: WsOffer[];
  /** Set when this message carries a WebRTC answer to another peer's offer instead of an announce. */
  answer: WsAnswer | undefined;
}

export interface WsAnswer {
  toPeerId: Buffer;
  offerId: Buffer;
  answer: WsSessionDescription;
}

export interface WsScrape {
  action: 'scrape';
  /** At least one, at most `maxHashes`. */
  infoHashes: Buffer[];
}

export type WsRequest = WsAnnounce | WsScrape;

export interface WsDecodeOptions {
  maxOffers: number;
  maxHashes: number;
}

/** Decodes one text frame; throws a ProtocolError (PROTO_ERR_WS_* or an announce code) for anything else. */
export function decodeWsRequest(text: string, options: WsDecodeOptions): WsRequest {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    throw new ProtocolError('PROTO_ERR_WS_BAD_JSON');
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message))
    throw new ProtocolError('PROTO_ERR_WS_BAD_JSON', 'not an object');
  const m = message as Record<string, unknown>;
  if (m.action === 'announce') return decodeAnnounce(m, options);
  if (m.action === 'scrape') return decodeScrape(m, options);
  throw new ProtocolError('PROTO_ERR_WS_BAD_ACTION');
}

/**
 * What a refused frame named, when it is readable JSON: its action and
 * info_hash, so the failure answer reaches the client's handler for that
 * torrent (encodeWsFailure).
 */
export function wsFailureTarget(text: string): {
  action: 'announce' | 'scrape' | undefined;
  infoHash: Buffer | undefined;
} {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return { action: undefined, infoHash: undefined };
  }
  if (typeof m !== 'object' || m === null) return { action: undefined, infoHash: undefined };
  const { action, info_hash: hash } = m as { action?: unknown; info_hash?: unknown };
  let infoHash: Buffer | undefined;
  try {
    infoHash = binaryId(hash, 'PROTO_ERR_BAD_INFO_HASH');
  } catch {
    infoHash = undefined;
  }
  return { action: action === 'announce' || action === 'scrape' ? action : undefined, infoHash };
}

function decodeAnnounce(m: Record<string, unknown>, options: WsDecodeOptions): WsAnnounce {
  const infoHash = binaryId(m.info_hash, 'PROTO_ERR_BAD_INFO_HASH');
  const peerId = binaryId(m.peer_id, 'PROTO_ERR_BAD_PEER_ID');
  let answer: WsAnswer | undefined;
  if (m.answer !== undefined && m.answer !== null) {
    answer = {
      toPeerId: binaryId(m.to_peer_id, 'PROTO_ERR_WS_BAD_PEER', 'to_peer_id'),
      offerId: binaryId(m.offer_id, 'PROTO_ERR_WS_BAD_OFFER', 'offer_id'),
      answer: description(m.answer, 'answer'),
    };
  }
  const { event, paused } = announceEvent(m.event);
  const offers: WsOffer[] = [];
  if (answer === undefined && m.offers !== undefined && m.offers !== null) {
    if (!Array.isArray(m.offers)) throw new ProtocolError('PROTO_ERR_WS_BAD_OFFER', 'offers');
    const list = m.offers as unknown[];
    const n = Math.min(list.length, options.maxOffers);
    for (let i = 0; i < n; i++) {
      const o = list[i];
      if (typeof o !== 'object' || o === null) throw new ProtocolError('PROTO_ERR_WS_BAD_OFFER');
      const { offer_id: offerId, offer } = o as Record<string, unknown>;
      offers.push({
        offerId: binaryId(offerId, 'PROTO_ERR_WS_BAD_OFFER', 'offer_id'),
        offer: description(offer, 'offer'),
      });
    }
  }
  const numwant = m.numwant;
  return {
    action: 'announce',
    infoHash,
    peerId,
    event,
    paused,
    seeder: m.left === 0 || m.left === '0',
    numWant:
      typeof numwant === 'number' && Number.isInteger(numwant) && numwant >= 0
        ? Math.min(numwant, 0xffff)
        : undefined,
    offers,
    answer,
  };
}

function decodeScrape(m: Record<string, unknown>, options: WsDecodeOptions): WsScrape {
  const field = m.info_hash;
  const list: unknown[] = typeof field === 'string' ? [field] : Array.isArray(field) ? field : [];
  // bittorrent-tracker's server answers every swarm to a scrape without info_hash; Shoal serves no full scrape here.
  if (list.length === 0) throw new ProtocolError('PROTO_ERR_NO_HASHES');
  if (list.length > options.maxHashes)
    throw new ProtocolError('PROTO_ERR_TOO_MANY_HASHES', `at most ${options.maxHashes}`);
  return {
    action: 'scrape',
    infoHashes: list.map((h) => binaryId(h, 'PROTO_ERR_BAD_INFO_HASH')),
  };
}

/** The client omits `event` on its periodic announce; bittorrent-tracker's server also takes 'update' and 'empty'. */
function announceEvent(value: unknown): { event: AnnounceEvent; paused: boolean } {
  switch (value) {
    case undefined:
    case null:
    case 'update':
    case 'empty':
      return { event: 'none', paused: false };
    case 'started':
    case 'stopped':
    case 'completed':
      return { event: value, paused: false };
    case 'paused':
      return { event: 'none', paused: true };
    default:
      throw new ProtocolError('PROTO_ERR_BAD_EVENT');
  }
}

function description(value: unknown, type: 'offer' | 'answer'): WsSessionDescription {
  const code = type === 'offer' ? 'PROTO_ERR_WS_BAD_OFFER' : 'PROTO_ERR_WS_BAD_ANSWER';
  if (typeof value !== 'object' || value === null) throw new ProtocolError(code);
  const { type: t, sdp } = value as Record<string, unknown>;
  if (t !== type || typeof sdp !== 'string') throw new ProtocolError(code);
  return { type, sdp };
}

type IdCode =
  | 'PROTO_ERR_BAD_INFO_HASH'
  | 'PROTO_ERR_BAD_PEER_ID'
  | 'PROTO_ERR_WS_BAD_PEER'
  | 'PROTO_ERR_WS_BAD_OFFER';

/** A 20-character binary string as its 20 bytes. */
function binaryId(value: unknown, code: IdCode, detail?: string): Buffer {
  if (typeof value !== 'string' || value.length !== WS_ID_BYTES)
    throw new ProtocolError(code, detail);
  for (let i = 0; i < WS_ID_BYTES; i++)
    if (value.charCodeAt(i) > 0xff) throw new ProtocolError(code, detail);
  return Buffer.from(value, 'latin1');
}

/** Bytes as the binary string the client compares with its own (`hex2bin`). */
export function binaryString(bytes: Buffer): string {
  return bytes.toString('latin1');
}

export interface WsAnnounceAnswer {
  infoHash: Buffer;
  interval: number;
  complete: number;
  incomplete: number;
}

/** The answer to an announce: what bittorrent-tracker's server sends, `peers` left out. */
export function encodeWsAnnounceResponse(a: WsAnnounceAnswer): string {
  return JSON.stringify({
    action: 'announce',
    interval: a.interval,
    info_hash: binaryString(a.infoHash),
    complete: a.complete,
    incomplete: a.incomplete,
  });
}

// Offers and answers are most of what the tracker writes (an announce with 5
// offers is 10 of them), so they are put together as text around the one
// JSON.stringify each string needs, not stringified as objects: the same
// bytes as JSON.stringify({action, offer, offer_id, peer_id, info_hash}),
// which the protocol test checks for any input.

/** `,"peer_id":…,"info_hash":…}`: the end of every offer of one announce, and of an answer. */
export function wsRelayTail(infoHash: Buffer, peerId: Buffer): string {
  return `,"peer_id":${JSON.stringify(binaryString(peerId))},"info_hash":${JSON.stringify(binaryString(infoHash))}}`;
}

/**
 * An offer relayed to one peer of the swarm; `tail` is wsRelayTail() of the
 * swarm and the offering peer, the same for all of an announce's offers.
 */
export function encodeWsOfferWithTail(offer: WsOffer, tail: string): string {
  return `{"action":"announce","offer":{"type":"offer","sdp":${JSON.stringify(offer.offer.sdp)}},"offer_id":${JSON.stringify(binaryString(offer.offerId))}${tail}`;
}

/** An offer relayed to one peer of the swarm; `peerId` is the offering peer. */
export function encodeWsOffer(infoHash: Buffer, peerId: Buffer, offer: WsOffer): string {
  return encodeWsOfferWithTail(offer, wsRelayTail(infoHash, peerId));
}

/** An answer relayed to the peer that made the offer; `peerId` is the answering peer. */
export function encodeWsAnswer(infoHash: Buffer, peerId: Buffer, answer: WsAnswer): string {
  return `{"action":"announce","answer":{"type":"answer","sdp":${JSON.stringify(answer.answer.sdp)}},"offer_id":${JSON.stringify(binaryString(answer.offerId))}${wsRelayTail(infoHash, peerId)}`;
}

export interface WsScrapeFile extends ScrapeCounts {
  infoHash: Buffer;
}

/** `files` keyed by binary info_hash, as bittorrent-tracker's server answers. */
export function encodeWsScrapeResponse(
  files: readonly WsScrapeFile[],
  minRequestIntervalSeconds: number,
): string {
  const out: Record<string, { complete: number; incomplete: number; downloaded: number }> = {};
  for (const f of files)
    out[binaryString(f.infoHash)] = {
      complete: f.complete,
      incomplete: f.incomplete,
      downloaded: f.downloaded,
    };
  return JSON.stringify({
    action: 'scrape',
    files: out,
    flags: { min_request_interval: minRequestIntervalSeconds },
  });
}

/**
 * A refusal. With `action` and `infoHash` the client shows it as a warning
 * for that torrent; without them (a frame that named neither) the reference
 * client drops the socket and reconnects later, as it does for
 * bittorrent-tracker's own answer to junk.
 */
export function encodeWsFailure(
  reason: string,
  action?: 'announce' | 'scrape',
  infoHash?: Buffer,
): string {
  return JSON.stringify({
    ...(action === undefined ? {} : { action }),
    'failure reason': reason,
    ...(infoHash === undefined ? {} : { info_hash: binaryString(infoHash) }),
  });
}
