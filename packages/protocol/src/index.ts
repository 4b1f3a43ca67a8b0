// @shoal/protocol: the wire codecs every Shoal service shares. No I/O here.
export type { AnnounceEvent, AnnounceRequest, Family, ScrapeCounts } from './types.ts';
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
  parseScrapeQuery,
  encodeAnnounceResponse as encodeHttpAnnounceResponse,
  encodeScrapeResponse as encodeHttpScrapeResponse,
  encodeFailure,
  type HttpAnnounceResponse,
} from './http.ts';
// http.ts and udp.ts both name their answers encodeAnnounceResponse and
// encodeScrapeResponse: the root exports them with an Http/Udp prefix, as
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
  encodeConnectResponse,
  encodeConnectResponseInto,
  encodeAnnounceResponse as encodeUdpAnnounceResponse,
  encodeAnnounceResponseInto as encodeUdpAnnounceResponseInto,
  encodeScrapeResponse as encodeUdpScrapeResponse,
  encodeScrapeResponseInto as encodeUdpScrapeResponseInto,
  encodeErrorResponse,
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
export {
  STORAGE_RPC_VERSION,
  STORAGE_RPC_CONTENT_TYPE,
  STORAGE_RPC_PATH,
  STORAGE_RPC_VERSION_HEADER,
  STORAGE_RPC_MAX_OPS,
  STORAGE_RPC_MAX_SCRAPE_HASHES,
  checkBatchOp,
  encodeBatchRequest,
  decodeBatchRequest,
  encodeBatchResponse,
  decodeBatchResponse,
  peekBatchVersion,
  type EncodeBatchResponseOptions,
  type RpcAnnounce,
  type RpcScrape,
  type RpcOp,
  type RpcResult,
  type RpcCounts,
  type BatchRequestLimits,
} from './storage-rpc.ts';
