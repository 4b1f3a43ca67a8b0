// storage-api's error catalog (docs/conventions.md "Errors"): every non-2xx answer is
// JSON `{ code, message }` with one of these codes, a StoreErrorCode
// (@shoal/storage) or a PolicyErrorCode (@shoal/policy, the admin API), and
// the status listed here. Callers (the gateway's remote
// client, the gc-worker) match on `code`. README.md is the docs table;
// errors.test.ts keeps the two in step.
import { isPolicyError, type PolicyErrorCode } from '@shoal/policy';
import { isStoreError, storeErrors, type StoreErrorCode } from '@shoal/storage';

export const apiErrors = {
  RPC_ERR_UNAUTHORIZED: { message: 'missing or wrong bearer token', httpStatus: 401 },
  RPC_ERR_ADMIN_DISABLED: {
    message: 'admin API disabled: STORAGE_API_ADMIN_TOKEN is not set',
    httpStatus: 403,
  },
  RPC_ERR_BAD_BODY: { message: 'malformed request body or parameter', httpStatus: 400 },
  RPC_ERR_BAD_CONTENT_TYPE: { message: 'unsupported content-type', httpStatus: 415 },
  RPC_ERR_TOO_LARGE: { message: 'request body or batch larger than allowed', httpStatus: 413 },
  RPC_ERR_VERSION: {
    message: 'batch body of a version this storage-api does not speak',
    httpStatus: 400,
  },
  RPC_ERR_NOT_FOUND: { message: 'no such endpoint', httpStatus: 404 },
  RPC_ERR_SHUTTING_DOWN: { message: 'storage-api is shutting down', httpStatus: 503 },
  RPC_ERR_INTERNAL: { message: 'internal error', httpStatus: 500 },
  KV_ERR_NOT_FOUND: { message: 'no such key', httpStatus: 404 },
} as const satisfies Record<string, { message: string; httpStatus: number }>;

export type ApiErrorCode = keyof typeof apiErrors;

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
