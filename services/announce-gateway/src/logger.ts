// The gateway's one pino root per thread (docs/conventions.md "Composition"):
// the main thread's, and each worker's with its index (docs/workers.md).
import { pino, type Logger } from 'pino';
import type { GatewayConfig } from './config.ts';

export function createGatewayLogger(
  config: Pick<GatewayConfig, 'LOG_LEVEL'>,
  base: Record<string, unknown> = {},
): Logger {
  return pino({
    level: config.LOG_LEVEL,
    base: { service: 'announce-gateway', pid: process.pid, ...base },
    redact: [
      'config.UDP_CONNECTION_ID_SECRET',
      'config.STORAGE_API_TOKEN',
      'config.ADMIN_API_TOKEN',
    ],
  });
}
