// Policy data in a DataStore's KV (types.ts has the layout; docs/policy.md
// "Where the data lives"). Write order is the whole consistency story: a
// change writes its entries, then a new random revision; snapshot() reads the
// revision before the entries. A reader can therefore see new entries under
// an old revision (it refetches next refresh, as the revision moved) but
// never an old list under the new revision, which would stick until the next
// change.
import { randomBytes } from 'node:crypto';
import type { DataStore } from '@shoal/storage';
import { PolicyError } from './errors.ts';
import type { PolicyErrorCode } from './errors.ts';
import {
  CLIENT_PREFIX,
  INFO_HASH_HEX,
  META_CONTEXT,
  NOTE_MAX,
  PASSKEY,
  PASSKEYS_CONTEXT,
  REVISION_KEY,
  approvalContext,
} from './types.ts';
import type {
  ApprovalEntry,
  ApprovalKind,
  ApprovalList,
  ImportResult,
  PasskeyEntry,
  PolicyRepository,
  PolicySnapshot,
} from './types.ts';

/** Parallel KV writes of an import: bounded so a 100k-line import does not open 100k round trips at once. */
const WRITE_CONCURRENCY = 16;

interface StoredApproval {
  addedAt: number;
  note?: string;
  /** clients only: the prefix as given. */
  prefix?: string;
}

interface StoredPasskey {
  createdAt: number;
  expiresAt: number | null;
  user?: string;
}

type Problem = { index: number; code: PolicyErrorCode; value: string };

