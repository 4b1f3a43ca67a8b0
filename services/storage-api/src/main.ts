// The storage-api process: reads the environment, listens, handles signals.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { isConfigError } from '@shoal/config';
import { buildStorageApi } from './app.ts';
import { loadStorageApiConfig, type StorageApiConfig } from './config.ts';

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
});
const app = buildStorageApi({ config, logger, registry: new Registry() });

let ports;
try {
  ports = await app.listen();
} catch (err) {
  logger.fatal({ err }, 'cannot listen');
  process.exit(1);
}
logger.info({ admin: ports.adminPort }, 'listening');

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  setTimeout(() => process.exit(1), config.SHUTDOWN_GRACE_SECONDS * 1000).unref();
  try {
    await app.close();
  } catch (err) {
    logger.error({ err }, 'error while shutting down');
    process.exit(1);
  }
  process.exit(0);
}
process.once('SIGTERM', (signal) => void shutdown(signal));
process.once('SIGINT', (signal) => void shutdown(signal));
