// Time-limited bans of client addresses (docs/policy.md "Abuse control"): a
// gateway bans a source that floods it with bad UDP connection ids or junk,
// an operator may ban one by hand, and either is lifted at its expiry or
// through the admin API. Bans are KV data beside the approval lists, so they
// travel in the policy snapshot to every gateway whatever the store. Keys are
// what the rate limiter counts: an IPv4 address, or an IPv6 /64.
import type { FastifyInstance } from 'fastify';
import { addressToBytes, bytesToAddress } from '@shoal/protocol';
import { PolicyError } from './errors.ts';
import { fields, optionalText, parseJson } from './validate.ts';

/** Keys: `4-<8 hex>` or `6-<16 hex>` (the /64); values: StoredBan as JSON. */
export const BANS_CONTEXT = 'policy.bans';

export type BanReason = 'bad_connection_id' | 'malformed' | 'manual';
export const BAN_REASONS: readonly BanReason[] = ['bad_connection_id', 'malformed', 'manual'];

export interface BanEntry {
  /** The KV key. */
  key: string;
  /** An IPv4 address or an IPv6 /64 (`2001:db8:1:2::/64`). */
  address: string;
  /** ms since the epoch. */
  until: number;
  addedAt: number;
  reason: BanReason;
  note?: string;
}

/**
 * The ban key of raw address bytes: IPv4 (and IPv4-mapped IPv6) per address,
 * IPv6 per /64, as the rate limiter keys them (rate-limit.ts).
 */
export function banKeyOf(family: 4 | 6, bytes: Buffer): string {
  if (family === 4) return `4-${bytes.toString('hex', 0, 4)}`;
  if (
    bytes.length === 16 &&
    bytes.readUInt32BE(0) === 0 &&
    bytes.readUInt32BE(4) === 0 &&
    bytes.readUInt32BE(8) === 0x0000ffff
  )
    return `4-${bytes.toString('hex', 12, 16)}`;
  return `6-${bytes.toString('hex', 0, 8)}`;
}

/** The ban key of an address typed by an operator (IPv4, IPv6, or IPv6 with /64). */
export function checkBanAddress(value: unknown): string {
  const text = typeof value === 'string' ? value.replace(/\/64$/, '') : undefined;
  const parsed = text === undefined ? undefined : addressToBytes(text);
  if (parsed === undefined)
    throw new PolicyError('POLICY_ERR_BAD_ADDRESS', `${String(value).slice(0, 64)}`);
  return banKeyOf(parsed.family, parsed.bytes);
}

/** The address a ban key stands for, as shown to operators. */
export function banAddress(key: string): string {
  if (key.startsWith('4-')) return bytesToAddress(Buffer.from(key.slice(2), 'hex'));
  const prefix = Buffer.concat([Buffer.from(key.slice(2), 'hex'), Buffer.alloc(8)]);
  return `${bytesToAddress(prefix)}/64`;
}

const KEY = /^(?:4-[0-9a-f]{8}|6-[0-9a-f]{16})$/;

export function banValue(e: Omit<BanEntry, 'key' | 'address'>): string {
  const stored: Record<string, unknown> = { until: e.until, addedAt: e.addedAt, reason: e.reason };
  if (e.note !== undefined) stored.note = e.note;
  return JSON.stringify(stored);
}

/** A stored ban, or undefined when the key or value is junk (skipped). */
export function parseBan(key: string, text: string): BanEntry | undefined {
  if (!KEY.test(key)) return undefined;
  const v = parseJson(text);
  if (!v || typeof v.until !== 'number' || typeof v.addedAt !== 'number') return undefined;
  if (!BAN_REASONS.includes(v.reason as BanReason)) return undefined;
  if (v.note !== undefined && typeof v.note !== 'string') return undefined;
  const entry: BanEntry = {
    key,
    address: banAddress(key),
    until: v.until,
    addedAt: v.addedAt,
    reason: v.reason as BanReason,
  };
  if (v.note !== undefined) entry.note = v.note;
  return entry;
}

/** What the repository offers for bans (PolicyRepository has these). */
export interface BanRepository {
  /** Bans not yet expired at nowMs. */
  listBans(nowMs: number): Promise<BanEntry[]>;
  /** `key` from banKeyOf / checkBanAddress; a longer ban of the same key is kept. true when new. */
  addBan(input: { key: string; until: number; reason: BanReason; note?: string }): Promise<boolean>;
  /** true when a ban existed. */
  removeBan(key: string): Promise<boolean>;
}

/** Longest ban accepted: 30 days. */
const BAN_MAX_SECONDS = 30 * 86_400;

/** GET/PUT/DELETE /v1/admin/bans, in the admin routes' scope. */
export function registerBanRoutes(
  scope: FastifyInstance,
  prefix: string,
  repo: BanRepository,
  clock: () => number,
): void {
  scope.get(`${prefix}/bans`, async () => ({
    bans: (await repo.listBans(clock())).map((b) => ({
      address: b.address,
      reason: b.reason,
      until: new Date(b.until).toISOString(),
      addedAt: new Date(b.addedAt).toISOString(),
      ...(b.note === undefined ? {} : { note: b.note }),
    })),
  }));
  scope.put(`${prefix}/bans/:address`, async (request) => {
    const key = checkBanAddress((request.params as Record<string, unknown>).address);
    const body = fields(request.body, ['ttlSeconds', 'note']);
    const ttl = body.ttlSeconds;
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > BAN_MAX_SECONDS)
      throw new PolicyError(
        'POLICY_ERR_BAD_EXPIRY',
        `ttlSeconds must be an integer in 1..${BAN_MAX_SECONDS}`,
      );
    const note = optionalText(body.note, 'note');
    const until = clock() + ttl * 1000;
    const added = await repo.addBan({
      key,
      until,
      reason: 'manual',
      ...(note === undefined ? {} : { note }),
    });
    return { added, address: banAddress(key), until: new Date(until).toISOString() };
  });
  scope.delete(`${prefix}/bans/:address`, async (request) => {
    const key = checkBanAddress((request.params as Record<string, unknown>).address);
    return { existed: await repo.removeBan(key) };
  });
}
