// The gateway process: the only place that reads the environment, listens
// on signals and exits (docs/conventions.md "Composition"). With one worker
// (GATEWAY_WORKERS=1) the gateway runs in this thread; with more, this thread
// supervises worker threads that share the ports (docs/workers.md), and with
// the memory store makes the one shared-memory store they all attach to.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { isConfigError } from '@shoal/config';
import { isReconfigurable } from '@shoal/storage';
import { exitOnSignals, logListening } from '@shoal/service';
import { buildAdmin, policyAdminFor } from './admin.ts';
import { loadGatewayConfig, type GatewayConfig } from './config.ts';
import { buildGateway, type ListeningPorts } from './gateway.ts';
import { createGatewayLogger } from './logger.ts';
import {
  createSharedStorage,
  createStorage,
  embeddedStoreConfig,
  type StorageHandle,
} from './storage.ts';
import { startSwarmStats } from './swarm-stats.ts';
import { loadUdpBatch } from './udp-batch.ts';
import { openWsPlace, openWsThreadHub } from './websocket/place.ts';
import { mountWorkerAdmin } from './workers/admin-routes.ts';
import { usableCores } from './workers/cores.ts';
import { sharedStoreFit } from './workers/shared-store.ts';
import { createSupervisor, type SharedStore } from './workers/supervisor.ts';

function loadOrExit(): GatewayConfig {
  try {
    return loadGatewayConfig({ env: process.env, argv: process.argv.slice(2) });
  } catch (err) {
    if (!isConfigError(err)) throw err;
    process.stderr.write(`announce-gateway: ${err.message}\n`);
    process.exit(1);
  }
}

/** Addresses a user can paste into a client: wildcards become loopback. */
function announceHosts(host: string): string[] {
  if (host === '::') return ['127.0.0.1', '[::1]'];
  if (host === '0.0.0.0') return ['127.0.0.1'];
  return [isIP(host) === 6 ? `[${host}]` : host];
}

function udpSyscalls(config: GatewayConfig): 'batched' | 'dgram' {
  if (config.UDP_BATCH_SYSCALLS === 'off') return 'dgram';
  return loadUdpBatch().addon === undefined ? 'dgram' : 'batched';
}

function announceReady(
  config: GatewayConfig,
  logger: Logger,
  ports: ListeningPorts,
  extra: Record<string, unknown>,
): void {
  // A private tracker (docs/policy.md) is announced to at <route>/<passkey>.
  const firstRoute = config.ANNOUNCE_ROUTES[0] ?? '/announce';
  const route = !config.PASSKEY_REQUIRED
    ? firstRoute
    : `${firstRoute.endsWith('/') ? firstRoute : `${firstRoute}/`}<passkey>`;
  const urls = announceHosts(config.HOST).flatMap((host) => [
    ...(ports.httpPort === undefined ? [] : [`http://${host}:${ports.httpPort}${route}`]),
    ...(ports.udpPort === undefined ? [] : [`udp://${host}:${ports.udpPort}${route}`]),
    // docs/webtorrent.md: browsers (WebTorrent) announce on the same port over WebSocket.
    ...(ports.httpPort === undefined || !config.WS_ENABLED
      ? []
      : [`ws://${host}:${ports.httpPort}${route}`]),
    ...(ports.httpsPort === undefined ? [] : [`https://${host}:${ports.httpsPort}${route}`]),
  ]);
  logListening(logger, {
    http: ports.httpPort,
    udp: ports.udpPort,
    // docs/udp-batch.md: recvmmsg/sendmmsg through the addon, or node:dgram.
    ...(ports.udpPort === undefined ? {} : { udpSyscalls: udpSyscalls(config) }),
    https: ports.httpsPort,
    admin: ports.adminPort,
    host: config.HOST,
    ...extra,
    announce: urls,
  });
  process.stderr.write(
    `Shoal tracker ready. Announce URLs:\n${urls.map((u) => `  ${u}\n`).join('')}`,
  );
}

/**
 * SIGHUP re-reads the config file (the environment is fixed for the process's
 * life). What it applies without a restart: a Redis ring's shard list, moving
 * only the swarms of the shards that changed. A config that fails validation
 * is refused and the running one kept. `apply` applies the store part.
 */
function reloadOnSighup(
  logger: Logger,
  reconfigurable: boolean,
  apply: (next: GatewayConfig) => Promise<void>,
): void {
  process.on('SIGHUP', () => {
    let next: GatewayConfig;
    try {
      next = loadGatewayConfig({ env: process.env, argv: process.argv.slice(2) });
    } catch (err) {
      logger.error({ err }, 'config reload refused, keeping the running config');
      return;
    }
    if (embeddedStoreConfig(next) === undefined || !reconfigurable) {
      logger.warn(
        { storage: next.STORAGE_DRIVER },
        'config reload: nothing this store can apply without a restart',
      );
      return;
    }
    void apply(next);
  });
}

async function reconfigureStore(
  storage: StorageHandle,
  next: GatewayConfig,
  logger: Logger,
): Promise<void> {
  const store = storage.store;
  const nextStore = embeddedStoreConfig(next);
  if (nextStore === undefined || !isReconfigurable(store)) return;
  try {
    logger.info(await store.reconfigure(nextStore), 'redis reconfigured');
  } catch (err) {
    logger.error({ err }, 'redis reconfigure failed, keeping the running shards');
  }
}

