// The gateway process: the only place that reads the environment, listens
// on signals and exits (docs/conventions.md "Composition").
import { isIP } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { isConfigError } from '@shoal/config';
import { isReconfigurable } from '@shoal/storage';
import { loadGatewayConfig, type GatewayConfig } from './config.ts';
import { buildGateway } from './gateway.ts';
import { createStorage, embeddedStoreConfig } from './storage.ts';
import { exitOnSignals } from '@shoal/service';

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

const config = loadOrExit();
const logger = pino({
  level: config.LOG_LEVEL,
  base: { service: 'announce-gateway', pid: process.pid },
  redact: ['config.UDP_CONNECTION_ID_SECRET', 'config.STORAGE_API_TOKEN', 'config.ADMIN_API_TOKEN'],
});
const registry = new Registry();
const storage = await createStorage(config, logger, registry);
const gateway = buildGateway({ config, logger, registry, storage: storage.store });

let ports;
try {
  ports = await gateway.listen();
} catch (err) {
  logger.fatal({ err }, 'cannot listen');
  await gateway.close().catch(() => undefined);
  await storage.close().catch(() => undefined);
  process.exit(1);
}

// A private tracker (docs/policy.md) is announced to at <route>/<passkey>.
const firstRoute = config.ANNOUNCE_ROUTES[0] ?? '/announce';
const route = !config.PASSKEY_REQUIRED
  ? firstRoute
  : `${firstRoute.endsWith('/') ? firstRoute : `${firstRoute}/`}<passkey>`;
const urls = announceHosts(config.HOST).flatMap((host) => [
  ...(ports.httpPort === undefined ? [] : [`http://${host}:${ports.httpPort}${route}`]),
  ...(ports.udpPort === undefined ? [] : [`udp://${host}:${ports.udpPort}${route}`]),
  ...(ports.httpsPort === undefined ? [] : [`https://${host}:${ports.httpsPort}${route}`]),
]);
logger.info(
  {
    http: ports.httpPort,
    udp: ports.udpPort,
    https: ports.httpsPort,
    admin: ports.adminPort,
    host: config.HOST,
    storage: storage.store.driver,
    announce: urls,
  },
  'listening',
);
process.stderr.write(
  `Shoal tracker ready. Announce URLs:\n${urls.map((u) => `  ${u}\n`).join('')}`,
);

exitOnSignals(logger, config.SHUTDOWN_GRACE_SECONDS, async () => {
  await gateway.close();
  await storage.close();
});

// SIGHUP re-reads the config file (the environment is fixed for the process's
// life). What it applies without a restart: a Redis ring's shard list, moving
// only the swarms of the shards that changed. A config that fails
// validation is refused and the running one kept.
async function reload(): Promise<void> {
  let next: GatewayConfig;
  try {
    next = loadGatewayConfig({ env: process.env, argv: process.argv.slice(2) });
  } catch (err) {
    logger.error({ err }, 'config reload refused, keeping the running config');
    return;
  }
  const store = storage.store;
  const nextStore = embeddedStoreConfig(next);
  if (nextStore === undefined || !isReconfigurable(store)) {
    logger.warn(
      { storage: next.STORAGE_DRIVER },
      'config reload: nothing this store can apply without a restart',
    );
    return;
  }
  try {
    logger.info(await store.reconfigure(nextStore), 'redis reconfigured');
  } catch (err) {
    logger.error({ err }, 'redis reconfigure failed, keeping the running shards');
  }
}

process.on('SIGHUP', () => void reload());
