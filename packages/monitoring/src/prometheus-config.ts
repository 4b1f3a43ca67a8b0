// prometheus.yml for the local process topology (deploy/local): the three
// services' admin ports on loopback, under the job names the rules select.
import { JOBS } from './rules.ts';

export interface ScrapeTarget {
  job: string;
  /** host:port of the service's admin server (/metrics). */
  targets: readonly string[];
}

export interface PrometheusConfigOptions {
  scrapeInterval: string;
  evaluationInterval: string;
  /** Paths of rule files, as Prometheus resolves them (relative to the config file). */
  ruleFiles: readonly string[];
  scrape: readonly ScrapeTarget[];
}

/** The admin ports' defaults (contract-wave2.md section 5). */
export const LOCAL_TARGETS: readonly ScrapeTarget[] = [
  { job: JOBS.gateway, targets: ['127.0.0.1:9090'] },
  { job: JOBS.storageApi, targets: ['127.0.0.1:9091'] },
  { job: JOBS.gcWorker, targets: ['127.0.0.1:9092'] },
];

export function prometheusConfig(options: PrometheusConfigOptions): unknown {
  return {
    global: {
      scrape_interval: options.scrapeInterval,
      evaluation_interval: options.evaluationInterval,
    },
    rule_files: [...options.ruleFiles],
    scrape_configs: options.scrape.map((s) => ({
      job_name: s.job,
      metrics_path: '/metrics',
      static_configs: [{ targets: [...s.targets] }],
    })),
  };
}

export const LOCAL_PROMETHEUS_CONFIG = prometheusConfig({
  scrapeInterval: '15s',
  evaluationInterval: '15s',
  ruleFiles: ['rules/shoal.rules.yml'],
  scrape: LOCAL_TARGETS,
});
