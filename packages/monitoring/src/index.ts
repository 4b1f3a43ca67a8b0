export {
  CATALOGUE,
  RUNTIME_METRICS,
  SHOAL_METRICS,
  findMetric,
  metricOfSample,
  sampleNames,
  type MetricSpec,
  type MetricType,
  type Service,
} from './catalogue.ts';
export { DASHBOARDS, allQueries } from './dashboards.ts';
export type { Dashboard, Panel, Query, Row, Unit } from './dashboards/panels.ts';
export { STORES_DASHBOARD } from './dashboards/stores.ts';
export { renderGrafana } from './grafana.ts';
export {
  EXTERNAL_METRICS,
  STORE_JOBS,
  type ExternalMetric,
  type StoreJob,
} from './external-metrics.ts';
export {
  ALERT_RULES,
  JOBS,
  RECORDING_RULES,
  RULE_GROUPS,
  isAlert,
  rulesDocument,
  type AlertRule,
  type RecordingRule,
  type RuleGroup,
  type Severity,
} from './rules.ts';
export {
  LOCAL_TARGETS,
  prometheusConfig,
  type PrometheusConfigOptions,
  type ScrapeTarget,
} from './prometheus-config.ts';
export { GRAFANA_RATE_INTERVAL, selectedNames, withRateInterval } from './promql.ts';
export { METRICS_DOC, PROMETHEUS_FILE, RULES_FILE, renderArtefacts, renderYaml } from './render.ts';
