// `promtool check` on the committed rules and the local prometheus.yml, with
// the Prometheus release Debian ships (scripts/system-deps.sh installs it).
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { TopologyEndpoints } from '@shoal/testing/topology';
import { allQueries } from './dashboards.ts';
import { STORES_DASHBOARD } from './dashboards/stores.ts';
import { topologyPrometheusConfig } from './local-prometheus.ts';
import { withRateInterval } from './promql.ts';
import { PROMETHEUS_FILE, RULES_FILE, renderYaml } from './render.ts';
import { ALERT_RULES, RECORDING_RULES } from './rules.ts';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

describe('promtool', () => {
  it('accepts the rules file and counts every rule', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', join(repoRoot, RULES_FILE)]);
    expect(stdout).toContain(`SUCCESS: ${RECORDING_RULES.length + ALERT_RULES.length} rules found`);
  });

  it('accepts the local prometheus.yml with its rule file', async () => {
    const { stdout } = await run('promtool', ['check', 'config', join(repoRoot, PROMETHEUS_FILE)]);
    expect(stdout).toContain('is valid prometheus config file syntax');
    expect(stdout).toContain('SUCCESS: 1 rule files found');
  });

  it('accepts the config written for a running local topology, one target per service', async () => {
    const topology = {
      gateways: [{ admin: 'http://127.0.0.1:41001' }, { admin: 'http://127.0.0.1:41002' }],
      storageApi: { admin: 'http://127.0.0.1:41003' },
      gcWorker: { admin: 'http://127.0.0.1:41004' },
    } as unknown as TopologyEndpoints;
    const config = topologyPrometheusConfig(topology) as {
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };
    expect(config.scrape_configs.map((c) => [c.job_name, c.static_configs[0]?.targets])).toEqual([
      ['shoal-gateway', ['127.0.0.1:41001', '127.0.0.1:41002']],
      ['shoal-storage-api', ['127.0.0.1:41003']],
      ['shoal-gc-worker', ['127.0.0.1:41004']],
    ]);
    const dir = await mkdtemp(join(tmpdir(), 'shoal-promcfg-'));
    try {
      const file = join(dir, 'prometheus.yml');
      await writeFile(file, renderYaml(config));
      const { stdout } = await run('promtool', ['check', 'config', file]);
      expect(stdout).toContain('SUCCESS: 1 rule files found');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // No exporter or CockroachDB runs in the local topology, so the Prometheus
  // proof (tests/src/observability.test.ts) cannot answer the stores
  // dashboard; promtool parses each of its queries instead, as recording rules.
  it('parses every stores dashboard query', async () => {
    const queries = allQueries([STORES_DASHBOARD]);
    expect(queries.length).toBeGreaterThan(10);
    const doc = {
      groups: [
        {
          name: 'stores-dashboard',
          rules: queries.map((q, i) => ({
            record: `stores:query_${i}`,
            expr: withRateInterval(q.query.expr, '5m'),
          })),
        },
      ],
    };
    const dir = await mkdtemp(join(tmpdir(), 'shoal-stores-'));
    try {
      const file = join(dir, 'stores.rules.yml');
      await writeFile(file, renderYaml(doc));
      const { stdout } = await run('promtool', ['check', 'rules', file]);
      expect(stdout).toContain(`SUCCESS: ${queries.length} rules found`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
