// storage-api's errors (docs/conventions.md "Errors"): every non-2xx answer
// is the JSON ErrorBody `{ code, message }` (docs/storage-api.md "Contract and
// client") with a code of the catalog `apiErrors` (@shoal/storage-api-contract), a
// StoreErrorCode (@shoal/storage) or a PolicyErrorCode (@shoal/policy, the
// admin API). Callers (the one storage-api client) match on `code`.
// README.md is the docs table; errors.test.ts keeps the two in step.
import { isPolicyError, type PolicyErrorCode } from '@shoal/policy';
import { isStoreError, storeErrors, type StoreErrorCode } from '@shoal/storage';
import { apiErrors, type ApiErrorCode } from '@shoal/storage-api-contract';

export { apiErrors, type ApiErrorCode };

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly httpStatus: number;
  /** `detail` is a static string or a limit, never request data echoed back. */
  constructor(code: ApiErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(
      detail === undefined ? apiErrors[code].message : `${apiErrors[code].message}: ${detail}`,
      options,
    );
    this.name = 'ApiError';
    this.code = code;
    this.httpStatus = apiErrors[code].httpStatus;
  }
}

export function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError;
}

/** The `{ code, message }` body and status of any error an endpoint let through. */
export function errorAnswer(err: unknown): {
  status: number;
  body: { code: ApiErrorCode | StoreErrorCode | PolicyErrorCode; message: string };
} {
  if (isPolicyError(err))
    return { status: err.httpStatus, body: { code: err.code, message: err.message } };
  if (isApiError(err))
    return { status: err.httpStatus, body: { code: err.code, message: err.message } };
  if (isStoreError(err)) {
    return {
      status: storeErrors[err.code].httpStatus,
      body: { code: err.code, message: err.message },
    };
  }
  return {
    status: 500,
    body: { code: 'RPC_ERR_INTERNAL', message: apiErrors.RPC_ERR_INTERNAL.message },
  };
}
