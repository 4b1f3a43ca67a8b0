// storage-api composition root (STYLE.md "Composition"): injected config, logger
// and registry; nothing listens until listen(). The service's real work is
// issue 5; for now it exposes only its admin endpoints.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import type { StorageApiConfig } from './config.ts';

export interface StorageApiDeps {
  config: StorageApiConfig;
  logger: Logger;
  registry: Registry;
}

export interface StorageApi {
  admin: FastifyInstance;
  listen(): Promise<{ adminPort: number }>;
  close(): Promise<void>;
}

export function buildStorageApi({ config, logger, registry }: StorageApiDeps): StorageApi {
  const log = logger.child({ module: 'storage-api' });
  if (registry.getSingleMetric('process_cpu_user_seconds_total') === undefined) {
    collectDefaultMetrics({ register: registry });
  }
  let listening = false;
  let closing = false;
  const admin = Fastify({ logger: false });
  admin.get('/healthz', async (_request, reply) => {
    reply.header('content-type', 'text/plain');
    return 'ok\n';
  });
  admin.get('/readyz', async (_request, reply) => {
    reply.header('content-type', 'text/plain');
    if (listening && !closing) return 'ready\n';
    reply.code(503);
    return closing ? 'not ready: shutting down\n' : 'not ready: not listening yet\n';
  });
  admin.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  return {
    admin,
    async listen() {
      await admin.listen({ port: config.ADMIN_PORT, host: config.ADMIN_HOST });
      const address = admin.server.address();
      if (address === null || typeof address === 'string')
        throw new Error('admin server has no port');
      listening = true;
      log.debug({ admin: address.port }, 'admin listening');
      return { adminPort: address.port };
    },
    async close() {
      if (closing) return;
      closing = true;
      await admin.close();
    },
  };
}
