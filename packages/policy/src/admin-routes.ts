// The admin API of docs/policy.md "Admin API" as fastify routes, mounted by
// storage-api (its API port, admin token) and by a gateway with an embedded
// store (its admin port): authentication is the caller's onRequest hook.
// Times leave as ISO 8601 strings (expiry null = never); expiry arrives as
// `ttlSeconds` or ISO `expiresAt` or null. Bad input is a PolicyError,
// answered `{ code, message, problems? }` with the catalog's status; any
// other error goes on to the caller's error handler.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { StoreStats } from '@shoal/storage';
import { PolicyError, isPolicyError, type PolicyErrorCode } from './errors.ts';
import {
  CLIENT_PREFIX,
  INFO_HASH_HEX,
  NOTE_MAX,
  PASSKEY,
  type ApprovalEntry,
  type ApprovalKind,
  type ApprovalList,
  type PasskeyEntry,
  type PolicyRepository,
} from './types.ts';

/** One finding of `shoalctl doctor` (structurally @shoal/storage/doctor's DoctorCheck). */
export interface DoctorCheck {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  message: string;
}

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
  /** GET /v1/admin/top: the `limit` torrents with the most live peers, most first. */
  top?: (limit: number) => Promise<TopTorrent[]>;
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

type Problem = { index: number; code: PolicyErrorCode; value: string };

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

function kindOf(kind: unknown, list: unknown): { kind: ApprovalKind; list: ApprovalList } {
  if ((kind === 'torrents' || kind === 'clients') && (list === 'allow' || list === 'deny'))
    return { kind, list };
  throw new PolicyError('POLICY_ERR_BAD_LIST');
}

/** A JSON object body (absent = empty) with only the `allowed` fields. */
function fields(body: unknown, allowed: readonly string[], what = 'body'): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body))
    throw new PolicyError('POLICY_ERR_BAD_ENTRY', `${what} must be a JSON object`);
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    throw new PolicyError(
      'POLICY_ERR_BAD_ENTRY',
      `unknown field ${JSON.stringify(unknown[0])} (allowed: ${allowed.join(', ')})`,
    );
  return record;
}

function optionalText(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > NOTE_MAX)
    throw new PolicyError(
      'POLICY_ERR_BAD_ENTRY',
      `${what} must be a string of at most ${NOTE_MAX} characters`,
    );
  return value;
}

