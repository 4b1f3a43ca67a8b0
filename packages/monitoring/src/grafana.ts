// Renders a dashboard of the model in dashboards/panels.ts to Grafana's
// dashboard JSON: rows, up to three panels side by side, the Prometheus
// datasource a template variable.
import type { Dashboard, Panel } from './dashboards/panels.ts';

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const GRID_WIDTH = 24;
const PANEL_HEIGHT = 8;

/** Grafana dashboard JSON (schema 39), the datasource a template variable. */
export function renderGrafana(d: Dashboard): unknown {
  const panels: unknown[] = [];
  let id = 1;
  let y = 0;
  for (const row of d.rows) {
    panels.push({
      type: 'row',
      id: id++,
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: GRID_WIDTH, x: 0, y },
      panels: [],
    });
    y += 1;
    // Up to three panels side by side; a row of one or two shares the width.
    const perLine = Math.min(3, row.panels.length);
    const width = GRID_WIDTH / perLine;
    row.panels.forEach((p, i) => {
      const col = i % perLine;
      if (i > 0 && col === 0) y += PANEL_HEIGHT;
      panels.push(renderPanel(p, id++, { h: PANEL_HEIGHT, w: width, x: col * width, y }));
    });
    y += PANEL_HEIGHT;
  }
  return {
    uid: d.uid,
    title: d.title,
    description: d.description,
    tags: ['shoal'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timezone: 'utc',
    annotations: { list: [] },
    links: [],
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          refresh: 1,
          regex: '',
          options: [],
        },
      ],
    },
    panels,
  };
}

function renderPanel(p: Panel, id: number, gridPos: Record<string, number>): unknown {
  return {
    type: p.kind,
    id,
    title: p.title,
    description: p.description,
    datasource: DATASOURCE,
    gridPos,
    fieldConfig: {
      defaults: {
        unit: p.unit,
        ...(p.mappings === undefined
          ? {}
          : {
              mappings: [
                {
                  type: 'value',
                  options: Object.fromEntries(
                    p.mappings.map((m, index) => [
                      String(m.value),
                      { text: m.text, color: m.color, index },
                    ]),
                  ),
                },
              ],
            }),
      },
      overrides: [],
    },
    options:
      p.kind === 'stat'
        ? {
            reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
            colorMode: 'value',
          }
        : {
            legend: { displayMode: 'list', placement: 'bottom' },
            tooltip: { mode: 'multi', sort: 'desc' },
          },
    targets: p.queries.map((query, i) => ({
      datasource: DATASOURCE,
      expr: query.expr,
      legendFormat: query.legend,
      refId: String.fromCharCode(65 + i),
    })),
  };
}
