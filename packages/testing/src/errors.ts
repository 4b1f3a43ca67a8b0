// The harness error catalog (docs/conventions.md "Errors"): tests and helpers match on
// `err.code`, never on message text.

export const harnessErrors = {
  HARNESS_ERR_TIMEOUT: { message: 'timed out' },
  HARNESS_ERR_EXITED: { message: 'process exited before it was ready' },
  HARNESS_ERR_FAILED: { message: 'process failed' },
  HARNESS_ERR_BAD_REPLY: { message: 'malformed reply from the tracker' },
  PROMETHEUS_ERR_START: { message: 'prometheus did not become ready' },
  PROMETHEUS_ERR_QUERY: { message: 'prometheus answered an error' },
  PROMETHEUS_ERR_TARGETS: { message: 'prometheus targets not all up' },
} as const satisfies Record<string, { message: string }>;

export type HarnessErrorCode = keyof typeof harnessErrors;

export class HarnessError extends Error {
  readonly code: HarnessErrorCode;
  constructor(code: HarnessErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(
      detail ? `${harnessErrors[code].message}: ${detail}` : harnessErrors[code].message,
      options,
    );
    this.name = 'HarnessError';
    this.code = code;
  }
}

export function isHarnessError(err: unknown): err is HarnessError {
  return err instanceof HarnessError;
}
