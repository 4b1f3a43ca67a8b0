import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { buildGcWorker, type GcWorker } from './app.ts';
import { loadGcWorkerConfig } from './config.ts';
import type { LeaderElector } from './election/types.ts';
import { GcError } from './errors.ts';
import type { GcRunResult } from './storage-api-client.ts';

const TOKEN = 'test-token-0123456789abcdef';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An elector the test switches by hand. */
function manualElector(): LeaderElector & {
  set(leading: boolean): void;
  stoppedAt: number | undefined;
} {
  let leading = false;
  const listeners: Array<(l: boolean) => void> = [];
  const e = {
    mode: 'storage-api' as const,
    identity: 'worker-test',
    stoppedAt: undefined as number | undefined,
    start() {},
    isLeader: () => leading,
    onChange: (l: (leading: boolean) => void) => listeners.push(l),
    set(next: boolean) {
      leading = next;
      for (const l of listeners) l(next);
    },
    stop() {
      e.stoppedAt = Date.now();
      leading = false;
      return Promise.resolve();
    },
  };
  return e;
}

function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? Number.NaN : Number(line.split(' ').at(-1));
}

const config = loadGcWorkerConfig({
  env: {
    ADMIN_HOST: '127.0.0.1',
    ADMIN_PORT: '0',
    STORAGE_API_TOKEN: TOKEN,
    GC_INTERVAL_SECONDS: '0.05',
    SHUTDOWN_GRACE_SECONDS: '2',
  },
  argv: [],
});

let worker: GcWorker | undefined;
afterEach(async () => {
  await worker?.close();
  worker = undefined;
});

/** Builds the worker under test (closed after each test) with a hand-switched elector and `gc` as its collection. */
function startWorker(gc: () => Promise<GcRunResult>): {
  worker: GcWorker;
  elector: ReturnType<typeof manualElector>;
  registry: Registry;
} {
  const elector = manualElector();
  const registry = new Registry();
  worker = buildGcWorker({ config, logger: pino({ level: 'silent' }), registry, elector, gc });
  return { worker, elector, registry };
}

