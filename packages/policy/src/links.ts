// Linked swarms of hybrid torrents (docs/policy.md "Hybrid torrents"): a
// BEP 52 hybrid torrent has a v1 info hash (SHA-1) and a v2 one (SHA-256,
// cut to 20 bytes on the wire), and clients announce both. A link makes the
// gateway keep both hashes' peers in one swarm, the first hash's. Stored as
// KV data beside the approval lists, so it travels in the policy snapshot to
// every gateway whatever the store.
import type { FastifyInstance } from 'fastify';
import { PolicyError } from './errors.ts';
import { INFO_HASH_HEX } from './types.ts';
import { fields, optionalText, parseJson, validateAll } from './validate.ts';

/** Keys: the first hash (40 lowercase hex); values: StoredLink as JSON. */
export const LINKS_CONTEXT = 'policy.links';

export interface LinkEntry {
  /** The swarm both hashes share: the v1 hash of an imported link (40 lowercase hex). */
  first: string;
  /** The hash whose announces join `first`'s swarm: the v2 hash, truncated (40 lowercase hex). */
  second: string;
  /** ms since the epoch. */
  addedAt: number;
  note?: string;
  /** true when a gateway learned it from a client announcing both hashes. */
  learned: boolean;
}

export interface LinkInput {
  first: string;
  second: string;
  note?: string;
}

interface StoredLink {
  second: string;
  addedAt: number;
  note?: string;
  learned?: true;
}

/** The two hashes of a link, lowercase; refuses bad hex and a hash linked to itself. */
export function checkLink(first: unknown, second: unknown): { first: string; second: string } {
  if (typeof first !== 'string' || !INFO_HASH_HEX.test(first))
    throw new PolicyError('POLICY_ERR_BAD_INFO_HASH', 'first');
  if (typeof second !== 'string' || !INFO_HASH_HEX.test(second))
    throw new PolicyError('POLICY_ERR_BAD_INFO_HASH', 'second');
  const a = first.toLowerCase();
  const b = second.toLowerCase();
  if (a === b) throw new PolicyError('POLICY_ERR_LINK_CONFLICT', 'a hash cannot link to itself');
  return { first: a, second: b };
}

/**
 * Refuses links that would put a hash in two swarms: each hash belongs to at
 * most one link. `existing` are the stored links; a link may replace the one
 * stored under its own first hash.
 */
export function checkNoConflict(
  wanted: ReadonlyArray<{ first: string; second: string }>,
  existing: ReadonlyArray<LinkEntry>,
): void {
  const owner = new Map<string, string>();
  const claim = (hash: string, first: string): void => {
    const other = owner.get(hash);
    if (other !== undefined && other !== first)
      throw new PolicyError('POLICY_ERR_LINK_CONFLICT', `${hash} is already linked (${other})`);
    owner.set(hash, first);
  };
  const replaced = new Set(wanted.map((w) => w.first));
  for (const e of existing) {
    if (replaced.has(e.first)) continue;
    claim(e.first, e.first);
    claim(e.second, e.first);
  }
  for (const w of wanted) {
    claim(w.first, w.first);
    claim(w.second, w.first);
  }
}

/** Fixed key order: an unchanged link writes the same text (and no new revision). */
export function linkValue(e: Omit<LinkEntry, 'first'>): string {
  const stored: StoredLink = { second: e.second, addedAt: e.addedAt };
  if (e.note !== undefined) stored.note = e.note;
  if (e.learned) stored.learned = true;
  return JSON.stringify(stored);
}

/** A stored link, or undefined when the key or value is junk (skipped, as approval entries are). */
export function parseLink(key: string, text: string): LinkEntry | undefined {
  if (!INFO_HASH_HEX.test(key)) return undefined;
  const v = parseJson(text);
  if (!v || typeof v.second !== 'string' || !INFO_HASH_HEX.test(v.second)) return undefined;
  if (typeof v.addedAt !== 'number' || !Number.isFinite(v.addedAt)) return undefined;
  if (v.note !== undefined && typeof v.note !== 'string') return undefined;
  const entry: LinkEntry = {
    first: key.toLowerCase(),
    second: v.second.toLowerCase(),
    addedAt: v.addedAt,
    learned: v.learned === true,
  };
  if (v.note !== undefined) entry.note = v.note;
  return entry;
}

/** What the repository offers for links (PolicyRepository has these). */
export interface LinkRepository {
  listLinks(): Promise<LinkEntry[]>;
  /** true when the link is new. A learned link never replaces an imported one. */
  addLink(input: LinkInput, options?: { learned?: boolean }): Promise<boolean>;
  /** By either hash; true when a link existed. */
  removeLink(hash: string): Promise<boolean>;
  importLinks(
    entries: readonly LinkInput[],
    options?: { replace?: boolean },
  ): Promise<{ added: number; updated: number; removed: number }>;
}

/** A link as the admin API shows it. */
export interface LinkView {
  first: string;
  second: string;
  note?: string;
  learned: boolean;
  /** ISO 8601. */
  addedAt: string;
}

function linkView(e: LinkEntry): LinkView {
  return {
    first: e.first,
    second: e.second,
    ...(e.note === undefined ? {} : { note: e.note }),
    learned: e.learned,
    addedAt: new Date(e.addedAt).toISOString(),
  };
}

function linkInput(raw: unknown, what: string): LinkInput {
  const e = fields(raw, ['first', 'second', 'note'], what, true);
  const link = checkLink(e.first, e.second);
  const note = optionalText(e.note, 'note');
  return note === undefined ? link : { ...link, note };
}

/** GET/PUT/DELETE /v1/admin/links and POST /v1/admin/links/import, in the admin routes' scope. */
export function registerLinkRoutes(
  scope: FastifyInstance,
  prefix: string,
  repo: LinkRepository,
): void {
  scope.get(`${prefix}/links`, async () => ({ links: (await repo.listLinks()).map(linkView) }));
  scope.put(`${prefix}/links/:first/:second`, async (request) => {
    const p = request.params as Record<string, unknown>;
    const link = checkLink(p.first, p.second);
    const note = optionalText(fields(request.body, ['note']).note, 'note');
    return { added: await repo.addLink(note === undefined ? link : { ...link, note }) };
  });
  scope.delete(`${prefix}/links/:hash`, async (request) => {
    const { hash } = request.params as Record<string, unknown>;
    if (typeof hash !== 'string' || !INFO_HASH_HEX.test(hash))
      throw new PolicyError('POLICY_ERR_BAD_INFO_HASH');
    return { existed: await repo.removeLink(hash.toLowerCase()) };
  });
  scope.post(`${prefix}/links/import`, async (request) => {
    const body = fields(request.body, ['links', 'replace']);
    if (body.replace !== undefined && typeof body.replace !== 'boolean')
      throw new PolicyError('POLICY_ERR_BAD_ENTRY', 'replace must be true or false');
    const links = validateAll(body.links, 'links', (entry) => linkInput(entry, 'a link'));
    return repo.importLinks(links, { replace: body.replace === true });
  });
}
