// The gateway's load loop (docs/load.md): every LOAD_SAMPLE_MS it reads the
// signals (event-loop lag, announces waiting on the store, the breaker,
// storage-api's reports), combines them into one load figure and lets the
// controller move the interval. The tracker core asks it, per announce, for
// the interval's current value, the lifetime to promise and whether to shed.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { PeerAnnounce } from '@shoal/storage';
import type { GatewayConfig } from '../config.ts';
import type { CircuitState } from '../remote/breaker.ts';
import type { StorageLoadReports } from '../remote/load-reports.ts';
import { IntervalController } from './controller.ts';
import { createLoadMetrics, type LoadMetrics, type LoadSignal, type ShedKind } from './metrics.ts';

/** What the tracker core asks per announce. */
export interface AnnounceLoad {
  /** The current interval before jitter. */
  readonly intervalSeconds: number;
  /** Seconds the store keeps a peer told `interval`: the promise plus grace. */
  lifetimeFor(interval: number): number;
  /** The interval to answer a shed announce with, or undefined to serve it. */
  shed(a: PeerAnnounce, waiting: number): number | undefined;
}

/** What a remote store offers the load loop; embedded stores offer nothing. */
export interface LoadSources {
  circuitState?: () => CircuitState;
  storageLoad?: StorageLoadReports;
}

export interface LoadControl extends AnnounceLoad {
  /** Starts sampling; `waiting` counts the announces waiting on the store. */
  start(waiting: () => number): void;
  /** One sample now (the timer's work; tests call it to step the loop). */
  sample(): void;
  close(): void;
}

export interface LoadControlDeps {
  config: GatewayConfig;
  registry: Registry;
  logger: Logger;
  sources: LoadSources;
  /** Milliseconds, monotonic; injectable for tests. */
  now?: () => number;
  random?: () => number;
}

export function createLoadControl(deps: LoadControlDeps): LoadControl {
  const { config: c, sources } = deps;
  const log = deps.logger.child({ module: 'load' });
  const now = deps.now ?? (() => performance.now());
  const random = deps.random ?? Math.random;
  const controller = new IntervalController({
    baseSeconds: c.ANNOUNCE_INTERVAL_SECONDS,
    maxSeconds: c.ANNOUNCE_INTERVAL_MAX_SECONDS,
    high: c.LOAD_HIGH,
    low: c.LOAD_LOW,
    raiseAfterMs: c.LOAD_RAISE_AFTER_MS,
    lowerAfterMs: c.LOAD_LOWER_AFTER_MS,
    raiseFactor: c.LOAD_RAISE_FACTOR,
    lowerFactor: c.LOAD_LOWER_FACTOR,
  });
  const metrics: LoadMetrics = createLoadMetrics(deps.registry, () => controller.intervalSeconds);
  const grace = Math.max(0, c.PEER_LIFETIME_SECONDS - c.ANNOUNCE_INTERVAL_SECONDS);
  const thresholds: Readonly<Record<ShedKind, number>> = {
    seeder_update: c.SHED_SEEDER_UPDATES_AT,
    leecher_update: c.SHED_LEECHER_UPDATES_AT,
    event: c.SHED_EVENTS_AT,
  };
  const signals: Record<LoadSignal, number> = { lag: 0, queue: 0, breaker: 0, storage: 0 };
  let lag: ReturnType<typeof monitorEventLoopDelay> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let waiting: () => number = () => 0;
  let interval = controller.intervalSeconds;

  function sample(): void {
    if (lag !== undefined) {
      signals.lag = lag.count === 0 ? 0 : lag.percentile(99) / 1e6 / c.LOAD_LAG_TARGET_MS;
      lag.reset();
    }
    const queued = waiting();
    signals.queue = queued / c.LOAD_QUEUE_TARGET;
    const state = sources.circuitState?.();
    signals.breaker = state === undefined || state === 'closed' ? 0 : 1;
    const storage = sources.storageLoad?.take();
    // A batch slower than a sample answers in none: while announces wait, the last report stands.
    if (storage === undefined) signals.storage = 0;
    else if (storage.reports > 0) signals.storage = storage.load;
    else if (queued === 0) signals.storage = 0;
    const load = Math.max(signals.lag, signals.queue, signals.breaker, signals.storage);
    // docs/load.md "An older storage-api": no report, no promise it can keep.
    const pinned = storage !== undefined && !storage.reporting;
    const before = interval;
    interval = controller.sample(now(), load, pinned);
    metrics.sampled(load, signals);
    if (interval !== before)
      log.info({ from: before, to: interval, load, signals }, 'announce interval changed');
  }

  return {
    get intervalSeconds() {
      return interval;
    },
    lifetimeFor: (told) => Math.max(c.PEER_LIFETIME_SECONDS, told + grace),
    shed(a, count) {
      const kind: ShedKind =
        a.event !== 'none' ? 'event' : a.seeder ? 'seeder_update' : 'leecher_update';
      const at = thresholds[kind];
      if (at === 0 || count < at) return undefined;
      metrics.shed(kind);
      const low = c.SHED_INTERVAL_MIN_SECONDS;
      const high = Math.max(interval, low);
      return low + Math.floor(random() * (high - low + 1));
    },
    start(w) {
      waiting = w;
      if (timer !== undefined) return;
      lag = monitorEventLoopDelay({ resolution: 10 });
      lag.enable();
      timer = setInterval(sample, c.LOAD_SAMPLE_MS);
      timer.unref();
    },
    sample,
    close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      lag?.disable();
      lag = undefined;
    },
  };
}
