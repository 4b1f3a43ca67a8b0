// Process lifecycle shared by every Shoal service's main.ts (docs/decisions.md
// "Services": SIGTERM drains in-flight work and exits within the grace
// period). Only main.ts calls this; built apps stay free of process exits.
import type { Logger } from 'pino';

/**
 * On SIGTERM or SIGINT: log, run `drain` (stop accepting, finish in-flight
 * work, close stores), exit 0; exit 1 if it throws or outlasts the grace period.
 */
export function exitOnSignals(
  logger: Logger,
  graceSeconds: number,
  drain: () => Promise<void>,
): void {
  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error({ graceSeconds }, 'shutdown grace period exceeded, exiting');
      process.exit(1);
    }, graceSeconds * 1000).unref();
    try {
      await drain();
    } catch (err) {
      logger.error({ err }, 'error while shutting down');
      process.exit(1);
    }
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', (signal) => void shutdown(signal));
  process.once('SIGINT', (signal) => void shutdown(signal));
}

/**
 * Logs the `"listening"` line (its fields: ports, addresses, mode) at info,
 * whatever LOG_LEVEL says but `silent`: it is where an operator running at
 * `warn` still learns where the service listens, and the line the launcher
 * of the tests and benchmarks reads the ports from (docs/observability.md
 * "Logs").
 */
export function logListening(logger: Logger, fields: Record<string, unknown>): void {
  const out =
    logger.isLevelEnabled('info') || logger.level === 'silent'
      ? logger
      : logger.child({}, { level: 'info' });
  out.info(fields, 'listening');
}
