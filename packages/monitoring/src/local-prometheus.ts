// Prometheus for the local topology (deploy/local/up.sh), whose services
// listen on ports chosen at start: reads <state-dir>/topology.json, writes a
// prometheus.yml scraping every service under the rules' job names, and runs
// Debian's `prometheus` in the foreground (Ctrl-C stops it).
//   deploy/monitoring/local-prometheus.sh [--state-dir DIR] [--port N] [--config-only]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prometheusConfig } from './prometheus-config.ts';
import { renderYaml, RULES_FILE } from './render.ts';
import { JOBS } from './rules.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * What this tool reads of <state-dir>/topology.json, the endpoints file the
 * local topology writes (docs/local-topology.md): the admin addresses.
 */
export interface ScrapedTopology {
  gateways: readonly { admin: string }[];
  storageApi: { admin: string };
  gcWorker: { admin: string };
}

function readTopology(stateDir: string): ScrapedTopology | undefined {
  const file = join(stateDir, 'topology.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as ScrapedTopology;
}

/** The scrape config for a running topology, rules from the repository. */
export function topologyPrometheusConfig(topology: ScrapedTopology): unknown {
  const host = (url: string): string => new URL(url).host;
  return prometheusConfig({
    scrapeInterval: '5s',
    evaluationInterval: '5s',
    ruleFiles: [join(repoRoot, RULES_FILE)],
    scrape: [
      { job: JOBS.gateway, targets: topology.gateways.map((g) => host(g.admin)) },
      { job: JOBS.storageApi, targets: [host(topology.storageApi.admin)] },
      { job: JOBS.gcWorker, targets: [host(topology.gcWorker.admin)] },
    ],
  });
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const stateDir = flag('--state-dir') ?? process.env.SHOAL_LOCAL_STATE_DIR ?? '/tmp/shoal-local';
  // 9093: the gateway's admin port holds Prometheus' default 9090 when run by hand.
  const port = Number(flag('--port') ?? '9093');
  const topology = readTopology(stateDir);
  if (topology === undefined) {
    process.stderr.write(`no ${stateDir}/topology.json: start deploy/local/up.sh first\n`);
    process.exit(1);
  }
  const dir = join(stateDir, 'prometheus');
  mkdirSync(join(dir, 'data'), { recursive: true });
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, renderYaml(topologyPrometheusConfig(topology)));
  process.stdout.write(`wrote ${configFile}\n`);
  if (!process.argv.includes('--config-only')) {
    process.stdout.write(`prometheus on http://127.0.0.1:${port}\n`);
    const child = spawn(
      'prometheus',
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'inherit' },
    );
    child.once('exit', (code) => process.exit(code ?? 1));
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.once(signal, () => child.kill(signal));
  }
}
