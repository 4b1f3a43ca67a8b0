export {
  CATALOGUE,
  RUNTIME_METRICS,
  SHOAL_METRICS,
  findMetric,
  metricOfSample,
  sampleNames,
} from './catalogue.ts';
export type { MetricSpec, MetricType, Service } from './catalogue.ts';
export { DASHBOARDS, allQueries, renderGrafana } from './dashboards.ts';
export { STORES_DASHBOARD } from './stores-dashboard.ts';
export { EXTERNAL_METRICS, STORE_JOBS } from './external-metrics.ts';
export type { ExternalMetric, StoreJob } from './external-metrics.ts';
export type { Dashboard, Panel, Query, Row, Unit } from './dashboards.ts';
export {
  ALERT_RULES,
  JOBS,
  RECORDING_RULES,
  RULE_GROUPS,
  isAlert,
  rulesDocument,
} from './rules.ts';
export type { AlertRule, RecordingRule, RuleGroup, Severity } from './rules.ts';
export { LOCAL_TARGETS, prometheusConfig } from './prometheus-config.ts';
export type { PrometheusConfigOptions, ScrapeTarget } from './prometheus-config.ts';
export { GRAFANA_RATE_INTERVAL, selectedNames, withRateInterval } from './promql.ts';
export { METRICS_DOC, PROMETHEUS_FILE, RULES_FILE, renderArtefacts, renderYaml } from './render.ts';
