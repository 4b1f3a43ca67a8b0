// The admin API of docs/policy.md "Admin API" as fastify routes, mounted by
// storage-api (its API port, admin token) and by a gateway with an embedded
// store (its admin port): authentication is the caller's onRequest hook.
// Times leave as ISO 8601 strings (expiry null = never); expiry arrives as
// `ttlSeconds` or ISO `expiresAt` or null. Bad input is a PolicyError,
// answered `{ code, message, problems? }` with the catalog's status; any
// other error goes on to the caller's error handler.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { StoreStats, TopSwarm } from '@shoal/storage';
import type { DoctorCheck } from '@shoal/storage/doctor';
import { PolicyError, isPolicyError, type PolicyErrorCode } from './errors.ts';
import { registerBanRoutes } from './bans.ts';
import { registerLinkRoutes } from './links.ts';

export type { DoctorCheck };
import type { ApprovalEntry, ImportResult, PasskeyEntry, PolicyRepository } from './types.ts';
import {
  checkApprovalValue,
  checkList,
  checkPasskey,
  fields,
  optionalText,
  validateAll,
  type Problem,
} from './validate.ts';

/** One row of GET /v1/admin/top. */
export interface TopTorrent {
  /** 40 lowercase hex. */
  infoHash: string;
  seeders: number;
  leechers: number;
  downloaded: number;
}

export interface PolicyAdminDeps {
  repo: PolicyRepository;
  /** GET /v1/admin/stats; the route exists only when given. */
  stats?: () => Promise<StoreStats>;
  /**
   * GET /v1/admin/top: the `limit` swarms with the most live peers, most
   * first (PeerStore.topSwarms), and the download counts of given swarms.
   */
  top?: {
    swarms: (limit: number) => Promise<TopSwarm[]>;
    downloads: (infoHashes: Buffer[]) => Promise<number[]>;
  };
  doctor?: () => Promise<{ checks: DoctorCheck[] }>;
  /** ms since the epoch (expiry checks, serverTimeMs). Default Date.now. */
  clock?: () => number;
}

export const ADMIN_PREFIX = '/v1/admin';
export const TOP_LIMIT_MAX = 1000;
export const TOP_LIMIT_DEFAULT = 10;
/** Longest ttlSeconds accepted: 100 years. */
const TTL_MAX_SECONDS = 100 * 365 * 86_400;
/** ISO 8601 date, or date and time with a zone (a zone-less time would be read as the server's local time). */
const ISO_8601 =
  /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2}))?$/;

/** The error answer of a PolicyError (status from the catalog). */
export function policyErrorAnswer(err: PolicyError): {
  status: number;
  body: { code: PolicyErrorCode; message: string; problems?: Problem[] };
} {
  return {
    status: err.httpStatus,
    body: {
      code: err.code,
      message: err.message,
      ...(err.problems.length > 0 ? { problems: [...err.problems] } : {}),
    },
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** ISO 8601 text or null (never expires) to ms; must lie in the future. */
function parseExpiresAt(value: unknown, nowMs: number): number | null {
  if (value === null) return null;
  if (typeof value !== 'string' || !ISO_8601.test(value))
    throw new PolicyError('POLICY_ERR_BAD_EXPIRY', 'expiresAt must be an ISO 8601 time or null');
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw new PolicyError('POLICY_ERR_BAD_EXPIRY', 'not a valid time');
  if (ms <= nowMs) throw new PolicyError('POLICY_ERR_BAD_EXPIRY', 'expiresAt is in the past');
  return ms;
}

/** `ttlSeconds` or `expiresAt` (one of them) to ms or null; neither = never expires. */
function expiryOf(body: Record<string, unknown>, nowMs: number): number | null {
  const { ttlSeconds, expiresAt } = body;
  if (ttlSeconds !== undefined && expiresAt !== undefined)
    throw new PolicyError('POLICY_ERR_BAD_EXPIRY', 'give ttlSeconds or expiresAt, not both');
  if (ttlSeconds !== undefined) {
    if (ttlSeconds === null) return null;
    if (
      typeof ttlSeconds !== 'number' ||
      !Number.isInteger(ttlSeconds) ||
      ttlSeconds < 1 ||
      ttlSeconds > TTL_MAX_SECONDS
    )
      throw new PolicyError(
        'POLICY_ERR_BAD_EXPIRY',
        `ttlSeconds must be an integer in 1..${TTL_MAX_SECONDS} or null`,
      );
    return nowMs + ttlSeconds * 1000;
  }
  return expiresAt === undefined ? null : parseExpiresAt(expiresAt, nowMs);
}

function replaceOf(value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean')
    throw new PolicyError('POLICY_ERR_BAD_ENTRY', 'replace must be true or false');
  return value;
}

/** An approval entry as the admin API shows it (GET /v1/admin/approval/...). */
export interface ApprovalView {
  value: string;
  note?: string;
  /** ISO 8601. */
  addedAt: string;
}

/** A passkey as the admin API shows it (ISO 8601 times; expiresAt null = never). */
export interface PasskeyView {
  passkey: string;
  user?: string;
  createdAt: string;
  expiresAt: string | null;
}

/** What an import answers. */
export type ImportView = ImportResult;

function approvalView(e: ApprovalEntry): ApprovalView {
  return {
    value: e.value,
    ...(e.note === undefined ? {} : { note: e.note }),
    addedAt: iso(e.addedAt),
  };
}

function passkeyView(e: PasskeyEntry): PasskeyView {
  return {
    passkey: e.passkey,
    ...(e.user === undefined ? {} : { user: e.user }),
    createdAt: iso(e.createdAt),
    expiresAt: e.expiresAt === null ? null : iso(e.expiresAt),
  };
}

function topLimit(query: unknown): number {
  const raw = (query as Record<string, unknown> | undefined)?.limit;
  if (raw === undefined) return TOP_LIMIT_DEFAULT;
  const n = typeof raw === 'string' && /^\d{1,4}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= TOP_LIMIT_MAX))
    throw new PolicyError(
      'POLICY_ERR_BAD_ENTRY',
      `limit must be an integer in 1..${TOP_LIMIT_MAX}`,
    );
  return n;
}