export function createPolicyRepository(
  data: DataStore,
  clock: () => number = Date.now,
): PolicyRepository {
  const newRevision = (): string => `${clock()}-${randomBytes(6).toString('hex')}`;

  /**
   * Runs writes (entries), then writes a new revision when at least one write
   * was attempted, even if one failed: a failed import may have written part
   * of its entries, and gateways must pick those up rather than keep a
   * revision that no longer describes the data.
   */
  async function change(writes: ReadonlyArray<() => Promise<unknown>>): Promise<void> {
    if (writes.length === 0) return;
    let next = 0;
    let failure: { err: unknown } | undefined;
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < writes.length) {
        const write = writes[next++];
        try {
          if (write) await write();
        } catch (err) {
          failure ??= { err };
        }
      }
    };
    // Every worker has settled before the revision is written, so no entry
    // write can land after it.
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, writes.length) }, worker));
    if (failure !== undefined) {
      await data.put(META_CONTEXT, REVISION_KEY, newRevision()).catch(() => undefined);
      throw failure.err;
    }
    await data.put(META_CONTEXT, REVISION_KEY, newRevision());
  }

  /** A delete, then a new revision when it removed something (or may have: it failed). */
  async function removeAndBump(context: string, key: string): Promise<boolean> {
    let existed: boolean;
    try {
      existed = await data.delete(context, key);
    } catch (err) {
      await data.put(META_CONTEXT, REVISION_KEY, newRevision()).catch(() => undefined);
      throw err;
    }
    if (existed) await data.put(META_CONTEXT, REVISION_KEY, newRevision());
    return existed;
  }

  async function readApprovals(
    kind: ApprovalKind,
    list: ApprovalList,
  ): Promise<Array<[key: string, entry: ApprovalEntry]>> {
    const rows = await data.list(approvalContext(kind, list));
    const out: Array<[string, ApprovalEntry]> = [];
    for (const [key, value] of rows) {
      const entry = parseApproval(kind, key, value);
      if (entry) out.push([key, entry]);
    }
    return out;
  }

  async function readPasskeys(): Promise<PasskeyEntry[]> {
    const rows = await data.list(PASSKEYS_CONTEXT);
    const out: PasskeyEntry[] = [];
    for (const [key, value] of rows) {
      const entry = parsePasskey(key, value);
      if (entry) out.push(entry);
    }
    return out;
  }

  return {
    async revision() {
      return (await data.get(META_CONTEXT, REVISION_KEY)) ?? '';
    },

    async snapshot(): Promise<PolicySnapshot> {
      // The revision first (see the header comment); then the lists, together.
      const revision = (await data.get(META_CONTEXT, REVISION_KEY)) ?? '';
      const [ta, td, ca, cd, pk] = await Promise.all([
        readApprovals('torrents', 'allow'),
        readApprovals('torrents', 'deny'),
        readApprovals('clients', 'allow'),
        readApprovals('clients', 'deny'),
        readPasskeys(),
      ]);
      const values = (rows: Array<[string, ApprovalEntry]>): string[] =>
        rows.map(([, e]) => e.value);
      return {
        revision,
        torrents: { allow: values(ta), deny: values(td) },
        clients: { allow: values(ca), deny: values(cd) },
        passkeys: pk.map((p) => [p.passkey, p.expiresAt]),
      };
    },

    async listApproval(kind, list) {
      checkList(kind, list);
      return (await readApprovals(kind, list)).map(([, e]) => e);
    },

    async addApproval(kind, list, value, note) {
      checkList(kind, list);
      const key = approvalKey(kind, value);
      checkText(note, 'note');
      const context = approvalContext(kind, list);
      const old = await data.get(context, key);
      const prev = old === undefined ? undefined : parseApproval(kind, key, old);
      const next = approvalValue(kind, value, prev?.addedAt ?? clock(), note);
      if (old !== next) await change([() => data.put(context, key, next)]);
      return old === undefined;
    },

    async removeApproval(kind, list, value) {
      checkList(kind, list);
      const key = approvalKey(kind, value);
      return removeAndBump(approvalContext(kind, list), key);
    },

    async importApproval(kind, list, entries, options) {
      checkList(kind, list);
      if (!Array.isArray(entries))
        throw new PolicyError('POLICY_ERR_BAD_ENTRY', 'entries must be an array');
      const problems: Problem[] = [];
      const wanted = new Map<string, { value: string; note: string | undefined }>();
      entries.forEach((raw: unknown, index) => {
        try {
          const { value, note } = readEntry(raw, ['value', 'note']);
          const key = approvalKey(kind, value);
          checkText(note, 'note');
          wanted.set(key, {
            value: kind === 'torrents' ? key : (value as string),
            note: note as string | undefined,
          });
        } catch (err) {
          problems.push(problemOf(err, index, raw, 'value'));
        }
      });
      throwProblems(problems, entries.length);
      const context = approvalContext(kind, list);
      const existing = new Map(await data.list(context));
      const now = clock();
      const result: ImportResult = { added: 0, updated: 0, removed: 0 };
      const writes: Array<() => Promise<unknown>> = [];
      for (const [key, { value, note }] of wanted) {
        const old = existing.get(key);
        const prev = old === undefined ? undefined : parseApproval(kind, key, old);
        const next = approvalValue(kind, value, prev?.addedAt ?? now, note);
        if (old === undefined) result.added++;
        else result.updated++;
        if (old !== next) writes.push(() => data.put(context, key, next));
      }
      if (options?.replace === true) {
        for (const key of existing.keys()) {
          if (wanted.has(key)) continue;
          result.removed++;
          writes.push(() => data.delete(context, key));
        }
      }
      await change(writes);
      return result;
    },

    listPasskeys() {
      return readPasskeys();
    },

    async createPasskey(input) {
      if (typeof input !== 'object' || input === null) {
        throw new PolicyError('POLICY_ERR_BAD_ENTRY', 'passkey input must be an object');
      }
      const {
        passkey: given,
        user,
        expiresAt,
      } = readEntry(input, ['passkey', 'user', 'expiresAt']);
      const passkey = given === undefined ? randomBytes(16).toString('hex') : checkPasskey(given);
      checkText(user, 'user');
      const expiry = checkExpiry(expiresAt, clock());
      const old = await data.get(PASSKEYS_CONTEXT, passkey);
      const prev = old === undefined ? undefined : parsePasskey(passkey, old);
      const entry = passkeyEntry(
        passkey,
        prev?.createdAt ?? clock(),
        expiry,
        user as string | undefined,
      );
      const next = passkeyValue(entry);
      if (old !== next) await change([() => data.put(PASSKEYS_CONTEXT, passkey, next)]);
      return entry;
    },

    async removePasskey(passkey) {
      return removeAndBump(PASSKEYS_CONTEXT, checkPasskey(passkey));
    },

    async importPasskeys(entries, options) {
      if (!Array.isArray(entries))
        throw new PolicyError('POLICY_ERR_BAD_ENTRY', 'passkeys must be an array');
      const now = clock();
      const problems: Problem[] = [];
      const wanted = new Map<string, { user: string | undefined; expiresAt: number | null }>();
      entries.forEach((raw: unknown, index) => {
        try {
          const { passkey, user, expiresAt } = readEntry(raw, ['passkey', 'user', 'expiresAt']);
          const key = checkPasskey(passkey);
          checkText(user, 'user');
          wanted.set(key, {
            user: user as string | undefined,
            expiresAt: checkExpiry(expiresAt, now),
          });
        } catch (err) {
          problems.push(problemOf(err, index, raw, 'passkey'));
        }
      });
      throwProblems(problems, entries.length);
      const existing = new Map(await data.list(PASSKEYS_CONTEXT));
      const result: ImportResult = { added: 0, updated: 0, removed: 0 };
      const writes: Array<() => Promise<unknown>> = [];
      for (const [key, { user, expiresAt }] of wanted) {
        const old = existing.get(key);
        const prev = old === undefined ? undefined : parsePasskey(key, old);
        const next = passkeyValue(passkeyEntry(key, prev?.createdAt ?? now, expiresAt, user));
        if (old === undefined) result.added++;
        else result.updated++;
        if (old !== next) writes.push(() => data.put(PASSKEYS_CONTEXT, key, next));
      }
      if (options?.replace === true) {
        for (const key of existing.keys()) {
          if (wanted.has(key)) continue;
          result.removed++;
          writes.push(() => data.delete(PASSKEYS_CONTEXT, key));
        }
      }
      await change(writes);
      return result;
    },
  };
}

