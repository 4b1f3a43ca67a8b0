// gc-worker error catalog (docs/conventions.md "Errors"): codes logged and counted when
// a GC run or a lease call to storage-api / the Kubernetes API fails.

export const gcErrors = {
  GC_ERR_UNREACHABLE: { message: 'storage-api unreachable' },
  GC_ERR_TIMEOUT: { message: 'storage-api did not answer in time' },
  GC_ERR_HTTP: { message: 'storage-api answered with an error status' },
  GC_ERR_BAD_RESPONSE: { message: 'storage-api answered with an unexpected body' },
  GC_ERR_LEASE_API: { message: 'the Kubernetes Lease API answered with an error' },
} as const satisfies Record<string, { message: string }>;

export type GcErrorCode = keyof typeof gcErrors;

export class GcError extends Error {
  readonly code: GcErrorCode;
  /** HTTP status when the error is an answer, and the server's own error code if it sent one. */
  readonly status: number | undefined;
  readonly remoteCode: string | undefined;
  constructor(
    code: GcErrorCode,
    detail?: string,
    options?: { cause?: unknown; status?: number; remoteCode?: string },
  ) {
    super(
      detail === undefined ? gcErrors[code].message : `${gcErrors[code].message}: ${detail}`,
      options,
    );
    this.name = 'GcError';
    this.code = code;
    this.status = options?.status;
    this.remoteCode = options?.remoteCode;
  }
}

export function isGcError(err: unknown): err is GcError {
  return err instanceof GcError;
}
