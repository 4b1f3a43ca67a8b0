// How many workers the gateway runs (docs/workers.md "How many workers").
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config.ts';
import { usableCores } from './cores.ts';

/**
 * GATEWAY_WORKERS, or the cores this process may use. The memory store
 * lives in one thread's heap, so workers would each keep their own swarms:
 * it runs one worker, and says so when more were asked for.
 */
export function workerCount(
  config: Pick<GatewayConfig, 'GATEWAY_WORKERS' | 'STORAGE_DRIVER'>,
  logger: Logger,
  cores: () => number = usableCores,
): number {
  const asked = config.GATEWAY_WORKERS;
  const wanted = asked ?? cores();
  if (wanted > 1 && config.STORAGE_DRIVER === 'memory') {
    const message =
      'the memory store keeps its swarms in one thread: running 1 worker (docs/workers.md); for more, use STORAGE_DRIVER=redis, postgres or remote';
    if (asked === undefined) logger.info({ cores: wanted }, message);
    else logger.warn({ GATEWAY_WORKERS: asked }, message);
    return 1;
  }
  return wanted;
}
