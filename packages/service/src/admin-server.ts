// The admin port every Shoal service serves (docs/decisions.md "Services"):
// /healthz, /readyz and /metrics, with the fixed limits of docs/limits.md.
// One builder so the three services answer /readyz in one format, the one
// docs/observability.md "Health and readiness" describes.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { serviceErrors, type ServiceErrorCode } from './errors.ts';
import { ADMIN_HTTP_LIMITS, capConnections, fastifyLimits } from './http-limits.ts';

/** One dependency a service checked for /readyz. */
export interface ReadyCheck {
  ok: boolean;
  /** The error code when it failed (a catalogued code of the package that failed). */
  code?: string;
  /** Which backend it is, where a service has several kinds (storage drivers). */
  driver?: string;
}

interface ReadinessBase {
  checks?: Record<string, ReadyCheck>;
  /** Service state an operator may want beside readiness (the gc-worker's election). */
  info?: Record<string, unknown>;
}

/**
 * `ready` and `degraded` answer 200, `not ready` 503. `degraded` is ready
 * with a reason (a gateway answering "retry later" through a store outage,
 * docs/decisions.md "Gateway readiness").
 */
export type Readiness =
  | (ReadinessBase & { status: 'ready' })
  | (ReadinessBase & { status: 'degraded' | 'not ready'; code: string; message: string });

export interface AdminServerOptions {
  registry: Registry;
  /** The service's own readiness, asked only between serving() and stopping(). */
  ready: () => Promise<Readiness>;
}

export interface AdminServer {
  /** The fastify instance: `inject()` works before listen(); more routes may be added before it. */
  app: FastifyInstance;
  /** Listens and returns the port. */
  listen(host: string, port: number): Promise<number>;
  /** The service listens on every port: from now on /readyz asks `ready`. */
  serving(): void;
  /** The service drains: /readyz answers 503 from now on. */
  stopping(): void;
  close(): Promise<void>;
}

export function notReady(code: ServiceErrorCode): Readiness {
  return { status: 'not ready', code, message: serviceErrors[code].message };
}

export function buildAdminServer({ registry, ready }: AdminServerOptions): AdminServer {
  const app = Fastify({ ...fastifyLimits(ADMIN_HTTP_LIMITS), logger: false });
  capConnections(app.server, ADMIN_HTTP_LIMITS);
  let phase: 'starting' | 'serving' | 'stopping' = 'starting';
  app.get('/healthz', async (_request, reply) => {
    reply.header('content-type', 'text/plain');
    return 'ok\n';
  });
  app.get('/readyz', async (_request, reply) => {
    const readiness =
      phase === 'serving'
        ? await ready()
        : notReady(
            phase === 'starting' ? 'SERVICE_ERR_NOT_LISTENING' : 'SERVICE_ERR_SHUTTING_DOWN',
          );
    // A drain that began while the checks ran wins.
    const answer: Readiness =
      phase === 'stopping' ? notReady('SERVICE_ERR_SHUTTING_DOWN') : readiness;
    reply.code(answer.status === 'not ready' ? 503 : 200);
    return answer;
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  return {
    app,
    async listen(host, port) {
      await app.listen({ port, host });
      const address = app.server.address();
      if (address === null || typeof address === 'string')
        throw new Error('admin server has no port');
      return address.port;
    },
    serving() {
      phase = 'serving';
    },
    stopping() {
      phase = 'stopping';
    },
    close: () => app.close(),
  };
}
