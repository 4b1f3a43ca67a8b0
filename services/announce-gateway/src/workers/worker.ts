// One worker thread of the gateway (docs/workers.md): a whole gateway (HTTP,
// HTTPS, UDP, its own store connections and batcher) on the process's ports
// through SO_REUSEPORT, without an admin port: the main thread serves that and
// asks each worker for its metrics and readiness.
import { parentPort, workerData } from 'node:worker_threads';
import { Registry } from 'prom-client';
import { isReconfigurable } from '@shoal/storage';
import { buildGateway } from '../gateway.ts';
import { createGatewayLogger } from '../logger.ts';
import { attachSharedStorage, createStorage } from '../storage.ts';
import { openWsPlace } from '../websocket/place.ts';
import { threadWsPlace } from '../websocket/threads.ts';
import type { FromWorker, ToWorker, WorkerData } from './protocol.ts';

const port = parentPort;
if (port === null) throw new Error('worker.ts runs as a worker thread of main.ts');
const data = workerData as WorkerData;
const config = Object.freeze(data.config);
const logger = createGatewayLogger(config, { worker: data.index });
const registry = new Registry();
const storage =
  data.sharedStore === undefined
    ? await createStorage(config, logger, registry)
    : attachSharedStorage(data.sharedStore, config);
const wsPlace =
  data.wsPort === undefined
    ? openWsPlace(config, logger, storage.store, registry)
    : threadWsPlace(data.wsPort);
const gateway = buildGateway({
  config,
  logger,
  registry,
  storage: storage.store,
  ...(wsPlace === undefined ? {} : { webSocket: wsPlace }),
  connectionIdSecret: Buffer.from(data.secret),
  processMetrics: false,
});
const post = (message: FromWorker): void => port.postMessage(message);

// A bind failure is thrown: the worker exits with an error the main thread reports.
const ports = await gateway.listenTracker({
  port: data.port,
  httpsPort: data.httpsPort,
  reusePort: true,
});
post({ type: 'listening', ports });

let draining = false;
port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'metrics':
      void registry
        .getMetricsAsJSON()
        .then((metrics) => post({ type: 'metrics', id: message.id, metrics }));
      return;
    case 'ready':
      void gateway
        .readiness()
        .then((readiness) => post({ type: 'ready', id: message.id, readiness }));
      return;
    case 'policy-changed':
      void gateway.policy?.refresh();
      return;
    case 'reconfigure': {
      const store = storage.store;
      if (!isReconfigurable(store)) return;
      store.reconfigure(message.store).then(
        (result) => logger.info(result, 'redis reconfigured'),
        (err: unknown) =>
          logger.error({ err }, 'redis reconfigure failed, keeping the running shards'),
      );
      return;
    }
    case 'drain':
      if (draining) return;
      draining = true;
      void (async () => {
        await gateway.close();
        await wsPlace?.close();
        await storage.close();
        // The main thread logs "worker drained" on this exit code (a log line
        // written just before process.exit() may not reach stdout).
        process.exit(0);
      })();
      return;
  }
});
