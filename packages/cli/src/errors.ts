// The CLI's own error catalog (docs/conventions.md "Errors"). Errors the API answers
// keep the server's code (POLICY_ERR_*, RPC_ERR_*); these are the ones that
// happen before or instead of an answer. Every error is printed as
// `error: <message> [<CODE>]`; usage errors exit 2, everything else 1.

export const cliErrors = {
  CLI_ERR_USAGE: { message: 'invalid command line', exitCode: 2 },
  CLI_ERR_FILE: { message: 'cannot use the import file', exitCode: 1 },
  CLI_ERR_CONNECT: { message: 'cannot reach storage-api', exitCode: 1 },
  CLI_ERR_TIMEOUT: { message: 'storage-api did not answer in time', exitCode: 1 },
  CLI_ERR_BAD_ANSWER: { message: 'storage-api answered something unexpected', exitCode: 1 },
  CLI_ERR_INTERNAL: { message: 'shoalctl failed unexpectedly', exitCode: 1 },
} as const satisfies Record<string, { message: string; exitCode: number }>;

export type CliErrorCode = keyof typeof cliErrors;

export class CliError extends Error {
  readonly code: CliErrorCode;
  constructor(code: CliErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ?? cliErrors[code].message, options);
    this.name = 'CliError';
    this.code = code;
  }
  get exitCode(): number {
    return cliErrors[this.code].exitCode;
  }
}

export interface ApiProblem {
  index: number;
  code: string;
  value: string;
}

/** An error answer of the admin API: `{ code, message, problems? }` with an HTTP status. */
export class ApiAnswerError extends Error {
  readonly code: string;
  readonly status: number;
  readonly problems: readonly ApiProblem[];
  constructor(status: number, code: string, message: string, problems: readonly ApiProblem[] = []) {
    super(message);
    this.name = 'ApiAnswerError';
    this.status = status;
    this.code = code;
    this.problems = problems;
  }
}
