// Grafana dashboards as code: the dashboards in dashboards/ are the one
// source; generate.ts renders them (grafana.ts) to
// deploy/monitoring/dashboards/*.json and the Prometheus proof runs every
// query here against real scrapes.
import { GATEWAY_DASHBOARD } from './dashboards/gateway.ts';
import { GC_DASHBOARD } from './dashboards/gc.ts';
import { OVERVIEW_DASHBOARD } from './dashboards/overview.ts';
import type { Dashboard, Query } from './dashboards/panels.ts';
import { STORAGE_DASHBOARD } from './dashboards/storage.ts';
import { STORES_DASHBOARD } from './dashboards/stores.ts';

export const DASHBOARDS: readonly Dashboard[] = [
  OVERVIEW_DASHBOARD,
  GATEWAY_DASHBOARD,
  STORAGE_DASHBOARD,
  GC_DASHBOARD,
  STORES_DASHBOARD,
];

/** Every query of every panel, with where it comes from (for tests and reports). */
export function allQueries(
  dashboards: readonly Dashboard[] = DASHBOARDS,
): Array<{ dashboard: string; panel: string; query: Query }> {
  return dashboards.flatMap((d) =>
    d.rows.flatMap((r) =>
      r.panels.flatMap((p) =>
        p.queries.map((query) => ({ dashboard: d.uid, panel: p.title, query })),
      ),
    ),
  );
}
