// The gateway's compiled copy of the approval lists and passkeys
// (docs/policy.md "Where the data lives and how gateways converge"): loaded
// before the gateway reports ready, refreshed every POLICY_REFRESH_SECONDS,
// and kept as it is when a refresh fails, so an outage of the store never
// turns into refusals.
import type { Logger } from 'pino';
import { compilePolicy, type CompiledPolicy } from '@shoal/policy';
import type { GatewayMetrics, PolicyRefreshOutcome } from '../metrics.ts';
import type { PolicySource } from './source.ts';

export interface PolicyCacheOptions {
  source: PolicySource;
  refreshSeconds: number;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Milliseconds since the epoch (revision age). */
  clock: () => number;
}

export interface PolicyCache {
  /** undefined until the first successful load. */
  readonly current: CompiledPolicy | undefined;
  /** Loads now and every refreshSeconds after; idempotent. */
  start(): void;
  /** One load; a call while one is in flight waits for that one (no overlap). */
  refresh(): Promise<PolicyRefreshOutcome>;
  /** Stops the timer, waits for a load in flight, closes the source. */
  close(): Promise<void>;
}

export function createPolicyCache(options: PolicyCacheOptions): PolicyCache {
  const { source, metrics, logger, clock } = options;
  const abort = new AbortController();
  let current: CompiledPolicy | undefined;
  let inFlight: Promise<PolicyRefreshOutcome> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failing = false;
  let closed = false;
  // Age counts from here until the first load, so a replica that never loads shows a growing age.
  metrics.policyConfirmed(clock());

  async function load(): Promise<PolicyRefreshOutcome> {
    try {
      const snapshot = await source.load(current?.revision, abort.signal);
      let outcome: PolicyRefreshOutcome = 'unchanged';
      if (
        snapshot !== undefined &&
        (current === undefined || snapshot.revision !== current.revision)
      ) {
        current = compilePolicy(snapshot);
        outcome = 'changed';
        logger.info({ revision: current.revision, sizes: current.sizes }, 'policy loaded');
      }
      metrics.policyConfirmed(clock(), current?.sizes);
      metrics.policyRefreshed(outcome);
      if (failing) {
        failing = false;
        logger.info('policy refresh working again');
      }
      return outcome;
    } catch (err) {
      if (closed) return 'failed';
      metrics.policyRefreshed('failed');
      if (!failing) {
        failing = true;
        logger.error(
          { err, revision: current?.revision },
          current === undefined
            ? 'policy not loaded: announces answer POLICY_ERR_NOT_LOADED until it is'
            : 'policy refresh failed, keeping the last snapshot',
        );
      }
      return 'failed';
    }
  }

  function refresh(): Promise<PolicyRefreshOutcome> {
    if (closed) return Promise.resolve('failed');
    inFlight ??= load().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  return {
    get current() {
      return current;
    },
    start() {
      if (timer !== undefined || closed) return;
      void refresh();
      timer = setInterval(() => void refresh(), options.refreshSeconds * 1000);
      timer.unref();
    },
    refresh,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      abort.abort();
      await inFlight;
      await source.close();
    },
  };
}
