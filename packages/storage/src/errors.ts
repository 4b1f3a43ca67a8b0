// The storage error catalog (docs/conventions.md "Errors"): stable codes that callers
// match on, each with the answer a client gets. Drivers wrap backend errors
// once, with `cause`.

export const storeErrors = {
  STORE_ERR_UNAVAILABLE: {
    message: 'storage unavailable',
    failureReason: 'tracker storage unavailable, retry later',
    httpStatus: 503,
  },
  STORE_ERR_TIMEOUT: {
    message: 'storage operation timed out',
    failureReason: 'tracker storage timed out, retry later',
    httpStatus: 504,
  },
  STORE_ERR_BAD_INPUT: {
    message: 'invalid input to the store',
    failureReason: 'invalid request',
    httpStatus: 400,
  },
  STORE_ERR_CONFIG: {
    message: 'invalid storage configuration',
    failureReason: 'tracker misconfigured',
    httpStatus: 500,
  },
  STORE_ERR_INTERNAL: {
    message: 'internal storage error',
    failureReason: 'internal tracker error, retry later',
    httpStatus: 500,
  },
} as const satisfies Record<string, { message: string; failureReason: string; httpStatus: number }>;

export type StoreErrorCode = keyof typeof storeErrors;

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${storeErrors[code].message}: ${detail}` : storeErrors[code].message, options);
    this.name = 'StoreError';
    this.code = code;
  }
  /** The text a BitTorrent client is shown (bencoded failure reason / UDP error). */
  get failureReason(): string {
    return storeErrors[this.code].failureReason;
  }
}

export function isStoreError(err: unknown): err is StoreError {
  return err instanceof StoreError;
}
