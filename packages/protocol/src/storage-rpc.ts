// The gateway <-> storage-api batch body (docs/decisions.md "Services"
// and docs/storage-api.md): the announces and scrapes a gateway gathered in one tick, as one
// binary request, and their results in the same order. Big-endian throughout.
//
// request  = "SHB" u8 version, u16 count, count * op
//   op     = u8 type (1 announce, 2 scrape)
//   announce: 20 info_hash, 20 peer_id, u8 family (4|6), 4|16 address, u16 port,
//             u8 flags (bit0 seeder, bit1 withPeerIds, bit2 BEP 21 partial seed, bit3 key
//             hash follows), u8 event (0 none, 1 completed, 2 started, 3 stopped: BEP 15
//             numbering), u16 numWant, then when bit3: 8 key hash (version 3)
//   scrape:   u8 n (1..255), n * 20 info_hash
//   WebSocket peers (version 4; docs/webtorrent.md "The split topology"), a gateway
//   id being u8 len (1..64) + that many bytes of [A-Za-z0-9_.:-]:
//   3 wsAnnounce: 20 info_hash, 20 peer_id, u8 flags (bit0 seeder), u8 event (as above),
//             u16 numWant, u32 lifetime seconds (>= 1), gateway id
//   4 wsScrape: u8 n (1..255), n * 20 info_hash
//   5 wsHolder: 20 info_hash, 20 peer_id
//   6 wsLeave:  gateway id, u16 n (>= 1), n * (20 info_hash, 20 peer_id)
// response = "SHR" u8 version, u16 count, count * result (same order as the ops)
//   result = u8 status (0 ok, 1 error)
//   ok announce: u32 seeders, u32 leechers, u32 downloaded, u32 partial seeds
//                (0xffffffff: the store could not tell), u16 peer count,
//                count * (6|18) compact peers of the op's family, u8 hasIds,
//                count * 20 peer ids when hasIds
//   ok scrape:   u8 n (= the op's n), n * (u32 seeders, u32 leechers, u32 downloaded,
//                u32 partial seeds as above)
//   ok wsAnnounce: u32 seeders, u32 leechers, u32 downloaded, u16 n,
//                n * (20 peer_id, gateway id): the recipients of the offers
//   ok wsScrape: u8 n (= the op's n), n * (u32 seeders, u32 leechers, u32 downloaded)
//   ok wsHolder: u8 len (0: the peer is in no swarm), len bytes of the gateway id
//   ok wsLeave:  nothing
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
//
// Beside the body, two optional headers (storage-rpc-load.ts): the peers'
// promised lifetime and storage-api's load (docs/load.md).
//
// Shared constants and types: storage-rpc-format.ts; the WebSocket ops:
// storage-rpc-ws.ts; the request codec:
// storage-rpc-request.ts; the response codec: storage-rpc-response.ts.
export {
  STORAGE_RPC_VERSION,
  STORAGE_RPC_CONTENT_TYPE,
  STORAGE_RPC_PATH,
  STORAGE_RPC_VERSION_HEADER,
  STORAGE_RPC_MAX_OPS,
  STORAGE_RPC_MAX_SCRAPE_HASHES,
  peekBatchVersion,
  isWsOp,
  type BatchRequestLimits,
  type RpcAnnounce,
  type RpcCounts,
  type RpcOp,
  type RpcResult,
  type RpcScrape,
  type RpcPeerOp,
  type RpcWsAnnounce,
  type RpcWsHolder,
  type RpcWsLeave,
  type RpcWsOp,
  type RpcWsResult,
  type RpcWsScrape,
  type RpcWsTarget,
} from './storage-rpc-format.ts';
export { isGatewayId } from './storage-rpc-ws.ts';
export { checkBatchOp, decodeBatchRequest, encodeBatchRequest } from './storage-rpc-request.ts';
export {
  STORAGE_RPC_LIFETIME_HEADER,
  STORAGE_RPC_LOAD_HEADER,
  formatLoadReport,
  parseLifetimeHeader,
  parseLoadReport,
  type LoadReport,
} from './storage-rpc-load.ts';
export {
  decodeBatchResponse,
  encodeBatchResponse,
  type EncodeBatchResponseOptions,
} from './storage-rpc-response.ts';
