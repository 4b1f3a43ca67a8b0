import type { MessagePort } from 'node:worker_threads';
// The messages between the gateway's main thread and its workers
// (docs/workers.md). Structured clones only: plain objects, no functions.
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { BackendConfig, SharedMemoryHandle } from '@shoal/storage';
import type { Readiness } from '@shoal/service/admin-server';
import type { GatewayConfig } from '../config.ts';
import type { TrackerPorts } from '../gateway.ts';

/** What a worker starts from (worker_threads workerData). */
export interface WorkerData {
  index: number;
  /** The config the main thread validated, without ADMIN_API_TOKEN (the main thread serves the admin port). */
  config: GatewayConfig;
  /** The UDP connection id secret every worker shares. */
  secret: Uint8Array;
  /** Where to bind; the first worker binds config.PORT (0: a free port), the others where it did. */
  port: number;
  httpsPort: number;
  /** STORAGE_DRIVER=memory: the main thread's shared-memory store, attached to instead of opening a store. */
  sharedStore?: SharedMemoryHandle;
  /** The main thread's WebSocket swarms and relay (docs/webtorrent.md "Worker threads"); transferred. */
  wsPort?: MessagePort;
}

export type MetricsJson = Array<MetricObjectWithValues<MetricValue<string>>>;

export type ToWorker =
  | { type: 'metrics'; id: number }
  | { type: 'ready'; id: number }
  /** The policy data changed through the admin API: reload the snapshot now. */
  | { type: 'policy-changed' }
  /** SIGHUP: apply the store settings a running store can take (a Redis ring's shards). */
  | { type: 'reconfigure'; store: BackendConfig }
  /** Stop accepting, finish what is in flight, close the store, exit. */
  | { type: 'drain' };

export type FromWorker =
  | { type: 'listening'; ports: TrackerPorts }
  | { type: 'metrics'; id: number; metrics: MetricsJson }
  | { type: 'ready'; id: number; readiness: Readiness };