describe('gc-worker', () => {
  it('collects every interval only while leading, and publishes what it did', async () => {
    let calls = 0;
    const { worker: w, elector } = startWorker(() => {
      calls++;
      return Promise.resolve({ peersRemoved: 3, swarmsRemoved: 1 });
    });
    const { adminPort } = await w.listen();
    const base = `http://127.0.0.1:${adminPort}`;
    // Ticks go by as "skipped": not leading, it never collects.
    await expect
      .poll(async () =>
        metricValue(
          await (await fetch(`${base}/metrics`)).text(),
          'shoal_gc_runs_total{outcome="skipped_not_leader"}',
        ),
      )
      .toBeGreaterThanOrEqual(2);
    expect(calls).toBe(0);
    let metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metricValue(metrics, 'shoal_gc_leader')).toBe(0);

    elector.set(true);
    // Collects at once on becoming leader, then every 50 ms.
    expect(calls).toBe(1);
    await expect.poll(() => calls).toBeGreaterThanOrEqual(4);
    elector.set(false);
    const afterLoss = calls;
    // Three intervals without a run (a negative needs a wait; the interval is 50 ms).
    await sleep(150);
    expect(calls).toBe(afterLoss);

    metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metricValue(metrics, 'shoal_gc_runs_total{outcome="ok"}')).toBe(afterLoss);
    expect(metricValue(metrics, 'shoal_gc_peers_removed_total')).toBe(3 * afterLoss);
    expect(metricValue(metrics, 'shoal_gc_swarms_removed_total')).toBe(afterLoss);
    expect(metricValue(metrics, 'shoal_gc_duration_seconds_count')).toBe(afterLoss);
    expect(metricValue(metrics, 'shoal_gc_last_success_timestamp_seconds')).toBeGreaterThan(
      Date.now() / 1000 - 5,
    );
    expect(metricValue(metrics, 'shoal_gc_leader')).toBe(0);
    expect(metricValue(metrics, 'shoal_gc_leader_transitions_total')).toBe(2);
    expect(metrics).toContain('process_cpu_user_seconds_total');
  });

  it('counts a failed run as an error and keeps going', async () => {
    let calls = 0;
    const {
      worker: w,
      elector,
      registry,
    } = startWorker(() => {
      calls++;
      return calls === 1
        ? Promise.reject(new GcError('GC_ERR_HTTP', 'HTTP 503', { status: 503 }))
        : Promise.resolve({ peersRemoved: 0, swarmsRemoved: 0 });
    });
    await w.listen();
    elector.set(true);
    await expect
      .poll(async () => metricValue(await registry.metrics(), 'shoal_gc_runs_total{outcome="ok"}'))
      .toBeGreaterThanOrEqual(1);
    const metrics = await registry.metrics();
    expect(metricValue(metrics, 'shoal_gc_runs_total{outcome="error"}')).toBe(1);
  });

  it('never overlaps its own runs, and releases the lease only after the run in flight ends', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let lastEnd = 0;
    const { worker: w, elector } = startWorker(async () => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await sleep(180);
      inFlight--;
      lastEnd = Date.now();
      return { peersRemoved: 0, swarmsRemoved: 0 };
    });
    await w.listen();
    elector.set(true);
    // Close while the second run is in flight: the lease must outlive it.
    await expect.poll(() => lastEnd > 0 && inFlight === 1).toBe(true);
    await w.close();
    worker = undefined;
    expect(maxInFlight).toBe(1);
    expect(elector.stoppedAt).toBeDefined();
    expect(elector.stoppedAt!).toBeGreaterThanOrEqual(lastEnd);
  });

  it('answers /healthz, and /readyz with its election state', async () => {
    const { worker: w } = startWorker(() => Promise.resolve({ peersRemoved: 0, swarmsRemoved: 0 }));
    expect((await w.admin.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    const { adminPort } = await w.listen();
    const base = `http://127.0.0.1:${adminPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      info: { leader: false, election: 'storage-api', identity: 'worker-test', lastRun: null },
    });
  });
});

describe('gc-worker config', () => {
  const env = { STORAGE_API_TOKEN: TOKEN };
  it('needs the storage-api token, without echoing a short one', () => {
    expect(() => loadGcWorkerConfig({ env: {}, argv: [] })).toThrow(/STORAGE_API_TOKEN/);
    expect(() =>
      loadGcWorkerConfig({ env: { STORAGE_API_TOKEN: 'short-secret' }, argv: [] }),
    ).toThrow(
      expect.objectContaining({
        message: expect.not.stringContaining('short-secret') as unknown,
      }) as Error,
    );
  });

  it('refuses a renew deadline not shorter than the lease, naming the variable', () => {
    expect(() =>
      loadGcWorkerConfig({
        env: { ...env, LEASE_DURATION_SECONDS: '10', RENEW_DEADLINE_SECONDS: '10' },
        argv: [],
      }),
    ).toThrow(/RENEW_DEADLINE_SECONDS/);
    expect(() =>
      loadGcWorkerConfig({
        env: { ...env, RENEW_DEADLINE_SECONDS: '2', RETRY_PERIOD_SECONDS: '2' },
        argv: [],
      }),
    ).toThrow(/RETRY_PERIOD_SECONDS/);
  });

  it('has the documented defaults', () => {
    expect(loadGcWorkerConfig({ env, argv: [] })).toMatchObject({
      ADMIN_PORT: 9092,
      GC_INTERVAL_SECONDS: 60,
      LEADER_ELECTION: 'auto',
      LEASE_DURATION_SECONDS: 15,
      RENEW_DEADLINE_SECONDS: 10,
      RETRY_PERIOD_SECONDS: 2,
    });
  });
});
