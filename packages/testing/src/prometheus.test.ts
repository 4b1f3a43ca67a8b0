import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrometheus, type RunningPrometheus } from './prometheus.ts';

describe('startPrometheus', () => {
  let exporter: Server;
  let prom: RunningPrometheus;
  let hits = 0;

  beforeAll(async () => {
    exporter = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      hits++;
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(
        `# HELP demo_hits_total Scrapes answered.\n# TYPE demo_hits_total counter\ndemo_hits_total{kind="scrape"} ${hits}\n`,
      );
    });
    await new Promise<void>((resolve) => exporter.listen(0, '127.0.0.1', resolve));
    const address = exporter.address();
    if (address === null || typeof address === 'string') throw new Error('no exporter port');
    prom = await startPrometheus({
      scrape: [{ job: 'demo', targets: [`127.0.0.1:${address.port}`] }],
      rules: [
        'groups:\n  - name: demo\n    rules:\n      - record: demo:hits:doubled\n        expr: demo_hits_total * 2\n',
      ],
    });
  });

  afterAll(async () => {
    await prom?.close();
    await new Promise((resolve) => exporter?.close(resolve));
  });

  it('scrapes the given targets every second under the given job name', async () => {
    await prom.waitForTargetsUp();
    const samples = await prom.query('demo_hits_total');
    expect(samples).toHaveLength(1);
    expect(samples[0]?.metric).toMatchObject({ job: 'demo', kind: 'scrape' });
    const first = Number(samples[0]?.value[1]);
    await expect
      .poll(async () => Number((await prom.query('demo_hits_total'))[0]?.value[1]), {
        timeout: 10_000,
        interval: 250,
      })
      .toBeGreaterThan(first);
  });

  it('loads and evaluates the given rules', async () => {
    await expect
      .poll(async () => (await prom.query('demo:hits:doubled')).length, { timeout: 10_000 })
      .toBe(1);
    const rules = await prom.rules();
    expect(rules).toEqual([
      expect.objectContaining({ name: 'demo:hits:doubled', type: 'recording', health: 'ok' }),
    ]);
  });

  it('rejects a query Prometheus cannot parse with a coded error', async () => {
    await expect(prom.query('sum(')).rejects.toMatchObject({ code: 'PROMETHEUS_ERR_QUERY' });
  });

  it('answers a scalar query as one unlabelled sample', async () => {
    const [sample] = await prom.query('time()');
    expect(sample?.metric).toEqual({});
    expect(Number(sample?.value[1])).toBeGreaterThan(1_600_000_000);
  });
});
