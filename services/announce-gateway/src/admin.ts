// The admin server (docs/decisions.md "Services"): liveness, readiness and
// Prometheus metrics, on its own port so the tracker port stays public-only.
// With an embedded store and ADMIN_API_TOKEN, also the policy admin API of
// docs/policy.md behind that bearer token, so `make run` is administrable.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { registerPolicyAdminRoutes, type PolicyAdminDeps } from '@shoal/policy';
import { bearerToken, presentedToken } from '@shoal/service/bearer';
import { ADMIN_HTTP_LIMITS, capConnections, fastifyLimits } from '@shoal/service/http-limits';
import { GatewayError, gatewayErrors } from './errors.ts';

export interface AdminDeps {
  registry: Registry;
  /** Resolves when the service can take traffic; rejects with the reason otherwise. */
  /**
   * Resolves when the service can take traffic (with a note when it serves
   * degraded, e.g. answering "retry later"); rejects with the reason otherwise.
   */
  ready: () => Promise<string | undefined>;
  /** The policy admin API and its bearer token; absent = not mounted. */
  policyAdmin?: PolicyAdminDeps & {
    token: string;
    /** Called after a change was accepted (the gateway reloads its snapshot at once). */
    changed?: () => void;
  };
}

export function buildAdmin({ registry, ready, policyAdmin }: AdminDeps): FastifyInstance {
  const app = Fastify({ ...fastifyLimits(ADMIN_HTTP_LIMITS), logger: false });
  capConnections(app.server, ADMIN_HTTP_LIMITS);
  app.get('/healthz', async (_request, reply) => {
    reply.header('content-type', 'text/plain');
    return 'ok\n';
  });
  app.get('/readyz', async (_request, reply) => {
    reply.header('content-type', 'text/plain');
    try {
      const note = await ready();
      return note === undefined ? 'ready\n' : `ready: ${note}\n`;
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
  if (policyAdmin !== undefined) mountPolicyAdmin(app, policyAdmin);
  return app;
}

function mountPolicyAdmin(app: FastifyInstance, deps: NonNullable<AdminDeps['policyAdmin']>): void {
  const { token, changed, ...routes } = deps;
  const expected = bearerToken(token);
  // eslint-disable-next-line @typescript-eslint/require-await
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      if (expected.matches(presentedToken(request.headers.authorization))) return;
      const err = new GatewayError('GATEWAY_ERR_UNAUTHORIZED');
      return reply.code(401).send({ code: err.code, message: gatewayErrors[err.code].message });
    });
    if (changed !== undefined) {
      scope.addHook('onResponse', async (request, reply) => {
        if (request.method !== 'GET' && reply.statusCode < 300) changed();
      });
    }
    registerPolicyAdminRoutes(scope, routes);
  });
}
