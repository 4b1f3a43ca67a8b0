// The config error catalog (docs/conventions.md "Errors"). A service that cannot start
// gets one error listing every problem, so an operator fixes them in one pass.

export const configErrors = {
  CONFIG_ERR_INVALID: {
    message: 'invalid configuration',
  },
} as const satisfies Record<string, { message: string }>;

export type ConfigErrorCode = keyof typeof configErrors;

/** One problem with one setting; `key` is the environment variable name. */
export interface ConfigViolation {
  key: string;
  message: string;
}

export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  readonly violations: readonly ConfigViolation[];
  constructor(code: ConfigErrorCode, violations: readonly ConfigViolation[]) {
    const lines = violations.map((v) => `  ${v.key}: ${v.message}`);
    super(
      [
        `${configErrors[code].message} (${violations.length} problem${violations.length === 1 ? '' : 's'}):`,
        ...lines,
      ].join('\n'),
    );
    this.name = 'ConfigError';
    this.code = code;
    this.violations = Object.freeze([...violations]);
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError;
}
