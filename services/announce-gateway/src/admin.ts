// The admin server (docs/decisions.md "Services"): liveness, readiness and
// Prometheus metrics, on its own port so the tracker port stays public-only.
// With an embedded store and ADMIN_API_TOKEN, also the policy admin API of
// docs/policy.md behind that bearer token, so `make run` is administrable.
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { registerPolicyAdminRoutes, type PolicyAdminDeps } from '@shoal/policy';
import { buildAdminServer, type AdminServer, type Readiness } from '@shoal/service/admin-server';
import { bearerToken, presentedToken } from '@shoal/service/bearer';
import { GatewayError, gatewayErrors } from './errors.ts';

export interface AdminDeps {
  registry: Registry;
  /** The gateway's readiness once it listens (docs/observability.md "Health and readiness"). */
  ready: () => Promise<Readiness>;
  /** The policy admin API and its bearer token; absent = not mounted. */
  policyAdmin?: PolicyAdminDeps & {
    token: string;
    /** Called after a change was accepted (the gateway reloads its snapshot at once). */
    changed?: () => void;
  };
}

export function buildAdmin({ registry, ready, policyAdmin }: AdminDeps): AdminServer {
  const admin = buildAdminServer({ registry, ready });
  if (policyAdmin !== undefined) mountPolicyAdmin(admin.app, policyAdmin);
  return admin;
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
