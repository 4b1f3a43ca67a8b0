// The storage-api process: reads the environment, opens the stores, listens,
// and on SIGTERM/SIGINT drains in-flight requests, closes the stores, exits 0.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { isConfigError } from '@shoal/config';
import { buildStorageApi } from './app.ts';
import { loadStorageApiConfig, type StorageApiConfig } from './config.ts';
import { openStores, type Stores } from './storage.ts';
import { exitOnSignals, logListening } from '@shoal/service';
import { openWsBackend } from './ws-relay.ts';

function loadOrExit(): StorageApiConfig {
  try {
    return loadStorageApiConfig({ env: process.env, argv: process.argv.slice(2) });
  } catch (err) {
    if (!isConfigError(err)) throw err;
    process.stderr.write(`storage-api: ${err.message}\n`);
    process.exit(1);
  }
}

const config = loadOrExit();
const logger = pino({
  level: config.LOG_LEVEL,
  base: { service: 'storage-api', pid: process.pid },
  redact: [
    'config.STORAGE_API_TOKEN',
    'config.STORAGE_API_ADMIN_TOKEN',
    'config.DATABASE_URL',
    'config.REDIS_PASSWORD',
  ],
});

let stores: Stores;
try {
  // The app built on the store below counts the store's download-counter failures.
  stores = await openStores(config, logger, (err, what) => app.downloadsFailed(err, what));
} catch (err) {
  logger.fatal({ err }, 'cannot open the stores');
  process.exit(1);
}
const ws = openWsBackend(config, logger);
const app = buildStorageApi({
  config,
  logger,
  registry: new Registry(),
  store: stores.store,
  locks: stores.locks,
  ws,
});

let ports;
try {
  ports = await app.listen();
} catch (err) {
  logger.fatal({ err }, 'cannot listen');
  await ws.close();
  await stores.close();
  process.exit(1);
}
logListening(logger, {
  port: ports.port,
  admin: ports.adminPort,
  peers: config.PEER_STORE_DRIVER,
  data: config.DATA_STORE_DRIVER,
});

exitOnSignals(logger, config.SHUTDOWN_GRACE_SECONDS, async () => {
  await app.close();
  await ws.close();
  await stores.close();
});
