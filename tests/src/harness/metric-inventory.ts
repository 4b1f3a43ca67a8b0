// What the services really register: each service is built in-process, as
// its main.ts builds it, on a fresh prom-client Registry, and the registry is
// listed (name, type, label names, whether a series exists yet). The
// catalogue test compares this with @shoal/monitoring's catalogue. It lives
// here, with the tests that start services, so that no package depends on a
// service (docs/testing.md).
import { pino } from 'pino';
import { Registry } from 'prom-client';
import {
  buildGateway,
  createStorage,
  createWorkerMetrics,
  loadGatewayConfig,
  startSwarmStats,
  openWsPlace,
} from '@shoal/announce-gateway';
import { buildGcWorker, createNoElection, loadGcWorkerConfig } from '@shoal/gc-worker';
import { buildStorageApi, loadStorageApiConfig } from '@shoal/storage-api';
import { LOOPBACK_ENV } from '@shoal/testing/launcher';
import type { Service } from '@shoal/monitoring';

export interface RegisteredMetric {
  name: string;
  type: string;
  labels: string[];
  /** At least one sample right after build: the metric is visible before any traffic. */
  hasSeries: boolean;
}

export interface ServiceInventory {
  service: Service;
  /** Which build of the service (the gateway registers more with STORAGE_DRIVER=remote). */
  variant: string;
  metrics: RegisteredMetric[];
}

const TOKEN = 'inventory-token-0123456789';

interface MetricLike {
  labelNames?: unknown;
  get(): Promise<{
    name: string;
    type: string;
    values: Array<{ labels: Record<string, unknown> }>;
  }>;
}

export async function listRegistry(registry: Registry): Promise<RegisteredMetric[]> {
  const out: RegisteredMetric[] = [];
  for (const metric of registry.getMetricsAsArray() as unknown as MetricLike[]) {
    const data = await metric.get();
    const labels = new Set<string>(
      Array.isArray(metric.labelNames) ? (metric.labelNames as string[]) : [],
    );
    // FastHistogram (gateway) has no labelNames: its series carry them.
    for (const v of data.values) for (const key of Object.keys(v.labels)) labels.add(key);
    labels.delete('le');
    out.push({
      name: data.name,
      type: String(data.type),
      labels: [...labels].sort(),
      hasSeries: data.values.length > 0,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

async function gatewayInventory(
  variant: string,
  env: Record<string, string>,
): Promise<ServiceInventory> {
  const config = loadGatewayConfig({ env: { ...LOOPBACK_ENV, ...env }, argv: [] });
  const logger = pino({ level: 'silent' });
  const registry = new Registry();
  const storage = await createStorage(config, logger, registry);
  // main.ts adds the WebSocket peers' place (the split topology's relay stream; nothing connects before listen).
  const place = openWsPlace(config, logger, storage.store, registry);
  const gateway = buildGateway({
    config,
    logger,
    registry,
    storage: storage.store,
    ...(place === undefined ? {} : { webSocket: place }),
  });
  // main.ts adds the swarm gauges of an embedded store.
  const stats = startSwarmStats({ storage: storage.store, registry, intervalSeconds: 60, logger });
  try {
    return { service: 'gateway', variant, metrics: await listRegistry(registry) };
  } finally {
    stats.close();
    await gateway.close();
    await place?.close();
    await storage.close();
  }
}

/** The main thread of a gateway with workers (docs/workers.md): its own series beside the workers'. */
async function gatewayWorkersInventory(): Promise<ServiceInventory> {
  const registry = new Registry();
  createWorkerMetrics(registry, 2);
  return { service: 'gateway', variant: 'workers', metrics: await listRegistry(registry) };
}

async function storageApiInventory(): Promise<ServiceInventory> {
  const config = loadStorageApiConfig({
    env: {
      ...LOOPBACK_ENV,
      STORAGE_API_TOKEN: TOKEN,
      PEER_STORE_DRIVER: 'memory',
      DATA_STORE_DRIVER: 'memory',
    },
    argv: [],
  });
  const registry = new Registry();
  // No stores given: storage-api opens one in-process memory store and closes it with the app.
  const app = buildStorageApi({ config, logger: pino({ level: 'silent' }), registry });
  try {
    return { service: 'storage-api', variant: 'memory', metrics: await listRegistry(registry) };
  } finally {
    await app.close();
  }
}

async function gcWorkerInventory(): Promise<ServiceInventory> {
  const config = loadGcWorkerConfig({
    env: {
      ...LOOPBACK_ENV,
      STORAGE_API_URL: 'http://127.0.0.1:1',
      STORAGE_API_TOKEN: TOKEN,
      LEADER_ELECTION: 'none',
    },
    argv: [],
  });
  const registry = new Registry();
  const app = buildGcWorker({
    config,
    logger: pino({ level: 'silent' }),
    registry,
    elector: createNoElection('inventory'),
    // Never called: the worker collects only after listen().
    gc: () => Promise.reject(new Error('the inventory never collects')),
  });
  try {
    return { service: 'gc-worker', variant: 'default', metrics: await listRegistry(registry) };
  } finally {
    await app.close();
  }
}

/** Every service build whose metrics the catalogue must cover. Nothing listens; nothing is contacted. */
export async function serviceInventories(): Promise<ServiceInventory[]> {
  return [
    await gatewayInventory('memory', { STORAGE_DRIVER: 'memory' }),
    // Port 1 is never dialled: the remote store connects on the first announce.
    await gatewayInventory('remote', {
      STORAGE_DRIVER: 'remote',
      STORAGE_API_URL: 'http://127.0.0.1:1',
      STORAGE_API_TOKEN: TOKEN,
    }),
    await gatewayWorkersInventory(),
    await storageApiInventory(),
    await gcWorkerInventory(),
  ];
}
