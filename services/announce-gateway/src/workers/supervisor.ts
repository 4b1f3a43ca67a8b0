// The main thread of a gateway with workers (docs/workers.md): starts
// GATEWAY_WORKERS worker threads on the same ports (SO_REUSEPORT), replaces
// one that exits unasked, answers for all of them on the admin port (one
// /metrics, one /readyz) and drains them all on shutdown. With the memory
// store, every worker attaches to one shared-memory store made here.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Readiness } from '@shoal/service/admin-server';
import type { BackendConfig, SharedMemoryHandle, SharedMemoryStore } from '@shoal/storage';
import type { GatewayConfig } from '../config.ts';
import type { TrackerPorts } from '../gateway.ts';
import type { WsThreadHub } from '../websocket/threads.ts';
import {
  aggregateMetrics,
  createWorkerMetrics,
  mergeCounters,
  countersOf,
  type WorkerMetrics,
} from './metrics.ts';
import { checkPortsFree, type PortsToClaim } from './ports.ts';
import type { FromWorker, MetricsJson, ToWorker, WorkerData } from './protocol.ts';

/** The memory store with workers: its handle goes to every worker, this thread's attachment watches them. */
export interface SharedStore {
  handle: SharedMemoryHandle;
  store: SharedMemoryStore;
  close(): Promise<void>;
}

export interface SupervisorDeps {
  config: GatewayConfig;
  logger: Logger;
  /** The main thread's registry: process metrics, swarm gauges, the workers' series. */
  registry: Registry;
  workers: number;
  /** The UDP connection id secret every worker uses. */
  secret: Buffer;
  /** The shared-memory store every worker attaches to (STORAGE_DRIVER=memory). */
  shared?: SharedStore;
  /** The WebSocket swarms every worker reaches over its own port, when no Redis shares them. */
  wsHub?: WsThreadHub;
}

export interface WorkerInfo {
  index: number;
  /** worker_threads' threadId of the current thread in this slot; undefined while it is replaced. */
  threadId: number | undefined;
  state: 'starting' | 'serving' | 'replacing' | 'stopped';
  /** Times this slot's worker was replaced. */
  restarts: number;
}

export interface Supervisor {
  /** Starts every worker; resolves with the ports once all listen, rejects if one cannot. */
  start(): Promise<TrackerPorts>;
  list(): WorkerInfo[];
  /** Stops worker `index` at once, as a crash would; it is replaced. false: no such worker. */
  terminate(index: number): boolean;
  /** Tells every worker the policy data changed. */
  policyChanged(): void;
  /** SIGHUP: workers apply `store` to their stores; workers started later get `config`. */
  reconfigure(config: GatewayConfig, store: BackendConfig): void;
  /** Prometheus text over the main registry and every worker's. */
  metrics(): Promise<{ text: string; contentType: string }>;
  readiness(): Promise<Readiness>;
  /** Drains every worker (each stops accepting and finishes what is in flight) and waits for them to exit. */
  close(): Promise<void>;
}

/** How long the main thread waits for a worker's metrics or readiness before leaving it out. */
const ASK_TIMEOUT_MS = 10_000;
/** A worker that exits sooner than this after it started is restarted with a growing delay. */
const QUICK_EXIT_MS = 10_000;
const RESTART_DELAY_MS = 500;
const RESTART_DELAY_MAX_MS = 30_000;

interface Slot {
  index: number;
  worker: Worker | undefined;
  state: WorkerInfo['state'];
  restarts: number;
  quickExits: number;
  startedAt: number;
  timer: NodeJS.Timeout | undefined;
  /** What it reported at the last scrape: kept as retired counters if it dies. */
  lastMetrics: MetricsJson | undefined;
  exited: Promise<void>;
}

type Pending = { slot: Slot; resolve: (message: FromWorker | undefined) => void };

const READINESS_RANK = { ready: 0, degraded: 1, 'not ready': 2 } as const;

