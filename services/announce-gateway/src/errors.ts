// The gateway's own error catalog (docs/conventions.md "Errors"): refusals that are not
// wire-format problems (those are @shoal/protocol's) nor storage failures
// (@shoal/storage's). Every code reaches the client inside its failure text.

export const gatewayErrors = {
  GATEWAY_ERR_BAD_PORT: {
    message: 'port 0 is not a reachable peer port',
    failureReason: 'invalid port',
  },
  GATEWAY_ERR_INTERNAL: {
    message: 'unexpected error in the gateway',
    failureReason: 'internal tracker error, retry later',
  },
  GATEWAY_ERR_UNAUTHORIZED: {
    message:
      'the policy admin API on the admin port needs `Authorization: Bearer <ADMIN_API_TOKEN>`',
    failureReason: 'unauthorized',
  },
  GATEWAY_ERR_NO_SUCH_WORKER: {
    message: 'no worker has that index: workers are numbered from 0 to GATEWAY_WORKERS - 1',
    failureReason: 'no such worker',
  },
} as const satisfies Record<string, { message: string; failureReason: string }>;

export type GatewayErrorCode = keyof typeof gatewayErrors;

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  constructor(code: GatewayErrorCode, options?: { cause?: unknown }) {
    super(gatewayErrors[code].message, options);
    this.name = 'GatewayError';
    this.code = code;
  }
  get failureReason(): string {
    return gatewayErrors[this.code].failureReason;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}
