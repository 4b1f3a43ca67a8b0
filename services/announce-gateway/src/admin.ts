// The admin server (docs/decisions.md "Services"): liveness, readiness and
// Prometheus metrics, on its own port so the tracker port stays public-only.
// With an embedded store and ADMIN_API_TOKEN, also the policy admin API of
// docs/policy.md behind that bearer token, so `make run` is administrable.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  createPolicyRepository,
  registerPolicyAdminRoutes,
  type PolicyAdminDeps,
} from '@shoal/policy';
import { hasTopSwarms, isDataStore } from '@shoal/storage';
import { runDoctor } from '@shoal/storage/doctor';
import { buildAdminServer, type AdminServer, type Readiness } from '@shoal/service/admin-server';
import { bearerToken, presentedToken } from '@shoal/service/bearer';
import type { GatewayConfig } from './config.ts';
import { GatewayError, gatewayErrors } from './errors.ts';
import { embeddedStoreConfig, type GatewayStorage } from './storage.ts';

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

export interface PolicyAdminOptions {
  config: GatewayConfig;
  storage: GatewayStorage;
  clock: () => number;
  logger: Logger;
  /** Called after a change was accepted: the snapshots in use reload at once, not at the next refresh. */
  changed?: () => void;
}

/** docs/policy.md: the admin API on the admin port, embedded stores only (remote: storage-api has it). */
export function policyAdminFor({
  config,
  storage,
  clock,
  logger,
  changed,
}: PolicyAdminOptions): Pick<AdminDeps, 'policyAdmin'> {
  const token = config.ADMIN_API_TOKEN;
  if (token === undefined) return {};
  const storeConfig = embeddedStoreConfig(config);
  if (storeConfig === undefined || !isDataStore(storage)) {
    logger.warn(
      'ADMIN_API_TOKEN is set but this gateway has no embedded store: administer storage-api instead',
    );
    return {};
  }
  const top = hasTopSwarms(storage) ? storage.topSwarms.bind(storage) : undefined;
  const deps: PolicyAdminDeps = {
    repo: createPolicyRepository(storage, clock),
    clock,
    stats: () => storage.stats(),
    doctor: async () => ({
      checks: await runDoctor({ store: storeConfig, clock }),
    }),
    ...(top === undefined
      ? {}
      : {
          top: {
            swarms: top,
            downloads: async (infoHashes: Buffer[]) =>
              (await storage.scrape(infoHashes)).map((c) => c.downloaded),
          },
        }),
  };
  return { policyAdmin: { ...deps, token, ...(changed === undefined ? {} : { changed }) } };
}

function mountPolicyAdmin(app: FastifyInstance, deps: NonNullable<AdminDeps['policyAdmin']>): void {
  const { token, changed, ...routes } = deps;
  // eslint-disable-next-line @typescript-eslint/require-await
  void app.register(async (scope) => {
    requireToken(scope, token);
    if (changed !== undefined) {
      scope.addHook('onResponse', async (request, reply) => {
        if (request.method !== 'GET' && reply.statusCode < 300) changed();
      });
    }
    registerPolicyAdminRoutes(scope, routes);
  });
}

/** Every route of `scope` answers 401 GATEWAY_ERR_UNAUTHORIZED without `Authorization: Bearer <token>`. */
export function requireToken(scope: FastifyInstance, token: string): void {
  const expected = bearerToken(token);
  scope.addHook('onRequest', async (request, reply) => {
    if (expected.matches(presentedToken(request.headers.authorization))) return;
    const err = new GatewayError('GATEWAY_ERR_UNAUTHORIZED');
    return reply.code(401).send({ code: err.code, message: gatewayErrors[err.code].message });
  });
}
