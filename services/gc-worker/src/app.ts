// gc-worker composition root (docs/conventions.md "Composition"): config, logger,
// registry, the leader elector and the GC call arrive as arguments; nothing
// runs until listen(). Every GC_INTERVAL_SECONDS the worker asks storage-api
// to collect (POST /v1/gc) if, and only if, it leads; a worker that becomes
// leader collects at once, so a handover does not wait a whole interval.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { buildAdminServer } from '@shoal/service/admin-server';
import type { GcWorkerConfig } from './config.ts';
import type { LeaderElector } from './election/types.ts';
import { isGcError } from './errors.ts';
import { createGcMetrics } from './metrics.ts';
import type { GcRunResult } from './storage-api-client.ts';

export interface GcWorkerDeps {
  config: GcWorkerConfig;
  logger: Logger;
  registry: Registry;
  elector: LeaderElector;
  /** One GC run (storage-api's POST /v1/gc); aborted only when shutdown outlasts half its grace period. */
  gc: (signal: AbortSignal) => Promise<GcRunResult>;
}

export interface GcWorker {
  admin: FastifyInstance;
  /** Starts the admin server, the election and the GC schedule. */
  listen(): Promise<{ adminPort: number }>;
  /** Stops the schedule, waits for a run in flight, releases the lease, closes the admin server. */
  close(): Promise<void>;
}

export function buildGcWorker({ config, logger, registry, elector, gc }: GcWorkerDeps): GcWorker {
  const log = logger.child({ module: 'gc-worker' });
  const metrics = createGcMetrics(registry);
  let closing = false;
  let ticker: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let runAbort: AbortController | undefined;
  let lastRun: { at: number; ok: boolean } | undefined;

  async function runOnce(): Promise<void> {
    const abort = new AbortController();
    runAbort = abort;
    const started = process.hrtime.bigint();
    try {
      const result = await gc(abort.signal);
      metrics.runs.labels('ok').inc();
      metrics.peersRemoved.inc(result.peersRemoved);
      metrics.swarmsRemoved.inc(result.swarmsRemoved);
      metrics.lastSuccess.set(Date.now() / 1000);
      lastRun = { at: Date.now(), ok: true };
      log.info(result, 'gc run done');
    } catch (err) {
      metrics.runs.labels('error').inc();
      lastRun = { at: Date.now(), ok: false };
      log.error({ err, code: isGcError(err) ? err.code : undefined }, 'gc run failed');
    } finally {
      metrics.duration.observe(Number(process.hrtime.bigint() - started) / 1e9);
      runAbort = undefined;
    }
  }

  const tick = (): void => {
    if (closing) return;
    if (!elector.isLeader()) {
      metrics.runs.labels('skipped_not_leader').inc();
      return;
    }
    // A slow run is not overlapped by the next tick of the same worker.
    if (running !== undefined) return;
    running = runOnce().finally(() => {
      running = undefined;
    });
  };

  elector.onChange((leading) => {
    metrics.leader.set(leading ? 1 : 0);
    metrics.leaderTransitions.inc();
    // A run in flight when the lease is lost is left to finish: aborting the
    // request would not stop storage-api, only hide the overlap.
    if (leading) tick();
  });
  metrics.leader.set(0);

  // A follower is ready too: it is healthy and waiting for the lease.
  const admin = buildAdminServer({
    registry,
    ready: () =>
      Promise.resolve({
        status: 'ready',
        info: {
          leader: elector.isLeader(),
          election: elector.mode,
          identity: elector.identity,
          lastRun:
            lastRun === undefined
              ? null
              : { at: new Date(lastRun.at).toISOString(), ok: lastRun.ok },
        },
      }),
  });

  return {
    admin: admin.app,
    async listen() {
      const adminPort = await admin.listen(config.ADMIN_HOST, config.ADMIN_PORT);
      admin.serving();
      elector.start();
      ticker = setInterval(tick, config.GC_INTERVAL_SECONDS * 1000);
      log.debug(
        { admin: adminPort, election: elector.mode, identity: elector.identity },
        'admin listening',
      );
      return { adminPort };
    },
    async close() {
      if (closing) return;
      closing = true;
      admin.stopping();
      clearInterval(ticker);
      if (running !== undefined) {
        let timer: NodeJS.Timeout | undefined;
        const patience = new Promise<void>((r) => {
          timer = setTimeout(r, (config.SHUTDOWN_GRACE_SECONDS * 1000) / 2);
        });
        await Promise.race([running, patience]);
        clearTimeout(timer);
        runAbort?.abort(new Error('shutting down'));
        await running;
      }
      // Released only after the run ended, so the next leader never overlaps it.
      await elector.stop();
      await admin.close();
    },
  };
}
