// The swarm gauges on a gateway with an embedded store (docs/metrics.md):
// the store's counts every STATS_INTERVAL_SECONDS. With the remote driver
// storage-api publishes them, and with workers the main thread alone asks
// (docs/workers.md "Metrics"), so a store is walked once per interval.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createSwarmGauges } from '@shoal/service/swarm-metrics';
import { isRemoteStore } from './remote/store.ts';
import type { GatewayStorage } from './storage.ts';

export interface SwarmStats {
  /** Stops the timer. */
  close(): void;
}

/** Registers the gauges and refreshes them now and every `intervalSeconds`; nothing for a remote store. */
export function startSwarmStats(deps: {
  storage: GatewayStorage;
  registry: Registry;
  intervalSeconds: number;
  logger: Logger;
}): SwarmStats {
  const { storage } = deps;
  if (isRemoteStore(storage)) return { close: () => undefined };
  const gauges = createSwarmGauges(deps.registry);
  const log = deps.logger.child({ module: 'swarm-stats' });
  const refresh = (): void => {
    storage.stats().then(
      (stats) => gauges.set(stats),
      (err: unknown) => log.warn({ err }, 'swarm statistics unavailable'),
    );
  };
  refresh();
  const timer = setInterval(refresh, deps.intervalSeconds * 1000);
  timer.unref();
  return { close: () => clearInterval(timer) };
}