export function createSupervisor(deps: SupervisorDeps): Supervisor {
  const { logger, registry } = deps;
  const log = logger.child({ module: 'workers' });
  const workerMetrics: WorkerMetrics = createWorkerMetrics(registry, deps.workers);
  let config = deps.config;
  let ports: { port: number; httpsPort: number } | undefined;
  let draining = false;
  let retired: MetricsJson = [];
  let nextId = 0;
  const pending = new Map<number, Pending>();
  const slots: Slot[] = Array.from({ length: deps.workers }, (_, index) => ({
    index,
    worker: undefined,
    state: 'starting',
    restarts: 0,
    quickExits: 0,
    startedAt: 0,
    timer: undefined,
    lastMetrics: undefined,
    exited: Promise.resolve(),
  }));

  const servingCount = (): number => slots.filter((s) => s.state === 'serving').length;

  function workerData(slot: Slot): WorkerData {
    // The main thread serves the admin API; a worker mounts none.
    const { ADMIN_API_TOKEN: _token, ...rest } = config;
    return {
      index: slot.index,
      config: rest,
      secret: new Uint8Array(deps.secret),
      port: ports?.port ?? config.PORT,
      httpsPort: ports?.httpsPort ?? config.HTTPS_PORT,
      ...(deps.shared === undefined ? {} : { sharedStore: deps.shared.handle }),
    };
  }

  /** Starts the slot's worker; resolves with its ports once it listens, rejects if it exits first. */
  function spawn(slot: Slot): Promise<TrackerPorts> {
    const wsPort = deps.wsHub?.connect();
    const worker = new Worker(new URL('./worker.ts', import.meta.url), {
      workerData: { ...workerData(slot), ...(wsPort === undefined ? {} : { wsPort }) },
      transferList: wsPort === undefined ? [] : [wsPort],
      // The config file's path, for a worker that reads argv (the config is passed whole).
      argv: process.argv.slice(2),
    });
    // worker.threadId reads -1 once the thread has exited.
    const threadId = worker.threadId;
    slot.worker = worker;
    slot.state = 'starting';
    slot.startedAt = Date.now();
    let listening: (ports: TrackerPorts) => void = () => undefined;
    let failed: (err: Error) => void = () => undefined;
    const started = new Promise<TrackerPorts>((resolve, reject) => {
      listening = resolve;
      failed = reject;
    });
    let lastError: Error | undefined;
    worker.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'listening':
          slot.state = 'serving';
          workerMetrics.serving(servingCount());
          log.info({ worker: slot.index, threadId: worker.threadId }, 'worker listening');
          listening(message.ports);
          return;
        case 'metrics':
        case 'ready': {
          const p = pending.get(message.id);
          pending.delete(message.id);
          p?.resolve(message);
          return;
        }
      }
    });
    worker.on('error', (err: Error) => {
      lastError = err;
      log.error({ err, worker: slot.index }, 'worker failed');
    });
    slot.exited = new Promise<void>((resolve) => {
      worker.once('exit', (code) => {
        // First, before anything can start a replacement: a shard lock the
        // thread held when it died is taken over by the next thread that
        // needs it, instead of blocking that shard (docs/storage.md
        // "Shared-memory store").
        const released = deps.shared?.store.threadExited(threadId) ?? 0;
        if (released > 0)
          log.info(
            { worker: slot.index, threadId },
            'shared-memory store: what the exited worker held is free to take over',
          );
        const wasServing = slot.state === 'serving';
        slot.worker = undefined;
        for (const [id, p] of pending)
          if (p.slot === slot) {
            pending.delete(id);
            p.resolve(undefined);
          }
        failed(lastError ?? new Error(`worker ${slot.index} exited with code ${code}`));
        if (draining) {
          if (code === 0) log.info({ worker: slot.index }, 'worker drained');
          else log.error({ worker: slot.index, code }, 'worker exited while draining');
          slot.state = 'stopped';
          workerMetrics.serving(servingCount());
          resolve();
          return;
        }
        // Unasked: what it counted stays in the totals, and another takes its place.
        if (wasServing && slot.lastMetrics !== undefined) retire(slot.lastMetrics);
        slot.lastMetrics = undefined;
        slot.state = 'replacing';
        workerMetrics.serving(servingCount());
        workerMetrics.restarted();
        slot.restarts++;
        const quick = Date.now() - slot.startedAt < QUICK_EXIT_MS;
        slot.quickExits = quick ? slot.quickExits + 1 : 0;
        const delayMs =
          slot.quickExits === 0
            ? 0
            : Math.min(RESTART_DELAY_MAX_MS, RESTART_DELAY_MS * 2 ** (slot.quickExits - 1));
        log.error(
          { worker: slot.index, code, restartInMs: delayMs },
          'worker exited, replacing it',
        );
        slot.timer = setTimeout(() => {
          slot.timer = undefined;
          if (draining) return;
          // A replacement that cannot listen exits, and is replaced in turn.
          spawn(slot).catch(() => undefined);
        }, delayMs);
        resolve();
      });
    });
    return started;
  }

  function retire(metrics: MetricsJson): void {
    const counters = countersOf(metrics);
    void mergeCounters([retired, counters]).then((merged) => (retired = merged));
  }

  function ask(slot: Slot, message: ToWorker & { id: number }): Promise<FromWorker | undefined> {
    const worker = slot.worker;
    if (worker === undefined || slot.state !== 'serving') return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        pending.delete(message.id);
        resolve(undefined);
      }, ASK_TIMEOUT_MS);
      timer.unref();
      pending.set(message.id, {
        slot,
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
      });
      worker.postMessage(message);
    });
  }

  function broadcast(message: ToWorker): void {
    for (const slot of slots) slot.worker?.postMessage(message);
  }

  return {
    async start() {
      const [first, ...rest] = slots;
      if (first === undefined) throw new Error('GATEWAY_WORKERS must be at least 1');
      await checkPortsFree(fixedPorts(config));
      const fixed =
        config.PORT !== 0 && (config.TLS_CERT_FILE === undefined || config.HTTPS_PORT !== 0);
      if (fixed) {
        const [got] = await Promise.all(slots.map((slot) => spawn(slot)));
        ports = { port: config.PORT, httpsPort: config.HTTPS_PORT };
        return got!;
      }
      // PORT=0: the first worker picks free ports, the others join it there.
      const got = await spawn(first);
      ports = {
        port: got.udpPort ?? got.httpPort ?? config.PORT,
        httpsPort: got.httpsPort ?? config.HTTPS_PORT,
      };
      await Promise.all(rest.map((slot) => spawn(slot)));
      return got;
    },
    list: () =>
      slots.map((s) => ({
        index: s.index,
        threadId: s.worker?.threadId,
        state: s.state,
        restarts: s.restarts,
      })),
    terminate(index) {
      const worker = slots[index]?.worker;
      if (worker === undefined) return false;
      void worker.terminate();
      return true;
    },
    policyChanged: () => broadcast({ type: 'policy-changed' }),
    reconfigure(next, store) {
      config = next;
      broadcast({ type: 'reconfigure', store });
    },
    async metrics() {
      const answers = await Promise.all(
        slots.map((slot) => ask(slot, { type: 'metrics', id: nextId++ })),
      );
      const byWorker = new Map<number, MetricsJson>();
      answers.forEach((answer, index) => {
        const slot = slots[index];
        if (answer?.type !== 'metrics' || slot === undefined) return;
        slot.lastMetrics = answer.metrics;
        byWorker.set(index, answer.metrics);
      });
      workerMetrics.perWorker(byWorker);
      const main = (await registry.getMetricsAsJSON()) as MetricsJson;
      return aggregateMetrics([...main, ...retired], [...byWorker.values()]);
    },
    async readiness() {
      const answers = await Promise.all(
        slots.map((slot) => ask(slot, { type: 'ready', id: nextId++ })),
      );
      const info = { workers: { configured: slots.length, serving: servingCount() } };
      let worst: Readiness | undefined;
      for (const answer of answers) {
        if (answer?.type !== 'ready') continue;
        const r = answer.readiness;
        if (worst === undefined || READINESS_RANK[r.status] > READINESS_RANK[worst.status])
          worst = r;
      }
      if (worst === undefined)
        return {
          status: 'not ready',
          code: 'SERVICE_ERR_NOT_LISTENING',
          message: 'no worker is serving',
          info,
        };
      return { ...worst, info: { ...worst.info, ...info } };
    },
    async close() {
      draining = true;
      for (const slot of slots) {
        clearTimeout(slot.timer);
        if (slot.worker === undefined) slot.state = 'stopped';
      }
      broadcast({ type: 'drain' });
      await Promise.all(slots.map((s) => s.exited));
    },
  };
}

/** The fixed (non-zero) ports the workers will share; port 0 is picked free by the first worker. */
function fixedPorts(config: GatewayConfig): PortsToClaim {
  const port = config.PORT === 0 ? [] : [config.PORT];
  const https =
    config.TLS_CERT_FILE === undefined || config.HTTPS_PORT === 0 ? [] : [config.HTTPS_PORT];
  return {
    host: config.HOST,
    udp: config.UDP_ENABLED ? port : [],
    tcp: [...(config.HTTP_ENABLED ? port : []), ...https],
  };
}
