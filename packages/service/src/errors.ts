// @shoal/service's error catalog (docs/conventions.md "Errors"): the codes every
// service's /readyz answers with while it is not serving for a reason of its
// own life cycle (docs/observability.md "Health and readiness" is the docs
// table; errors.test.ts keeps the two in step).

export const serviceErrors = {
  SERVICE_ERR_NOT_LISTENING: { message: 'not listening yet' },
  SERVICE_ERR_SHUTTING_DOWN: { message: 'shutting down' },
} as const satisfies Record<string, { message: string }>;

export type ServiceErrorCode = keyof typeof serviceErrors;
