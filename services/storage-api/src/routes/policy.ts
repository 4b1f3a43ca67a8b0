// GET /v1/policy (the gateways' snapshot) and the policy admin API under
// /v1/admin (docs/policy.md).
import type { FastifyInstance } from 'fastify';
import {
  PolicyError,
  checkLink,
  registerPolicyAdminRoutes,
  type PolicyAdminDeps,
  type createPolicyRepository,
} from '@shoal/policy';
import { hasTopSwarms } from '@shoal/storage';
import { ROUTES } from '@shoal/storage-api-contract';
import type { RouteContext } from './context.ts';

export interface PolicyRouteOptions extends RouteContext {
  policy: ReturnType<typeof createPolicyRepository>;
  clock: () => number;
  doctor: NonNullable<PolicyAdminDeps['doctor']>;
}

/** A gateway's ban lasts at most ABUSE_BAN_SECONDS' maximum, 30 days. */
const BAN_MAX_MS = 30 * 86_400_000;

/** RFC 9110 13.1.2: If-None-Match is `*` or a list of entity tags, compared weakly. */
function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || (t.startsWith('W/') ? t.slice(2) : t) === etag;
  });
}

// eslint-disable-next-line @typescript-eslint/require-await
export async function policyRoutes(api: FastifyInstance, ctx: PolicyRouteOptions): Promise<void> {
  const { store, metrics, timed, peerDriver, dataDriver, policy, clock, doctor } = ctx;
  // Gateways poll this every POLICY_REFRESH_SECONDS: one revision read, and
  // the lists only when the revision moved (docs/policy.md).
  api.get(ROUTES.policy, { config: { endpoint: 'policy' } }, async (request, reply) => {
    const revision = await timed(dataDriver, 'kv_get', () => policy.revision());
    const header = request.headers['if-none-match'];
    if (noneMatch(header, `"${revision}"`)) {
      reply.header('etag', `"${revision}"`);
      return reply.code(304).send();
    }
    const snapshot = await timed(dataDriver, 'kv_list', () => policy.snapshot());
    reply.header('etag', `"${snapshot.revision}"`);
    return snapshot;
  });

  // A link a gateway learned from a client announcing both hashes of a
  // hybrid torrent (docs/policy.md "Hybrid torrents"): the gateway token may
  // add learned links only, never replace or remove an imported one.
  api.post(ROUTES.links, { config: { endpoint: 'policy' } }, async (request) => {
    const body = (request.body ?? {}) as { first?: unknown; second?: unknown };
    const link = checkLink(body.first, body.second);
    const added = await timed(dataDriver, 'kv_put', () => policy.addLink(link, { learned: true }));
    return { added };
  });

  // A ban a gateway applied by itself (docs/policy.md "Abuse control"): a
  // bounded one, for a reason a gateway has; operators' bans use /v1/admin/bans.
  api.post(ROUTES.bans, { config: { endpoint: 'policy' } }, async (request) => {
    const body = (request.body ?? {}) as { key?: unknown; until?: unknown; reason?: unknown };
    const now = clock();
    const { key, until, reason } = body;
    if (
      typeof key !== 'string' ||
      !/^(?:4-[0-9a-f]{8}|6-[0-9a-f]{16})$/.test(key) ||
      typeof until !== 'number' ||
      !(until > now && until <= now + BAN_MAX_MS) ||
      (reason !== 'bad_connection_id' && reason !== 'malformed')
    )
      throw new PolicyError('POLICY_ERR_BAD_ENTRY', 'want { key, until, reason } of a gateway ban');
    const added = await timed(dataDriver, 'kv_put', () => policy.addBan({ key, until, reason }));
    return { added };
  });

  const top = hasTopSwarms(store) ? store.topSwarms.bind(store) : undefined;
  registerPolicyAdminRoutes(api, {
    repo: policy,
    clock,
    stats: async () => {
      const stats = await timed(peerDriver, 'stats', () => store.stats());
      metrics.swarm(stats);
      return stats;
    },
    ...(top === undefined
      ? {}
      : {
          // Live peers from the peer backend, downloads as /v1/downloads reads them.
          top: {
            swarms: (limit: number) => timed(peerDriver, 'stats', () => top(limit)),
            downloads: (infoHashes: Buffer[]) =>
              timed(store.downloadsApart ? dataDriver : peerDriver, 'downloads', () =>
                store.downloads(infoHashes),
              ),
          },
        }),
    doctor,
  });
}