// ---------------------------------------------------------------- validation

function checkList(kind: unknown, list: unknown): void {
  if ((kind !== 'torrents' && kind !== 'clients') || (list !== 'allow' && list !== 'deny')) {
    throw new PolicyError('POLICY_ERR_BAD_LIST', `${String(kind)}/${String(list)}`);
  }
}

/** The KV key of an approval value; throws BAD_INFO_HASH / BAD_CLIENT_PREFIX. */
function approvalKey(kind: ApprovalKind, value: unknown): string {
  if (kind === 'torrents') {
    if (typeof value !== 'string' || !INFO_HASH_HEX.test(value)) {
      throw new PolicyError('POLICY_ERR_BAD_INFO_HASH');
    }
    return value.toLowerCase();
  }
  if (typeof value !== 'string' || !CLIENT_PREFIX.test(value)) {
    throw new PolicyError('POLICY_ERR_BAD_CLIENT_PREFIX');
  }
  // CLIENT_PREFIX is ASCII only, so latin1 is the prefix's bytes.
  return Buffer.from(value, 'latin1').toString('hex');
}

function checkPasskey(passkey: unknown): string {
  if (typeof passkey !== 'string' || !PASSKEY.test(passkey)) {
    throw new PolicyError('POLICY_ERR_BAD_PASSKEY');
  }
  return passkey;
}

function checkText(text: unknown, what: string): void {
  if (text === undefined) return;
  if (typeof text !== 'string')
    throw new PolicyError('POLICY_ERR_BAD_ENTRY', `${what} must be a string`);
  if (text.length > NOTE_MAX) {
    throw new PolicyError('POLICY_ERR_BAD_ENTRY', `${what} longer than ${NOTE_MAX} characters`);
  }
}