/**
 * Registers the /v1/admin/* routes in their own encapsulated context, whose
 * error handler answers PolicyErrors and passes anything else to the
 * caller's. The caller's hooks (authentication) apply: add them first.
 */
export function registerPolicyAdminRoutes(app: FastifyInstance, deps: PolicyAdminDeps): void {
  const { repo } = deps;
  const clock = deps.clock ?? Date.now;

  // eslint-disable-next-line @typescript-eslint/require-await
  void app.register(async (scope) => {
    scope.setErrorHandler(
      async (error: FastifyError | PolicyError, _request: FastifyRequest, reply: FastifyReply) => {
        if (!isPolicyError(error)) throw error;
        const answer = policyErrorAnswer(error);
        return reply.code(answer.status).send(answer.body);
      },
    );

    const approval = `${ADMIN_PREFIX}/approval/:kind/:list`;
    scope.get(approval, async (request) => {
      const p = request.params as Record<string, unknown>;
      const { kind, list } = checkList(p.kind, p.list);
      return { entries: (await repo.listApproval(kind, list)).map(approvalView) };
    });
    scope.put(`${approval}/:value`, async (request) => {
      const p = request.params as Record<string, unknown>;
      const { kind, list } = checkList(p.kind, p.list);
      const value = checkApprovalValue(kind, p.value);
      const note = optionalText(fields(request.body, ['note']).note, 'note');
      return { added: await repo.addApproval(kind, list, value, note) };
    });
    scope.delete(`${approval}/:value`, async (request) => {
      const p = request.params as Record<string, unknown>;
      const { kind, list } = checkList(p.kind, p.list);
      return { existed: await repo.removeApproval(kind, list, checkApprovalValue(kind, p.value)) };
    });
    scope.post(`${approval}/import`, async (request) => {
      const p = request.params as Record<string, unknown>;
      const { kind, list } = checkList(p.kind, p.list);
      const body = fields(request.body, ['entries', 'replace']);
      const replace = replaceOf(body.replace);
      const entries = validateAll(body.entries, 'entries', (entry) => {
        const e = fields(entry, ['value', 'note'], 'an entry');
        const value = checkApprovalValue(kind, e.value);
        const note = optionalText(e.note, 'note');
        return note === undefined ? { value } : { value, note };
      });
      return repo.importApproval(kind, list, entries, { replace });
    });

    scope.get(`${ADMIN_PREFIX}/passkeys`, async () => ({
      passkeys: (await repo.listPasskeys()).map(passkeyView),
    }));
    scope.post(`${ADMIN_PREFIX}/passkeys`, async (request, reply) => {
      const body = fields(request.body, ['passkey', 'user', 'ttlSeconds', 'expiresAt']);
      const passkey = body.passkey === undefined ? undefined : checkPasskey(body.passkey);
      const user = optionalText(body.user, 'user');
      const expiresAt = expiryOf(body, clock());
      const created = await repo.createPasskey({
        expiresAt,
        ...(passkey === undefined ? {} : { passkey }),
        ...(user === undefined ? {} : { user }),
      });
      return reply.code(201).send(passkeyView(created));
    });
    scope.delete(`${ADMIN_PREFIX}/passkeys/:passkey`, async (request) => {
      const { passkey } = request.params as Record<string, unknown>;
      return { existed: await repo.removePasskey(checkPasskey(passkey)) };
    });
    scope.post(`${ADMIN_PREFIX}/passkeys/import`, async (request) => {
      const body = fields(request.body, ['passkeys', 'replace']);
      const replace = replaceOf(body.replace);
      const now = clock();
      const entries = validateAll(body.passkeys, 'passkeys', (entry) => {
        const e = fields(entry, ['passkey', 'user', 'expiresAt'], 'an entry');
        const passkey = checkPasskey(e.passkey);
        const user = optionalText(e.user, 'user');
        const expiresAt = e.expiresAt === undefined ? null : parseExpiresAt(e.expiresAt, now);
        return { passkey, expiresAt, ...(user === undefined ? {} : { user }) };
      });
      return repo.importPasskeys(entries, { replace });
    });

    registerLinkRoutes(scope, ADMIN_PREFIX, repo);
    registerBanRoutes(scope, ADMIN_PREFIX, repo, clock);

    const { stats, top, doctor } = deps;
    if (stats !== undefined) scope.get(`${ADMIN_PREFIX}/stats`, () => stats());
    if (top !== undefined) {
      scope.get(`${ADMIN_PREFIX}/top`, async (request) => {
        const swarms = await top.swarms(topLimit(request.query));
        const counts =
          swarms.length === 0 ? [] : await top.downloads(swarms.map((t) => t.infoHash));
        const torrents: TopTorrent[] = swarms.map((t, i) => ({
          infoHash: t.infoHash.toString('hex'),
          seeders: t.seeders,
          leechers: t.leechers,
          downloaded: counts[i] ?? 0,
        }));
        return { torrents };
      });
    }
    if (doctor !== undefined) {
      scope.get(`${ADMIN_PREFIX}/doctor`, async () => {
        const { checks } = await doctor();
        return { checks, serverTimeMs: clock() };
      });
    }
  });
}
