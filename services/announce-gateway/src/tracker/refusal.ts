// Refusals described once (docs/architecture.md "Refusals"): whatever a step,
// a decoder or the store threw becomes one coded answer, the same for HTTP
// (`failure reason`) and UDP (error action), and is counted and logged the
// same way by both frontends.
import type { Logger } from 'pino';
import { isProtocolError } from '@shoal/protocol';
import { isPolicyError } from '@shoal/policy';
import { isStoreError } from '@shoal/storage';
import { isGatewayError } from '../errors.ts';
import type { Action, GatewayMetrics, Protocol } from '../metrics.ts';

/** The code and client-facing text of anything a request threw. */
export interface Refusal {
  code: string;
  reason: string;
  /** True when the fault is ours (storage, bug): counted as failed and logged. */
  ours: boolean;
  /**
   * True when the same announce may succeed soon (our faults, and a rate
   * limit): the answer says "come back in RETRY_LATER_INTERVAL_SECONDS";
   * otherwise in REFUSAL_INTERVAL_SECONDS (docs/decisions.md "Failure answers").
   */
  later: boolean;
  /** Not logged per request: the policy cache logs its outage once (POLICY_ERR_NOT_LOADED). */
  quiet?: boolean;
}

export function describeRefusal(err: unknown): Refusal {
  if (isProtocolError(err)) return refusal(err.code, err.failureReason, false);
  if (isGatewayError(err))
    return refusal(err.code, err.failureReason, err.code === 'GATEWAY_ERR_INTERNAL');
  if (isPolicyError(err))
    return {
      ...refusal(err.code, err.failureReason, err.ours),
      // A rate limit lifts by itself: "slow down", not "never".
      later: err.ours || err.code === 'POLICY_ERR_RATE_LIMITED',
      quiet: true,
    };
  if (isStoreError(err))
    return refusal(err.code, err.failureReason, err.code !== 'STORE_ERR_BAD_INPUT');
  return INTERNAL_REFUSAL;
}

function refusal(code: string, failureReason: string, ours: boolean): Refusal {
  return { code, reason: `${failureReason} [${code}]`, ours, later: ours };
}

export const INTERNAL_REFUSAL: Refusal = {
  code: 'GATEWAY_ERR_INTERNAL',
  reason: 'internal tracker error, retry later [GATEWAY_ERR_INTERNAL]',
  ours: true,
  later: true,
};

/** Counts and logs refusals for one frontend; built once per frontend. */
export interface RefusalCounter {
  /**
   * Counts `refusal` (outcome `failed` when ours, `rejected` when the
   * client's) and logs it when it is ours and not quiet: one line per
   * failure, with its code and what identifies the request (`context`).
   */
  count(action: Action, refusal: Refusal, err: unknown, context: Record<string, unknown>): void;
}

export function refusalCounter(
  protocol: Protocol,
  metrics: GatewayMetrics,
  logger: Logger,
): RefusalCounter {
  const message = `${protocol} request failed`;
  return {
    count(action, refusal, err, context) {
      metrics.request(protocol, action, refusal.ours ? 'failed' : 'rejected').inc();
      metrics.error(protocol, refusal.code);
      if (refusal.ours && refusal.quiet !== true)
        logger.error({ err, action, code: refusal.code, ...context }, message);
    },
  };
}
