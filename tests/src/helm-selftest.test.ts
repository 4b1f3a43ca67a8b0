// The `helm test` Pod's script, taken from the rendered ConfigMap, run against
// a real gateway process started with the environment the chart gives the
// gateway Deployment (only listen addresses and the store differ: loopback,
// port 0, the in-process memory store instead of storage-api). It must pass
// there and fail when nothing answers.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeTcpPort } from '@shoal/testing/ports';
import { startGateway, type GatewayProcess, LOOPBACK_ENV } from '@shoal/testing/launcher';
import { containerEnv, ensureHelm, find, renderChart, type K8sObject } from './harness/helm.ts';

interface SelftestRun {
  code: number;
  report: {
    ok: boolean;
    results: Array<{ step: string; ok: boolean; error?: string; peers?: number }>;
  };
}

function runSelftest(script: string, env: Record<string, string>): Promise<SelftestRun> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [script],
      { env: { ...env, PATH: process.env.PATH ?? '' }, timeout: 30_000 },
      (err, stdout) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          resolve({ code, report: JSON.parse(line) as SelftestRun['report'] });
        } catch {
          reject(new Error(`selftest printed no report (exit ${code}): ${stdout}`));
        }
      },
    );
  });
}

describe('the helm test Pod', () => {
  let dir: string;
  let script: string;
  let gateway: GatewayProcess;
  let pod: K8sObject;

  beforeAll(async () => {
    await ensureHelm();
    const objects = await renderChart(4);
    pod = find(objects, 'Pod', 'shoal-selftest');
    const cm = find(objects, 'ConfigMap', 'shoal-selftest') as K8sObject & {
      data: Record<string, string>;
    };
    dir = await mkdtemp(join(tmpdir(), 'shoal-helm-selftest-'));
    script = join(dir, 'selftest.mjs');
    await writeFile(script, cm.data['selftest.mjs'] ?? '');

    const chartEnv = containerEnv(objects, find(objects, 'Deployment', 'shoal-gateway'), 'gateway');
    gateway = await startGateway({
      ...chartEnv,
      ...LOOPBACK_ENV,
      STORAGE_DRIVER: 'memory',
    });
  }, 120_000);

  afterAll(async () => {
    await gateway?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is annotated as a Helm test hook and runs the script from the ConfigMap with the image node', () => {
    expect(pod.metadata.annotations?.['helm.sh/hook']).toBe('test');
    const c = (
      pod.spec as {
        containers: Array<{ command: string[]; env: Array<{ name: string; value: string }> }>;
      }
    ).containers[0];
    expect(c?.command).toEqual(['node', '/selftest/selftest.mjs']);
    expect(c?.env.find((e) => e.name === 'SHOAL_SELFTEST_HOST')?.value).toBe(
      'shoal-gateway.tracker.svc',
    );
  });

  it('passes against a gateway running with the chart env: a leecher gets the seeder over HTTP and UDP', async () => {
    expect(gateway.udpPort).toBe(gateway.httpPort);
    const run = await runSelftest(script, {
      SHOAL_SELFTEST_HOST: '127.0.0.1',
      SHOAL_SELFTEST_PORT: String(gateway.httpPort),
    });
    expect(run.report.results).toEqual([
      expect.objectContaining({ step: 'http', ok: true }),
      expect.objectContaining({ step: 'udp', ok: true }),
    ]);
    expect(run.report.ok).toBe(true);
    expect(run.code).toBe(0);
  });

  it('fails when no tracker answers', async () => {
    const port = await freeTcpPort();
    const run = await runSelftest(script, {
      SHOAL_SELFTEST_HOST: '127.0.0.1',
      SHOAL_SELFTEST_PORT: String(port),
      SHOAL_SELFTEST_TIMEOUT_MS: '500',
    });
    expect(run.code).toBe(1);
    expect(run.report.ok).toBe(false);
    expect(run.report.results.every((r) => !r.ok)).toBe(true);
  });
});