/** undefined and null mean "never expires"; a number must be finite ms in the future. */
function checkExpiry(expiresAt: unknown, nowMs: number): number | null {
  if (expiresAt === undefined || expiresAt === null) return null;
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt) || expiresAt <= nowMs) {
    throw new PolicyError('POLICY_ERR_BAD_EXPIRY');
  }
  return expiresAt;
}

/** An import entry or create input: a plain object with only the named fields. */
function readEntry(raw: unknown, fields: readonly string[]): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new PolicyError('POLICY_ERR_BAD_ENTRY', 'entry must be an object');
  }
  for (const k of Object.keys(raw)) {
    if (!fields.includes(k)) throw new PolicyError('POLICY_ERR_BAD_ENTRY', `unknown field ${k}`);
  }
  return raw as Record<string, unknown>;
}

function problemOf(err: unknown, index: number, raw: unknown, field: string): Problem {
  if (!(err instanceof PolicyError)) throw err;
  const v = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>)[field] : raw;
  // The offending value, cut short: problems go back in an HTTP answer.
  const value = typeof v === 'string' ? v.slice(0, 128) : '';
  return { index, code: err.code, value };
}

function throwProblems(problems: Problem[], total: number): void {
  if (problems.length === 0) return;
  const first = problems[0];
  throw new PolicyError(
    first?.code ?? 'POLICY_ERR_BAD_ENTRY',
    `${problems.length} of ${total} entries are bad; nothing was written`,
    { problems },
  );
}

// ---------------------------------------------------------------- stored values
// Values are built with a fixed key order so that an unchanged entry produces
// the same text, and a no-op change writes nothing (and no new revision).

function approvalValue(
  kind: ApprovalKind,
  value: string,
  addedAt: number,
  note: string | undefined,
): string {
  const stored: StoredApproval = kind === 'clients' ? { prefix: value, addedAt } : { addedAt };
  if (note !== undefined) stored.note = note;
  return JSON.stringify(stored);
}

function passkeyEntry(
  passkey: string,
  createdAt: number,
  expiresAt: number | null,
  user: string | undefined,
): PasskeyEntry {
  const entry: PasskeyEntry = { passkey, createdAt, expiresAt };
  if (user !== undefined) entry.user = user;
  return entry;
}

function passkeyValue(e: PasskeyEntry): string {
  const stored: StoredPasskey = { createdAt: e.createdAt, expiresAt: e.expiresAt };
  if (e.user !== undefined) stored.user = e.user;
  return JSON.stringify(stored);
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const isMs = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * An approval entry as stored, or undefined when the key or value is junk
 * (written by hand or by something else): one bad entry must not take the
 * whole snapshot down with it, so it is skipped.
 */
function parseApproval(kind: ApprovalKind, key: string, text: string): ApprovalEntry | undefined {
  const v = parseJson(text);
  if (!v || !isMs(v.addedAt)) return undefined;
  if (v.note !== undefined && typeof v.note !== 'string') return undefined;
  let value: string;
  if (kind === 'torrents') {
    if (!INFO_HASH_HEX.test(key)) return undefined;
    value = key.toLowerCase();
  } else {
    const prefix = v.prefix;
    if (typeof prefix !== 'string' || !CLIENT_PREFIX.test(prefix)) return undefined;
    if (Buffer.from(prefix, 'latin1').toString('hex') !== key.toLowerCase()) return undefined;
    value = prefix;
  }
  const entry: ApprovalEntry = { value, addedAt: v.addedAt };
  if (v.note !== undefined) entry.note = v.note;
  return entry;
}

function parsePasskey(key: string, text: string): PasskeyEntry | undefined {
  if (!PASSKEY.test(key)) return undefined;
  const v = parseJson(text);
  if (!v || !isMs(v.createdAt)) return undefined;
  const expiresAt = v.expiresAt ?? null;
  if (expiresAt !== null && !isMs(expiresAt)) return undefined;
  if (v.user !== undefined && typeof v.user !== 'string') return undefined;
  return passkeyEntry(key, v.createdAt, expiresAt, v.user);
}
