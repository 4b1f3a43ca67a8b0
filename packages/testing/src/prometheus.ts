// A real Prometheus for tests, from Debian's `prometheus` package:
// started on a free loopback port in a temp dir with the given scrape targets
// and rule files, queried over its HTTP API, killed and removed by close().
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort } from './ports.ts';
import { HarnessError } from './errors.ts';

export interface PrometheusScrapeJob {
  job: string;
  /** host:port pairs serving /metrics. */
  targets: readonly string[];
  metricsPath?: string;
}

export interface StartPrometheusOptions {
  scrape: readonly PrometheusScrapeJob[];
  /** Rule files' contents (YAML), written beside the config. */
  rules?: readonly string[];
  /** Seconds; also the rule evaluation interval. Default 1. */
  intervalSeconds?: number;
  /** Default `prometheus` from PATH (Debian installs /usr/bin/prometheus). */
  binary?: string;
  startTimeoutMs?: number;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromRule {
  name: string;
  query: string;
  type: 'recording' | 'alerting';
  health: string;
  lastError?: string;
}

export interface PromTarget {
  labels: Record<string, string>;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  scrapeUrl: string;
}

export interface RunningPrometheus {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Instant query (/api/v1/query); rejects with PROMETHEUS_ERR_QUERY when Prometheus answers an error. */
  query(expr: string): Promise<PromSample[]>;
  /** Every loaded rule with its health and last evaluation error (/api/v1/rules). */
  rules(): Promise<PromRule[]>;
  targets(): Promise<PromTarget[]>;
  /** Resolves once every configured target has been scraped successfully. */
  waitForTargetsUp(timeoutMs?: number): Promise<void>;
  /** Prometheus' own output, for assertion messages. */
  log(): string;
  close(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

function renderConfig(opts: StartPrometheusOptions, ruleFiles: readonly string[]): string {
  const interval = `${opts.intervalSeconds ?? 1}s`;
  // JSON is YAML: no YAML library needed for a config this small.
  return JSON.stringify({
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
    rule_files: ruleFiles,
    scrape_configs: opts.scrape.map((s) => ({
      job_name: s.job,
      metrics_path: s.metricsPath ?? '/metrics',
      static_configs: [{ targets: [...s.targets] }],
    })),
  });
}

export async function startPrometheus(opts: StartPrometheusOptions): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-prometheus-'));
  const ruleFiles: string[] = [];
  for (const [i, content] of (opts.rules ?? []).entries()) {
    const file = join(dir, `rules-${i}.yml`);
    await writeFile(file, content);
    ruleFiles.push(file);
  }
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, renderConfig(opts, ruleFiles));
  const port = await freeTcpPort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    opts.binary ?? 'prometheus',
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  live.add(child);
  let output = '';
  const append = (b: Buffer): void => {
    output = (output + b.toString()).slice(-16_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let running = true;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      append(Buffer.from(`spawn error: ${err.message}\n`));
      running = false;
      live.delete(child);
      resolve();
    });
    child.once('exit', () => {
      running = false;
      live.delete(child);
      resolve();
    });
  });

  async function close(): Promise<void> {
    if (running) child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  }

  async function api<T>(path: string, what: string): Promise<T> {
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as ApiAnswer<T>;
    if (body.status !== 'success')
      throw new HarnessError(
        'PROMETHEUS_ERR_QUERY',
        `${body.errorType ?? `http ${res.status}`}: ${body.error ?? ''} (query: ${what})`,
      );
    return body.data;
  }

  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (!running) {
      await close();
      throw new HarnessError('PROMETHEUS_ERR_START', `prometheus exited first:\n${output}`);
    }
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await close();
      throw new HarnessError(
        'PROMETHEUS_ERR_START',
        `not ready within ${startTimeoutMs} ms:\n${output}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const targets = async (): Promise<PromTarget[]> =>
    (await api<{ activeTargets: PromTarget[] }>('/api/v1/targets?state=active', 'targets'))
      .activeTargets;
  const expected = opts.scrape.reduce((n, s) => n + s.targets.length, 0);

  return {
    url,
    port,
    dir,
    async query(expr) {
      const data = await api<{ resultType: string; result: PromSample[] | [number, string] }>(
        `/api/v1/query?query=${encodeURIComponent(expr)}`,
        expr,
      );
      // A scalar (e.g. `time()`) is one sample without labels.
      if (data.resultType === 'scalar')
        return [{ metric: {}, value: data.result as [number, string] }];
      return data.result as PromSample[];
    },
    async rules() {
      const data = await api<{ groups: Array<{ rules: PromRule[] }> }>('/api/v1/rules', 'rules');
      return data.groups.flatMap((g) => g.rules);
    },
    targets,
    async waitForTargetsUp(timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const last = await targets();
        if (last.length === expected && last.every((t) => t.health === 'up')) return;
        if (Date.now() > until) {
          const state = last.map((t) => `${t.scrapeUrl} ${t.health} ${t.lastError}`).join('\n');
          throw new HarnessError('PROMETHEUS_ERR_TARGETS', `within ${timeoutMs} ms:\n${state}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    log: () => output,
    close,
  };
}
