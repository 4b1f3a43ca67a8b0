// The storage-api client's error catalog (docs/conventions.md "Errors"): what a call
// that got no usable answer fails with. Each caller maps these onto its own
// catalog at its edge (the gateway onto STORE_ERR_*, the gc-worker onto
// GC_ERR_*, shoalctl onto CLI_ERR_*). docs/storage-api.md "The client" is the
// docs table; errors.test.ts keeps the two in step.

export const clientErrors = {
  API_CLIENT_ERR_UNREACHABLE: { message: 'storage-api unreachable' },
  API_CLIENT_ERR_TIMEOUT: { message: 'storage-api did not answer in time' },
  API_CLIENT_ERR_REFUSED: { message: 'storage-api answered with an error status' },
  API_CLIENT_ERR_BAD_ANSWER: {
    message: 'storage-api answered something the contract does not allow',
  },
} as const satisfies Record<string, { message: string }>;

export type ClientErrorCode = keyof typeof clientErrors;
