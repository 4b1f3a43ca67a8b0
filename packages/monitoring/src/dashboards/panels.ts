// The dashboard model (rows of panels of PromQL queries) that every
// dashboard module builds, and the builders they share; grafana.ts renders
// it to Grafana's JSON.
import { GRAFANA_RATE_INTERVAL } from '../promql.ts';
import { JOBS } from '../rules.ts';

export type Unit = 'reqps' | 'ops' | 's' | 'percentunit' | 'short' | 'bytes' | 'none';

export interface Query {
  expr: string;
  legend: string;
}

export interface Panel {
  title: string;
  description: string;
  kind: 'timeseries' | 'stat';
  unit: Unit;
  queries: readonly Query[];
  /** Value mappings for enumerated gauges (circuit state). */
  mappings?: ReadonlyArray<{ value: number; text: string; color: string }>;
}

export interface Row {
  title: string;
  panels: readonly Panel[];
}

export interface Dashboard {
  /** File name and Grafana uid. */
  uid: string;
  title: string;
  description: string;
  rows: readonly Row[];
}

/** Grafana's rate window, in every rate() of a panel. */
export const RI = GRAFANA_RATE_INTERVAL;
/** Label matchers of the services' scrape jobs. */
export const GW = `job="${JOBS.gateway}"`;
export const SA = `job="${JOBS.storageApi}"`;
export const GC = `job="${JOBS.gcWorker}"`;

export function ts(title: string, unit: Unit, description: string, ...queries: Query[]): Panel {
  return { title, description, kind: 'timeseries', unit, queries };
}

export function stat(title: string, unit: Unit, description: string, ...queries: Query[]): Panel {
  return { title, description, kind: 'stat', unit, queries };
}

export function q(expr: string, legend: string): Query {
  return { expr, legend };
}

export function runtimeRow(job: string): Row {
  return {
    title: 'Runtime',
    panels: [
      ts(
        'Event-loop lag p99',
        's',
        'nodejs_eventloop_lag_p99_seconds per instance: a busy or blocked loop delays every request.',
        q(`max by (instance) (nodejs_eventloop_lag_p99_seconds{${job}})`, '{{instance}}'),
      ),
      ts(
        'CPU',
        'percentunit',
        'CPU seconds per second per instance (1 = one core).',
        q(`sum by (instance) (rate(process_cpu_seconds_total{${job}}[${RI}]))`, '{{instance}}'),
      ),
      ts(
        'Resident memory',
        'bytes',
        'Resident set size per instance.',
        q(`max by (instance) (process_resident_memory_bytes{${job}})`, '{{instance}}'),
      ),
    ],
  };
}
