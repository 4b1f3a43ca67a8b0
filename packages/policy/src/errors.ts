// The policy error catalog (docs/conventions.md "Errors"). Two audiences:
// - refusals a BitTorrent client sees (bencoded `failure reason` / UDP error
//   action text, always ending with " [CODE]"), raised by the gateway's chain;
// - admin input errors (storage-api answers HTTP 400 with `{ code, message }`).
// ERRORS.md in this package is the docs table; errors.test.ts keeps them in step.

export const policyErrors = {
  // --- refusals of announces / scrapes / connects (the gateway's chain) ---
  POLICY_ERR_TORRENT_NOT_ALLOWED: {
    message: 'info hash is not on the torrent allow list',
    failureReason: 'torrent not registered with this tracker',
    httpStatus: 403,
    ours: false,
  },
  POLICY_ERR_TORRENT_DENIED: {
    message: 'info hash is on the torrent deny list',
    failureReason: 'torrent is banned on this tracker',
    httpStatus: 403,
    ours: false,
  },
  POLICY_ERR_CLIENT_NOT_ALLOWED: {
    message: 'peer_id prefix is not on the client allow list',
    failureReason: 'client not approved on this tracker',
    httpStatus: 403,
    ours: false,
  },
  POLICY_ERR_CLIENT_DENIED: {
    message: 'peer_id prefix is on the client deny list',
    failureReason: 'client banned on this tracker',
    httpStatus: 403,
    ours: false,
  },
  POLICY_ERR_PASSKEY_MISSING: {
    message: 'private tracker: no passkey in the announce URL',
    failureReason: 'passkey required: announce at /announce/<passkey>',
    httpStatus: 403,
    ours: false,
  },
  POLICY_ERR_PASSKEY_UNKNOWN: {
    message: 'private tracker: passkey not known',
    failureReason: 'unknown passkey',
    httpStatus: 403,
    ours: false,
  },
  POLICY_ERR_PASSKEY_EXPIRED: {
    message: 'private tracker: passkey past its expiry',
    failureReason: 'passkey expired',
    httpStatus: 403,
    ours: false,
  },
  POLICY_ERR_JWT_MISSING: {
    message: 'no jwt parameter on the announce',
    failureReason: 'jwt parameter required',
    httpStatus: 403,
    ours: false,
  },
  POLICY_ERR_JWT_INVALID: {
    message: 'jwt failed verification (signature, issuer, audience, expiry or infohash claim)',
    failureReason: 'invalid jwt',
    httpStatus: 403,
    ours: false,
  },
  POLICY_ERR_JWT_KEYS_UNAVAILABLE: {
    message: 'the JWT key set (JWT_JWKS_URL) could not be fetched or read',
    failureReason: 'tracker cannot verify tokens now, retry later',
    httpStatus: 503,
    ours: true,
  },
  POLICY_ERR_RATE_LIMITED: {
    message: 'per-address request rate exceeded',
    failureReason: 'too many requests from your address, slow down',
    httpStatus: 429,
    ours: false,
  },
  POLICY_ERR_BANNED: {
    message: 'the source address is banned for a while (abuse control, or by an operator)',
    failureReason: 'your address is banned for a while',
    httpStatus: 403,
    ours: false,
  },
  POLICY_ERR_NOT_LOADED: {
    message: 'approval lists and passkeys not loaded yet',
    failureReason: 'tracker starting, retry later',
    httpStatus: 503,
    ours: true,
  },
  // --- admin input (storage-api admin API, CLI) ---
  POLICY_ERR_BAD_INFO_HASH: {
    message: 'info hash must be 40 hex characters',
    failureReason: 'invalid request',
    httpStatus: 400,
    ours: false,
  },
  POLICY_ERR_BAD_CLIENT_PREFIX: {
    message: 'client prefix must be 1-20 printable ASCII characters',
    failureReason: 'invalid request',
    httpStatus: 400,
    ours: false,
  },
  POLICY_ERR_BAD_PASSKEY: {
    message: 'passkey must be 8-128 of [A-Za-z0-9_-]',
    failureReason: 'invalid request',
    httpStatus: 400,
    ours: false,
  },
  POLICY_ERR_BAD_EXPIRY: {
    message: 'expiry must be a future time (ISO 8601 or ttlSeconds > 0) or null',
    failureReason: 'invalid request',
    httpStatus: 400,
    ours: false,
  },
  POLICY_ERR_BAD_ENTRY: {
    message: 'malformed entry (note or user over 256 characters, unknown field, wrong type)',
    failureReason: 'invalid request',
    httpStatus: 400,
    ours: false,
  },
  POLICY_ERR_BAD_ADDRESS: {
    message: 'address must be an IPv4 or IPv6 address (an IPv6 /64 is banned as a whole)',
    failureReason: 'invalid request',
    httpStatus: 400,
    ours: false,
  },
  POLICY_ERR_LINK_CONFLICT: {
    message: 'a hash may belong to one link only, and never link to itself',
    failureReason: 'invalid request',
    httpStatus: 409,
    ours: false,
  },
  POLICY_ERR_BAD_LIST: {
    message: 'list kind must be torrents or clients, list must be allow or deny',
    failureReason: 'invalid request',
    httpStatus: 400,
    ours: false,
  },
} as const satisfies Record<
  string,
  { message: string; failureReason: string; httpStatus: number; ours: boolean }
>;

export type PolicyErrorCode = keyof typeof policyErrors;

export class PolicyError extends Error {
  readonly code: PolicyErrorCode;
  /** For bulk imports: which entries were bad (index and reason); nothing was written. */
  readonly problems: ReadonlyArray<{ index: number; code: PolicyErrorCode; value: string }>;
  constructor(
    code: PolicyErrorCode,
    detail?: string,
    options?: {
      cause?: unknown;
      problems?: ReadonlyArray<{ index: number; code: PolicyErrorCode; value: string }>;
    },
  ) {
    super(detail ? `${policyErrors[code].message}: ${detail}` : policyErrors[code].message, {
      cause: options?.cause,
    });
    this.name = 'PolicyError';
    this.code = code;
    this.problems = options?.problems ?? [];
  }
  /** Client-facing text, without the code (the gateway appends " [CODE]"). */
  get failureReason(): string {
    return policyErrors[this.code].failureReason;
  }
  get httpStatus(): number {
    return policyErrors[this.code].httpStatus;
  }
  /** True when the fault is the tracker's (the client should retry later). */
  get ours(): boolean {
    return policyErrors[this.code].ours;
  }
}

export function isPolicyError(err: unknown): err is PolicyError {
  return err instanceof PolicyError;
}
