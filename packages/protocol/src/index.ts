// @shoal/protocol: the wire codecs every Shoal service shares. No I/O here.
export type {
  AnnounceEvent,
  AnnounceRequest,
  Family,
  PeerAnnounce,
  ScrapeCounts,
} from './types.ts';
export { PEER_KEY_HASH_SIZE } from './types.ts';
export { sipHash24, sipKey, type SipKey } from './siphash.ts';
export {
  protocolErrors,
  ProtocolError,
  isProtocolError,
  type ProtocolErrorCode,
  type ProtocolErrorOptions,
} from './errors.ts';
export {
  bencode,
  bdecode,
  BENCODE_DEFAULT_MAX_DEPTH,
  type BencodeValue,
  type BencodeDict,
  type BencodeInput,
  type BdecodeOptions,
} from './bencode.ts';
export {
  LEFT_UNKNOWN,
  percentDecode,
  parseAnnounceQuery,
  parseAddressParam,
  type AddressParam,
  parseScrapeQuery,
  encodeAnnounceResponse as encodeHttpAnnounceResponse,
  encodeScrapeResponse as encodeHttpScrapeResponse,
  encodeFailure,
  type FailureTiming,
  type HttpAnnounceResponse,
  type ScrapeFlags,
} from './http.ts';
// http.ts and udp.ts both name their answers encodeAnnounceResponse... and
// encodeScrapeResponse...: the root exports them with an Http/Udp prefix, as
// namespaces, and unprefixed from the subpaths @shoal/protocol/http and /udp.
export * as http from './http.ts';
export * as udp from './udp.ts';
export {
  UDP_PROTOCOL_ID,
  UDP_ACTION_CONNECT,
  UDP_ACTION_ANNOUNCE,
  UDP_ACTION_SCRAPE,
  UDP_ACTION_ERROR,
  UDP_CONNECT_REQUEST_SIZE,
  UDP_ANNOUNCE_REQUEST_SIZE,
  UDP_CONNECT_RESPONSE_SIZE,
  UDP_ANNOUNCE_RESPONSE_HEADER_SIZE,
  UDP_SCRAPE_RESPONSE_ENTRY_SIZE,
  decodeUdpRequest,
  encodeConnectResponseInto,
  encodeAnnounceResponseInto as encodeUdpAnnounceResponseInto,
  encodeScrapeResponseInto as encodeUdpScrapeResponseInto,
  encodeErrorResponseInto,
  encodeConnectRequest,
  encodeAnnounceRequest,
  encodeScrapeRequest,
  encodeUdpRequest,
  type UdpRequest,
  type UdpDecodeOptions,
} from './udp.ts';
export {
  ConnectionIdCodec,
  CONNECTION_ID_SIZE,
  type ConnectionIdOptions,
} from './connection-id.ts';
export {
  COMPACT_PEER_V4_SIZE,
  COMPACT_PEER_V6_SIZE,
  compactPeerSize,
  addressToBytes,
  bytesToAddress,
  encodeCompactPeer,
  decodeCompactPeers,
} from './peers.ts';
// storage-rpc.ts is the batch body's entry: it exports nothing else.
export * from './storage-rpc.ts';
