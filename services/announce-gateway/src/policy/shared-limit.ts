// The gateway's side of the shared rate limit (docs/policy.md "Shared rate
// limits"): the limiter of @shoal/policy decides on the announce path, and a
// timer sends its counts to the store every RATE_LIMIT_SHARED_SYNC_MS, one
// sync at a time, never on an announce's path. A failed sync is counted and
// logged once per outage; the gateway goes on with what it knows.
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createSharedRateLimiter, type SharedRateLimiter } from '@shoal/policy';
import type { RateCounters } from '@shoal/storage';

/** Keys per store call: ~40 bytes each in storage-api's JSON body, well under its body limit. */
const MAX_KEYS_PER_SYNC = 4096;

export interface SharedLimitOptions {
  /** Requests per address per window, cluster-wide. */
  limit: number;
  windowSeconds: number;
  syncMs: number;
  maxAddresses: number;
  store: RateCounters;
  metrics: SharedLimitMetrics;
  logger: Logger;
  clock: () => number;
}

export interface SharedLimit {
  /** false (and counted) when the address is over the cluster-wide limit. */
  take(family: 4 | 6, address: Buffer, nowMs: number): boolean;
  start(): void;
  /** Stops the timer; a sync under way finishes. What it did not send is at most one sync period's counts. */
  close(): Promise<void>;
}

export function createSharedLimit(options: SharedLimitOptions): SharedLimit {
  const { logger, clock, store, syncMs } = options;
  const windowMs = options.windowSeconds * 1000;
  const limiter: SharedRateLimiter = createSharedRateLimiter({
    limit: options.limit,
    windowMs,
    maxAddresses: options.maxAddresses,
    maxKeysPerSync: MAX_KEYS_PER_SYNC,
  });
  const { refusals, ok, failed, duration } = options.metrics;
  options.metrics.track(() => limiter.size);
  const send = store.addRateCounts.bind(store);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let failing = false;

  async function syncOnce(): Promise<void> {
    const start = performance.now();
    let sent = true;
    try {
      const { keys } = await limiter.sync(clock(), send);
      sent = keys > 0;
      if (!sent) return;
      ok.inc();
      if (failing) {
        failing = false;
        logger.info('shared rate limit syncing again');
      }
    } catch (err) {
      failed.inc();
      if (!failing) {
        failing = true;
        logger.warn(
          { err },
          'shared rate limit sync failed: this gateway limits with the counts it knows until the store answers',
        );
      }
    } finally {
      if (sent) duration.observe((performance.now() - start) / 1000);
    }
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = syncOnce().finally(schedule);
    }, syncMs);
    timer.unref();
  }

  return {
    take(family, address, nowMs) {
      if (limiter.take(family, address, nowMs)) return true;
      refusals.inc();
      return false;
    },
    start() {
      if (timer === undefined && !stopped) schedule();
    },
    async close() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

export interface SharedLimitMetrics {
  refusals: Counter;
  ok: Counter.Internal;
  failed: Counter.Internal;
  duration: Histogram;
  /** Where shoal_rate_limit_shared_addresses reads from. */
  track(addresses: () => number): void;
}

/** Registered whether RATE_LIMIT_SHARED is on or not, so every panel has series (docs/observability.md). */
export function createSharedLimitMetrics(registry: Registry): SharedLimitMetrics {
  let size = (): number => 0;
  const refusals = new Counter({
    name: 'shoal_rate_limit_shared_refusals_total',
    help: 'Announces and scrapes refused by the rate limit shared by all gateway replicas (RATE_LIMIT_SHARED), after passing this replica’s own bucket.',
    registers: [registry],
  });
  const syncs = new Counter({
    name: 'shoal_rate_limit_syncs_total',
    help: 'Syncs of the shared rate limit counts with the store, by outcome: ok, failed (the gateway goes on with the counts it knows).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'shoal_rate_limit_sync_seconds',
    help: 'Time of one shared rate limit sync (send the counts, take back the totals), failed ones included.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  new Gauge({
    name: 'shoal_rate_limit_shared_addresses',
    help: 'Addresses the shared rate limit tracks in this gateway (at most RATE_LIMIT_MAX_ADDRESSES).',
    registers: [registry],
    collect() {
      this.set(size());
    },
  });
  // Both outcomes from the start, so the panel and the alert read 0, not "no data".
  const ok = syncs.labels('ok');
  const failed = syncs.labels('failed');
  ok.inc(0);
  failed.inc(0);
  return {
    refusals,
    ok,
    failed,
    duration,
    track: (addresses) => {
      size = addresses;
    },
  };
}
