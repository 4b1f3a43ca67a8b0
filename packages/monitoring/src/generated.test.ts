// The committed dashboards, rules, prometheus.yml and docs/metrics.md are the
// generator's output, and everything they query exists in the catalogue.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CATALOGUE, sampleNames } from './catalogue.ts';
import { DASHBOARDS, allQueries } from './dashboards.ts';
import { EXTERNAL_METRICS } from './external-metrics.ts';
import { renderGrafana } from './grafana.ts';
import { selectedNames } from './promql.ts';
import { renderArtefacts } from './render.ts';
import { ALERT_RULES, RECORDING_RULES } from './rules.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

describe('generated monitoring artefacts', () => {
  it('are committed exactly as the generator writes them', async () => {
    const stale: string[] = [];
    for (const [path, content] of await renderArtefacts()) {
      const committed = await readFile(join(repoRoot, path), 'utf8').catch(() => undefined);
      if (committed !== content) stale.push(path);
    }
    // Fix: pnpm --filter @shoal/monitoring run generate
    expect(stale).toEqual([]);
  });

  it('query only catalogued metrics, recording rules and `up`', () => {
    const known = new Set<string>(['up']);
    for (const m of CATALOGUE) for (const n of sampleNames(m)) known.add(n);
    for (const r of RECORDING_RULES) known.add(r.record);
    const exprs = [
      ...allQueries().map((q) => ({ where: `${q.dashboard} / ${q.panel}`, expr: q.query.expr })),
      ...RECORDING_RULES.map((r) => ({ where: r.record, expr: r.expr })),
      ...ALERT_RULES.map((r) => ({ where: r.alert, expr: r.expr })),
    ];
    // A store exporter's name counts only in a query on that store's job, so it
    // never stands in for a Shoal metric missing from the catalogue.
    const external = new Map(EXTERNAL_METRICS.map((m) => [m.name, m]));
    const onItsJob = (name: string, expr: string): boolean => {
      const m = external.get(name);
      return m !== undefined && expr.includes(`job="${m.job}"`);
    };
    const unknown = exprs.flatMap(({ where, expr }) =>
      selectedNames(expr)
        .filter((n) => !known.has(n) && !onItsJob(n, expr))
        .map((n) => `${where}: ${n}`),
    );
    expect(unknown).toEqual([]);
    // The exception is narrow: an exporter's name on a Shoal job is still unknown.
    expect(onItsJob('redis_up', 'redis_up{job="shoal-redis"}')).toBe(true);
    expect(onItsJob('redis_up', 'redis_up{job="shoal-gateway"}')).toBe(false);
    expect(onItsJob('shoal_requests_total', 'shoal_requests_total{job="shoal-redis"}')).toBe(false);
    // The reader found names at all: an empty result would pass the check above vacuously.
    expect(selectedNames(RECORDING_RULES[0]!.expr)).toEqual(['shoal_requests_total']);
  });

  it('catalogue only external store metrics a dashboard reads, none of them a Shoal name', () => {
    const read = new Set(allQueries().flatMap((q) => selectedNames(q.query.expr)));
    const shoal = new Set(CATALOGUE.flatMap((m) => sampleNames(m)));
    for (const m of EXTERNAL_METRICS) {
      expect(read.has(m.name), m.name).toBe(true);
      expect(shoal.has(m.name), m.name).toBe(false);
      expect(m.source.length).toBeGreaterThan(0);
    }
  });

  it('give every alert a severity, a summary and a description', () => {
    for (const a of ALERT_RULES) {
      expect(['warning', 'critical']).toContain(a.severity);
      expect(a.summary.length).toBeGreaterThan(10);
      expect(a.description.length).toBeGreaterThan(20);
    }
    const names = ALERT_RULES.map((a) => a.alert);
    expect(new Set(names).size).toBe(names.length);
  });

  it('make the datasource a template variable that every panel and query uses', () => {
    for (const d of DASHBOARDS) {
      const json = renderGrafana(d) as {
        templating: { list: Array<{ name: string; type: string; query: string }> };
        panels: Array<{
          type: string;
          datasource?: { uid: string };
          targets?: Array<{ datasource: { uid: string } }>;
        }>;
      };
      expect(json.templating.list).toContainEqual(
        expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
      );
      const panels = json.panels.filter((p) => p.type !== 'row');
      expect(panels.length).toBeGreaterThan(0);
      for (const p of panels) {
        expect(p.datasource?.uid).toBe('${datasource}');
        for (const t of p.targets ?? []) expect(t.datasource.uid).toBe('${datasource}');
      }
    }
  });
});
