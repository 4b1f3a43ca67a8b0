// The load loop's metrics (docs/load.md "Metrics"), on the gateway's registry.
import { Counter, Gauge, type Registry } from 'prom-client';

export type LoadSignal = 'lag' | 'queue' | 'breaker' | 'storage';
export type ShedKind = 'seeder_update' | 'leecher_update' | 'event';

const SIGNALS: readonly LoadSignal[] = ['lag', 'queue', 'breaker', 'storage'];
const SHED_KINDS: readonly ShedKind[] = ['seeder_update', 'leecher_update', 'event'];

export interface LoadMetrics {
  sampled(load: number, signals: Readonly<Record<LoadSignal, number>>): void;
  shed(kind: ShedKind): void;
}

export function createLoadMetrics(registry: Registry, intervalSeconds: () => number): LoadMetrics {
  new Gauge({
    name: 'shoal_gateway_announce_interval_seconds',
    help: 'The announce interval this gateway answers now, before jitter (docs/load.md).',
    registers: [registry],
    collect() {
      this.set(intervalSeconds());
    },
  });
  const load = new Gauge({
    name: 'shoal_gateway_load',
    help: 'The load figure of the latest sample: the largest signal ratio, 1 = at target.',
    registers: [registry],
  });
  const signal = new Gauge({
    name: 'shoal_gateway_load_signal',
    help: 'Each ratio of the latest load sample. signal: lag, queue, breaker, storage.',
    labelNames: ['signal'] as const,
    registers: [registry],
  });
  const shed = new Counter({
    name: 'shoal_gateway_shed_announces_total',
    help: 'Announces answered without the store under overload. kind: seeder_update, leecher_update, event.',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  // docs/observability.md: series exist before the first sample or shed.
  load.set(0);
  for (const s of SIGNALS) signal.set({ signal: s }, 0);
  const shedSeries = Object.fromEntries(SHED_KINDS.map((k) => [k, shed.labels({ kind: k })]));
  for (const k of SHED_KINDS) shedSeries[k]?.inc(0);
  return {
    sampled(value, signals) {
      load.set(value);
      for (const s of SIGNALS) signal.set({ signal: s }, signals[s]);
    },
    shed(kind) {
      shedSeries[kind]?.inc();
    },
  };
}