/** One gateway in this thread: GATEWAY_WORKERS=1 (the memory store: the memory driver, docs/workers.md). */
async function runInThread(config: GatewayConfig, logger: Logger): Promise<void> {
  const registry = new Registry();
  const storage = await createStorage(config, logger, registry);
  const wsPlace = openWsPlace(config, logger, storage.store, registry);
  const gateway = buildGateway({
    config,
    logger,
    registry,
    storage: storage.store,
    ...(wsPlace === undefined ? {} : { webSocket: wsPlace }),
  });
  const stats = startSwarmStats({
    storage: storage.store,
    registry,
    intervalSeconds: config.STATS_INTERVAL_SECONDS,
    logger,
  });
  let ports;
  try {
    ports = await gateway.listen();
  } catch (err) {
    logger.fatal({ err }, 'cannot listen');
    await gateway.close().catch(() => undefined);
    await wsPlace?.close().catch(() => undefined);
    await storage.close().catch(() => undefined);
    process.exit(1);
  }
  announceReady(config, logger, ports, { storage: storage.store.driver, workers: 1 });
  exitOnSignals(logger, config.SHUTDOWN_GRACE_SECONDS, async () => {
    stats.close();
    await gateway.close();
    await wsPlace?.close();
    await storage.close();
  });
  reloadOnSighup(logger, isReconfigurable(storage.store), (next) =>
    reconfigureStore(storage, next, logger),
  );
}

/**
 * A supervisor in this thread, `workers` gateways in worker threads
 * (docs/workers.md). `shared`: the memory store, made here and attached to
 * by every worker.
 */
async function runWorkers(
  config: GatewayConfig,
  logger: Logger,
  workers: number,
  shared: SharedStore | undefined,
): Promise<void> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let secret: Buffer;
  if (config.UDP_CONNECTION_ID_SECRET !== undefined) {
    secret = Buffer.from(config.UDP_CONNECTION_ID_SECRET, 'hex');
  } else {
    secret = randomBytes(32);
    if (config.UDP_ENABLED)
      logger.warn(
        "UDP_CONNECTION_ID_SECRET is not set: using a random per-process secret (shared by this process's workers), so replicas will not accept each other's UDP connection ids",
      );
  }
  // The main thread's own store connection, for the admin API and the swarm
  // gauges; the workers each open theirs. storage-api has both for remote.
  // The shared-memory store: this thread's attachment, which sweeps it.
  const storage =
    shared !== undefined
      ? shared
      : embeddedStoreConfig(config) === undefined
        ? undefined
        : await createStorage(config, logger, registry);
  const stats =
    storage === undefined
      ? undefined
      : startSwarmStats({
          storage: storage.store,
          registry,
          intervalSeconds: config.STATS_INTERVAL_SECONDS,
          logger,
        });
  const wsHub = openWsThreadHub(config);
  const supervisor = createSupervisor({
    config,
    logger,
    registry,
    workers,
    secret,
    ...(shared === undefined ? {} : { shared }),
    ...(wsHub === undefined ? {} : { wsHub }),
  });
  const aggregated = Object.assign(new Registry(), {
    metrics: async () => (await supervisor.metrics()).text,
  });
  const admin = buildAdmin({
    registry: aggregated,
    ready: () => supervisor.readiness(),
    ...(storage === undefined
      ? {}
      : policyAdminFor({
          config,
          storage: storage.store,
          clock: Date.now,
          logger,
          changed: () => supervisor.policyChanged(),
        })),
  });
  if (config.ADMIN_API_TOKEN !== undefined)
    mountWorkerAdmin(admin.app, config.ADMIN_API_TOKEN, supervisor);

  const close = async (): Promise<void> => {
    admin.stopping();
    await supervisor.close();
    await wsHub?.close();
    stats?.close();
    await admin.close();
    await storage?.close();
  };
  let ports: ListeningPorts;
  try {
    const tracker = await supervisor.start();
    ports = { ...tracker, adminPort: await admin.listen(config.ADMIN_HOST, config.ADMIN_PORT) };
  } catch (err) {
    logger.fatal({ err }, 'cannot listen');
    await close().catch(() => undefined);
    process.exit(1);
  }
  admin.serving();
  announceReady(config, logger, ports, {
    storage: storage?.store.driver ?? config.STORAGE_DRIVER,
    workers,
  });
  exitOnSignals(logger, config.SHUTDOWN_GRACE_SECONDS, close);
  reloadOnSighup(logger, storage !== undefined && isReconfigurable(storage.store), async (next) => {
    const nextStore = embeddedStoreConfig(next);
    if (nextStore !== undefined) supervisor.reconfigure(next, nextStore);
    if (storage !== undefined) await reconfigureStore(storage, next, logger);
  });
}

/** The shared-memory store for workers on the memory driver; undefined: run one worker instead. */
function openShared(config: GatewayConfig, logger: Logger): SharedStore | undefined {
  let shared;
  try {
    shared = createSharedStorage(config, logger);
  } catch (err) {
    logger.fatal({ err }, 'cannot create the shared-memory store');
    process.exit(1);
  }
  const fit = sharedStoreFit(config, shared.store);
  for (const warning of fit.warnings) logger.warn(warning);
  if (fit.oneWorker === undefined) return shared;
  logger.warn({ GATEWAY_WORKERS: config.GATEWAY_WORKERS }, fit.oneWorker);
  void shared.close();
  return undefined;
}

const config = loadOrExit();
const logger = createGatewayLogger(config);
const workers = config.GATEWAY_WORKERS ?? usableCores();
const shared =
  workers > 1 && config.STORAGE_DRIVER === 'memory' ? openShared(config, logger) : undefined;
if (workers === 1 || (config.STORAGE_DRIVER === 'memory' && shared === undefined))
  await runInThread(config, logger);
else await runWorkers(config, logger, workers, shared);
