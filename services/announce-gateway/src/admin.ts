// The admin server (ARCHITECTURE.md "Operations"): liveness, readiness and
// Prometheus metrics, on its own port so the tracker port stays public-only.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface AdminDeps {
  registry: Registry;
  /** Resolves when the service can take traffic; rejects with the reason otherwise. */
  ready: () => Promise<void>;
}

export function buildAdmin({ registry, ready }: AdminDeps): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/healthz', async (_request, reply) => {
    reply.header('content-type', 'text/plain');
    return 'ok\n';
  });
  app.get('/readyz', async (_request, reply) => {
    reply.header('content-type', 'text/plain');
    try {
      await ready();
      return 'ready\n';
    } catch (err) {
      reply.code(503);
      const code = (err as { code?: unknown }).code;
      return `not ready: ${typeof code === 'string' ? code : (err as Error).message}\n`;
    }
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  return app;
}