function checkValue(kind: ApprovalKind, value: unknown): string {
  if (kind === 'torrents') {
    if (typeof value !== 'string' || !INFO_HASH_HEX.test(value))
      throw new PolicyError('POLICY_ERR_BAD_INFO_HASH');
    return value.toLowerCase();
  }
  if (typeof value !== 'string' || !CLIENT_PREFIX.test(value))
    throw new PolicyError('POLICY_ERR_BAD_CLIENT_PREFIX');
  return value;
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

/** Runs `check` on every entry; throws one PolicyError listing every bad one, nothing written. */
function validateAll<T>(list: unknown, what: string, check: (entry: unknown) => T): T[] {
  if (!Array.isArray(list))
    throw new PolicyError('POLICY_ERR_BAD_ENTRY', `${what} must be an array`);
  const problems: Problem[] = [];
  const out: T[] = [];
  list.forEach((entry: unknown, index) => {
    try {
      out.push(check(entry));
    } catch (err) {
      if (!isPolicyError(err)) throw err;
      problems.push({ index, code: err.code, value: describe(entry) });
    }
  });
  const first = problems[0];
  if (first !== undefined)
    throw new PolicyError(
      first.code,
      `${problems.length} of ${list.length} ${what} rejected, nothing written`,
      { problems },
    );
  return out;
}

/** A bad entry as the admin typed it, shortened (problems echo it so they can find it). */
function describe(entry: unknown): string {
  const record =
    typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>) : {};
  const v = record.value ?? record.passkey ?? entry;
  const text = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

function approvalView(e: ApprovalEntry): { value: string; note?: string; addedAt: string } {
  return {
    value: e.value,
    ...(e.note === undefined ? {} : { note: e.note }),
    addedAt: iso(e.addedAt),
  };
}

function passkeyView(e: PasskeyEntry): {
  passkey: string;
  user?: string;
  createdAt: string;
  expiresAt: string | null;
} {
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
      const { kind, list } = kindOf(p.kind, p.list);
      return { entries: (await repo.listApproval(kind, list)).map(approvalView) };
    });
    scope.put(`${approval}/:value`, async (request) => {
      const p = request.params as Record<string, unknown>;
      const { kind, list } = kindOf(p.kind, p.list);
      const value = checkValue(kind, p.value);
      const note = optionalText(fields(request.body, ['note']).note, 'note');
      return { added: await repo.addApproval(kind, list, value, note) };
    });
    scope.delete(`${approval}/:value`, async (request) => {
      const p = request.params as Record<string, unknown>;
      const { kind, list } = kindOf(p.kind, p.list);
      return { existed: await repo.removeApproval(kind, list, checkValue(kind, p.value)) };
    });
    scope.post(`${approval}/import`, async (request) => {
      const p = request.params as Record<string, unknown>;
      const { kind, list } = kindOf(p.kind, p.list);
      const body = fields(request.body, ['entries', 'replace']);
      const replace = replaceOf(body.replace);
      const entries = validateAll(body.entries, 'entries', (entry) => {
        const e = fields(entry, ['value', 'note'], 'an entry');
        const value = checkValue(kind, e.value);
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
      if (
        body.passkey !== undefined &&
        (typeof body.passkey !== 'string' || !PASSKEY.test(body.passkey))
      )
        throw new PolicyError('POLICY_ERR_BAD_PASSKEY');
      const user = optionalText(body.user, 'user');
      const expiresAt = expiryOf(body, clock());
      const created = await repo.createPasskey({
        expiresAt,
        ...(typeof body.passkey === 'string' ? { passkey: body.passkey } : {}),
        ...(user === undefined ? {} : { user }),
      });
      return reply.code(201).send(passkeyView(created));
    });
    scope.delete(`${ADMIN_PREFIX}/passkeys/:passkey`, async (request) => {
      const { passkey } = request.params as Record<string, unknown>;
      if (typeof passkey !== 'string' || !PASSKEY.test(passkey))
        throw new PolicyError('POLICY_ERR_BAD_PASSKEY');
      return { existed: await repo.removePasskey(passkey) };
    });
    scope.post(`${ADMIN_PREFIX}/passkeys/import`, async (request) => {
      const body = fields(request.body, ['passkeys', 'replace']);
      const replace = replaceOf(body.replace);
      const now = clock();
      const entries = validateAll(body.passkeys, 'passkeys', (entry) => {
        const e = fields(entry, ['passkey', 'user', 'expiresAt'], 'an entry');
        if (typeof e.passkey !== 'string' || !PASSKEY.test(e.passkey))
          throw new PolicyError('POLICY_ERR_BAD_PASSKEY');
        const user = optionalText(e.user, 'user');
        const expiresAt = e.expiresAt === undefined ? null : parseExpiresAt(e.expiresAt, now);
        return { passkey: e.passkey, expiresAt, ...(user === undefined ? {} : { user }) };
      });
      return repo.importPasskeys(entries, { replace });
    });

    const { stats, top, doctor } = deps;
    if (stats !== undefined) scope.get(`${ADMIN_PREFIX}/stats`, () => stats());
    if (top !== undefined) {
      scope.get(`${ADMIN_PREFIX}/top`, async (request) => ({
        torrents: await top(topLimit(request.query)),
      }));
    }
    if (doctor !== undefined) {
      scope.get(`${ADMIN_PREFIX}/doctor`, async () => {
        const { checks } = await doctor();
        return { checks, serverTimeMs: clock() };
      });
    }
  });
}
