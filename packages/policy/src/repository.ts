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
import { BANS_CONTEXT, banValue, parseBan, type BanEntry } from './bans.ts';
import {
  LINKS_CONTEXT,
  checkLink,
  checkNoConflict,
  linkValue,
  parseLink,
  type LinkEntry,
  type LinkInput,
} from './links.ts';
import {
  CLIENT_PREFIX,
  INFO_HASH_HEX,
  META_CONTEXT,
  PASSKEY,
  PASSKEYS_CONTEXT,
  REVISION_KEY,
  approvalContext,
} from './types.ts';
import type {
  ApprovalEntry,
  ApprovalKind,
  ImportResult,
  PasskeyEntry,
  PolicyRepository,
  PolicySnapshot,
} from './types.ts';
import {
  checkApprovalValue,
  checkList,
  checkPasskey,
  fields,
  optionalText,
  parseJson,
  validateAll,
} from './validate.ts';

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

/** The value an entry should hold, given what the KV holds now (undefined: new). */
type NextValue = (old: string | undefined) => string;

export function createPolicyRepository(
  data: DataStore,
  clock: () => number = Date.now,
): PolicyRepository {
  const bump = (): Promise<void> =>
    data.put(META_CONTEXT, REVISION_KEY, `${clock()}-${randomBytes(6).toString('hex')}`);
  const readRevision = async (): Promise<string> =>
    (await data.get(META_CONTEXT, REVISION_KEY)) ?? '';

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
      await bump().catch(() => undefined);
      throw failure.err;
    }
    await bump();
  }

  /** One entry: written (and a new revision) only when its value changes. */
  async function put(
    context: string,
    key: string,
    nextValue: NextValue,
  ): Promise<{ added: boolean; stored: string }> {
    const old = await data.get(context, key);
    const stored = nextValue(old);
    if (old !== stored) await change([() => data.put(context, key, stored)]);
    return { added: old === undefined, stored };
  }

  /** A delete, then a new revision when it removed something (or may have: it failed). */
  async function removeAndBump(context: string, key: string): Promise<boolean> {
    let existed: boolean;
    try {
      existed = await data.delete(context, key);
    } catch (err) {
      await bump().catch(() => undefined);
      throw err;
    }
    if (existed) await bump();
    return existed;
  }

  /** A validated bulk import: counts, writes what changed, and with `replace` deletes the rest. */
  async function applyImport(
    context: string,
    wanted: ReadonlyMap<string, NextValue>,
    replace: boolean,
  ): Promise<ImportResult> {
    const existing = new Map(await data.list(context));
    const result: ImportResult = { added: 0, updated: 0, removed: 0 };
    const writes: Array<() => Promise<unknown>> = [];
    for (const [key, nextValue] of wanted) {
      const old = existing.get(key);
      const next = nextValue(old);
      if (old === undefined) result.added++;
      else result.updated++;
      if (old !== next) writes.push(() => data.put(context, key, next));
    }
    if (replace) {
      for (const key of existing.keys()) {
        if (wanted.has(key)) continue;
        result.removed++;
        writes.push(() => data.delete(context, key));
      }
    }
    await change(writes);
    return result;
  }

  /** The stored text of an approval entry, keeping the first addedAt. */
  const approvalNext =
    (kind: ApprovalKind, key: string, value: string, note: string | undefined): NextValue =>
    (old) => {
      const prev = old === undefined ? undefined : parseApproval(kind, key, old);
      return approvalValue(kind, value, prev?.addedAt ?? clock(), note);
    };

  /** The stored text of a passkey, keeping the first createdAt. */
  const passkeyNext =
    (passkey: string, expiresAt: number | null, user: string | undefined): NextValue =>
    (old) => {
      const prev = old === undefined ? undefined : parsePasskey(passkey, old);
      return passkeyValue(passkeyEntry(passkey, prev?.createdAt ?? clock(), expiresAt, user));
    };

  async function readApprovals(
    kind: ApprovalKind,
    list: 'allow' | 'deny',
  ): Promise<ApprovalEntry[]> {
    const rows = await data.list(approvalContext(kind, list));
    const out: ApprovalEntry[] = [];
    for (const [key, value] of rows) {
      const entry = parseApproval(kind, key, value);
      if (entry) out.push(entry);
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

  async function readLinks(): Promise<LinkEntry[]> {
    const out: LinkEntry[] = [];
    for (const [key, value] of await data.list(LINKS_CONTEXT)) {
      const entry = parseLink(key, value);
      if (entry) out.push(entry);
    }
    return out;
  }

  /** The stored text of a link, keeping the first addedAt of the same pair. */
  const linkNext =
    (link: LinkInput, learned: boolean): NextValue =>
    (old) => {
      const prev = old === undefined ? undefined : parseLink(link.first, old);
      const same = prev?.second === link.second;
      return linkValue({
        second: link.second,
        addedAt: same && prev ? prev.addedAt : clock(),
        learned: learned && (!same || prev?.learned === true),
        ...(link.note === undefined ? {} : { note: link.note }),
      });
    };

  async function readBans(nowMs: number): Promise<BanEntry[]> {
    const out: BanEntry[] = [];
    for (const [key, value] of await data.list(BANS_CONTEXT)) {
      const entry = parseBan(key, value);
      if (entry && entry.until > nowMs) out.push(entry);
    }
    return out;
  }

  return {
    revision: readRevision,

    listBans: readBans,

    async addBan(input) {
      // The longer of two bans of one address stands.
      const { added } = await put(BANS_CONTEXT, input.key, (old) => {
        const prev = old === undefined ? undefined : parseBan(input.key, old);
        if (prev !== undefined && prev.until >= input.until && old !== undefined) return old;
        return banValue({ ...input, addedAt: clock() });
      });
      return added;
    },

    removeBan: (key) => removeAndBump(BANS_CONTEXT, key),

    listLinks: readLinks,

    async addLink(input, options) {
      const link = { ...input, ...checkLink(input.first, input.second) };
      const existing = await readLinks();
      const learned = options?.learned === true;
      // A learned link never overrides what an operator imported.
      if (learned && existing.some((e) => e.first === link.first && !e.learned)) return false;
      checkNoConflict([link], existing);
      return (await put(LINKS_CONTEXT, link.first, linkNext(link, learned))).added;
    },

    async removeLink(hash) {
      const h = hash.toLowerCase();
      const owner = (await readLinks()).find((e) => e.first === h || e.second === h);
      return owner === undefined ? false : removeAndBump(LINKS_CONTEXT, owner.first);
    },

    async importLinks(entries, options) {
      const valid = validateAll(entries, 'links', (raw) => {
        const e = fields(raw, ['first', 'second', 'note'], 'a link', true);
        const link = checkLink(e.first, e.second);
        const note = optionalText(e.note, 'note');
        return note === undefined ? link : { ...link, note };
      });
      const replace = options?.replace === true;
      checkNoConflict(valid, replace ? [] : await readLinks());
      const wanted = new Map<string, NextValue>();
      for (const link of valid) wanted.set(link.first, linkNext(link, false));
      return applyImport(LINKS_CONTEXT, wanted, replace);
    },

    async snapshot(): Promise<PolicySnapshot> {
      // The revision first (see the header comment); then the lists, together.
      const revision = await readRevision();
      const [ta, td, ca, cd, pk, links, bans] = await Promise.all([
        readApprovals('torrents', 'allow'),
        readApprovals('torrents', 'deny'),
        readApprovals('clients', 'allow'),
        readApprovals('clients', 'deny'),
        readPasskeys(),
        readLinks(),
        readBans(clock()),
      ]);
      const values = (rows: ApprovalEntry[]): string[] => rows.map((e) => e.value);
      return {
        revision,
        torrents: { allow: values(ta), deny: values(td) },
        clients: { allow: values(ca), deny: values(cd) },
        passkeys: pk.map((p) => [p.passkey, p.expiresAt]),
        links: links.map((l) => [l.first, l.second]),
        bans: bans.map((b) => [b.key, b.until]),
      };
    },

    async listApproval(kind, list) {
      checkList(kind, list);
      return readApprovals(kind, list);
    },

    async addApproval(kind, list, value, note) {
      checkList(kind, list);
      const v = checkApprovalValue(kind, value);
      const key = approvalKey(kind, v);
      const next = approvalNext(kind, key, v, optionalText(note, 'note'));
      return (await put(approvalContext(kind, list), key, next)).added;
    },

    async removeApproval(kind, list, value) {
      checkList(kind, list);
      const key = approvalKey(kind, checkApprovalValue(kind, value));
      return removeAndBump(approvalContext(kind, list), key);
    },

    async importApproval(kind, list, entries, options) {
      checkList(kind, list);
      const valid = validateAll(entries, 'entries', (raw) => {
        const e = fields(raw, ['value', 'note'], 'an entry', true);
        return { value: checkApprovalValue(kind, e.value), note: optionalText(e.note, 'note') };
      });
      // A value listed twice counts once; the last note wins.
      const wanted = new Map<string, NextValue>();
      for (const { value, note } of valid) {
        const key = approvalKey(kind, value);
        wanted.set(key, approvalNext(kind, key, value, note));
      }
      return applyImport(approvalContext(kind, list), wanted, options?.replace === true);
    },

    listPasskeys() {
      return readPasskeys();
    },

    async createPasskey(input) {
      const e = fields(input, ['passkey', 'user', 'expiresAt'], 'passkey input', true);
      const passkey =
        e.passkey === undefined ? randomBytes(16).toString('hex') : checkPasskey(e.passkey);
      const user = optionalText(e.user, 'user');
      const expiry = checkExpiry(e.expiresAt, clock());
      const { stored } = await put(PASSKEYS_CONTEXT, passkey, passkeyNext(passkey, expiry, user));
      // Built just above from valid parts, so it parses (createdAt kept from an earlier create).
      return parsePasskey(passkey, stored) as PasskeyEntry;
    },

    async removePasskey(passkey) {
      return removeAndBump(PASSKEYS_CONTEXT, checkPasskey(passkey));
    },

    async importPasskeys(entries, options) {
      const now = clock();
      const valid = validateAll(entries, 'passkeys', (raw) => {
        const e = fields(raw, ['passkey', 'user', 'expiresAt'], 'an entry', true);
        return {
          passkey: checkPasskey(e.passkey),
          user: optionalText(e.user, 'user'),
          expiresAt: checkExpiry(e.expiresAt, now),
        };
      });
      const wanted = new Map<string, NextValue>();
      for (const { passkey, user, expiresAt } of valid)
        wanted.set(passkey, passkeyNext(passkey, expiresAt, user));
      return applyImport(PASSKEYS_CONTEXT, wanted, options?.replace === true);
    },
  };
}

/** The KV key of a checked approval value: the hash itself, or the prefix's bytes in hex. */
function approvalKey(kind: ApprovalKind, value: string): string {
  // CLIENT_PREFIX is ASCII only, so latin1 is the prefix's bytes.
  return kind === 'torrents' ? value : Buffer.from(value, 'latin1').toString('hex');
}

/** undefined and null mean "never expires"; a number must be finite ms in the future. */
function checkExpiry(expiresAt: unknown, nowMs: number): number | null {
  if (expiresAt === undefined || expiresAt === null) return null;
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt) || expiresAt <= nowMs) {
    throw new PolicyError('POLICY_ERR_BAD_EXPIRY');
  }
  return expiresAt;
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
