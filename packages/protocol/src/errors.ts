// The protocol error catalog (docs/conventions.md "Errors"): one stable code per distinct
// wire violation. Callers match on `err.code`. Every code answers the client
// the same way: HTTP 200 with a bencoded `failure reason` (clients ignore the
// bodies of non-200 answers, docs/decisions.md "Tracker semantics"), or a UDP error action (BEP 15,
// action 3) when the packet carried a transaction id. ERRORS.md is the docs
// table; errors.test.ts keeps the two in step.
//
// `failureReason` is what a BitTorrent client shows its user. It never
// echoes request bytes: a detail appended to it is always a static string
// (a parameter name, a limit) chosen by the code that throws.

export const protocolErrors = {
  PROTO_ERR_SHORT_PACKET: {
    message: 'UDP packet shorter than its action requires',
    failureReason: 'packet too short',
  },
  PROTO_ERR_BAD_PROTOCOL_ID: {
    message: 'UDP connect request without the BEP 15 protocol id',
    failureReason: 'bad protocol id',
  },
  PROTO_ERR_BAD_ACTION: {
    message: 'UDP action is not connect, announce or scrape',
    failureReason: 'unknown action',
  },
  PROTO_ERR_BAD_PACKET_LENGTH: {
    message: 'UDP scrape length is not 16 + 20 * n bytes',
    failureReason: 'bad packet length',
  },
  PROTO_ERR_BAD_CONNECTION_ID: {
    message: 'UDP connection id is forged, expired or issued to another address',
    failureReason: 'bad connection id',
  },
  PROTO_ERR_MISSING_PARAM: {
    message: 'required announce parameter absent',
    failureReason: 'missing parameter',
  },
  PROTO_ERR_DUPLICATE_PARAM: {
    message: 'announce parameter that must appear once appears twice',
    failureReason: 'duplicate parameter',
  },
  PROTO_ERR_BAD_INFO_HASH: {
    message: 'info_hash is not 20 bytes',
    failureReason: 'invalid info_hash',
  },
  PROTO_ERR_BAD_PEER_ID: {
    message: 'peer_id is not 20 bytes',
    failureReason: 'invalid peer_id',
  },
  PROTO_ERR_BAD_PORT: {
    message: 'port is not an integer in 0..65535',
    failureReason: 'invalid port',
  },
  PROTO_ERR_BAD_NUMBER: {
    message: 'numeric parameter is not a non-negative 64-bit integer',
    failureReason: 'invalid number',
  },
  PROTO_ERR_BAD_EVENT: {
    message: 'event is not one of started, completed, stopped, empty, paused',
    failureReason: 'invalid event',
  },
  PROTO_ERR_NO_HASHES: {
    message: 'scrape without info_hash (full scrapes are not served)',
    failureReason: 'scrape needs at least one info_hash',
  },
  PROTO_ERR_TOO_MANY_HASHES: {
    message: 'scrape asks for more info_hashes than allowed',
    failureReason: 'too many info_hashes',
  },
  PROTO_ERR_BAD_ENCODING: {
    message: 'malformed percent-encoding in the query string',
    failureReason: 'malformed query string',
  },
  PROTO_ERR_BAD_ADDRESS: {
    message: 'address is not 4 (IPv4) or 16 (IPv6) bytes',
    failureReason: 'invalid address',
  },
  PROTO_ERR_BAD_ADDRESS_PARAM: {
    message: 'ipv4 or ipv6 parameter is not an address, or address and port, of its family (BEP 7)',
    failureReason: 'invalid address parameter',
  },
  PROTO_ERR_BAD_PEERS_LENGTH: {
    message: 'compact peer list length is not a multiple of the entry size',
    failureReason: 'invalid peer list',
  },
  PROTO_ERR_BAD_CONFIG: {
    message: 'invalid codec configuration',
    failureReason: 'tracker misconfigured',
  },
  PROTO_ERR_BENCODE_UNEXPECTED_END: {
    message: 'bencode input ends inside a value',
    failureReason: 'truncated bencode',
  },
  PROTO_ERR_BENCODE_TRAILING_DATA: {
    message: 'bytes after the bencoded value',
    failureReason: 'trailing data after bencode',
  },
  PROTO_ERR_BENCODE_BAD_TOKEN: {
    message: 'byte that cannot start a bencoded value',
    failureReason: 'invalid bencode',
  },
  PROTO_ERR_BENCODE_BAD_LENGTH: {
    message: 'bencoded string length is not digits without leading zeros, or exceeds the input',
    failureReason: 'invalid bencode string length',
  },
  PROTO_ERR_BENCODE_BAD_INTEGER: {
    message: 'bencoded integer is empty, has leading zeros, is -0 or has non-digits',
    failureReason: 'invalid bencode integer',
  },
  PROTO_ERR_BENCODE_BAD_KEY: {
    message: 'bencoded dictionary key is not a byte string',
    failureReason: 'invalid bencode dictionary key',
  },
  PROTO_ERR_BENCODE_UNSORTED_KEYS: {
    message: 'bencoded dictionary keys are not in ascending byte order',
    failureReason: 'unsorted bencode dictionary',
  },
  PROTO_ERR_BENCODE_DUPLICATE_KEY: {
    message: 'bencoded dictionary repeats a key',
    failureReason: 'duplicate bencode dictionary key',
  },
  PROTO_ERR_BENCODE_TOO_DEEP: {
    message: 'bencoded value nests deeper than allowed',
    failureReason: 'bencode nested too deeply',
  },
  PROTO_ERR_BENCODE_UNSUPPORTED_TYPE: {
    message: 'value has no bencode representation',
    failureReason: 'tracker encoding error',
  },
  PROTO_ERR_WS_BAD_JSON: {
    message: 'WebSocket tracker message is not a JSON object',
    failureReason: 'invalid message',
  },
  PROTO_ERR_WS_BAD_ACTION: {
    message: 'WebSocket tracker message action is not announce or scrape',
    failureReason: 'invalid action',
  },
  PROTO_ERR_WS_BAD_OFFER: {
    message: 'WebSocket offer is not {offer: {type: "offer", sdp}, offer_id: 20 bytes}',
    failureReason: 'invalid offer',
  },
  PROTO_ERR_WS_BAD_ANSWER: {
    message: 'WebSocket answer is not {type: "answer", sdp} with to_peer_id and offer_id',
    failureReason: 'invalid answer',
  },
  PROTO_ERR_WS_BAD_PEER: {
    message: 'WebSocket to_peer_id is not 20 bytes',
    failureReason: 'invalid to_peer_id',
  },
  PROTO_ERR_RPC_BAD_MAGIC: {
    message: 'storage batch body does not start with SHB (request) or SHR (response)',
    failureReason: 'invalid storage batch',
  },
  PROTO_ERR_RPC_VERSION: {
    message: 'storage batch body of a version this side does not speak',
    failureReason: 'storage protocol version mismatch',
  },
  PROTO_ERR_RPC_TRUNCATED: {
    message: 'storage batch body ends inside a field its lengths announce',
    failureReason: 'truncated storage batch',
  },
  PROTO_ERR_RPC_TRAILING_DATA: {
    message: 'bytes after the last op or result of a storage batch',
    failureReason: 'trailing data after storage batch',
  },
  PROTO_ERR_RPC_BAD_OP: {
    message: 'storage batch op type is not 1 (announce) or 2 (scrape)',
    failureReason: 'invalid storage batch op',
  },
  PROTO_ERR_RPC_BAD_FIELD: {
    message: 'storage batch field out of range (family, event, flags, sizes, error code)',
    failureReason: 'invalid storage batch field',
  },
  PROTO_ERR_RPC_TOO_MANY_OPS: {
    message: 'storage batch carries more ops than allowed',
    failureReason: 'storage batch too large',
  },
  PROTO_ERR_RPC_TOO_MANY_HASHES: {
    message: 'storage batch scrape carries more info_hashes than allowed',
    failureReason: 'too many info_hashes',
  },
  PROTO_ERR_RPC_MISMATCH: {
    message: 'storage batch response does not match the ops that were sent',
    failureReason: 'storage batch mismatch',
  },
} as const satisfies Record<string, { message: string; failureReason: string }>;

export type ProtocolErrorCode = keyof typeof protocolErrors;

export interface ProtocolErrorOptions {
  /** The UDP request's transaction id, when the packet was long enough to carry one (>= 16 bytes). */
  transactionId?: number | undefined;
  cause?: unknown;
}

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  /** Set when the gateway can answer with a UDP error action; absent means drop the packet. */
  readonly transactionId?: number;
  /** The text a BitTorrent client is shown (bencoded failure reason / UDP error message). */
  readonly failureReason: string;

  /** `detail` must be a static string (parameter name, limit), never request data. */
  constructor(code: ProtocolErrorCode, detail?: string, options?: ProtocolErrorOptions) {
    const entry = protocolErrors[code];
    super(
      detail === undefined ? entry.message : `${entry.message}: ${detail}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'ProtocolError';
    this.code = code;
    this.failureReason =
      detail === undefined ? entry.failureReason : `${entry.failureReason}: ${detail}`;
    if (options?.transactionId !== undefined) this.transactionId = options.transactionId;
  }
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError;
}
