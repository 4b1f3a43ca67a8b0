// The policy contract (docs/policy.md): where approval lists and
// passkeys live in the DataStore (KV), the snapshot a gateway caches, and the
// pieces of the gateway's middleware chain. Shared by storage-api (admin API,
// GET /v1/policy), the gateway (cache + chain) and the CLI.
import type { DataStore } from '@shoal/storage';
import type { BanRepository } from './bans.ts';
import type { LinkRepository } from './links.ts';

// ---------------------------------------------------------------- KV layout
// Contexts and keys obey storage-api's KV_NAME: 1-256 of [A-Za-z0-9_.:@+=-].

export type ApprovalKind = 'torrents' | 'clients';
export type ApprovalList = 'allow' | 'deny';

/** `policy.torrents.allow`, `policy.torrents.deny`, `policy.clients.allow`, `policy.clients.deny`. */
export function approvalContext(kind: ApprovalKind, list: ApprovalList): string {
  return `policy.${kind}.${list}`;
}
/** Keys: passkeys themselves. */
export const PASSKEYS_CONTEXT = 'policy.passkeys';
/** One key, `revision`: a new random value after every change made through PolicyRepository. */
export const META_CONTEXT = 'policy.meta';
export const REVISION_KEY = 'revision';

/*
 * Keys and values (values are JSON text):
 * - torrents: key = info hash as 40 lowercase hex;
 *   value = {"addedAt": <ms>, "note"?: string}
 * - clients: key = lowercase hex of the prefix's bytes (a prefix may hold
 *   characters KV keys may not, e.g. "M7-2-2--" is fine but "S58B~" is not);
 *   value = {"prefix": "<the prefix as given>", "addedAt": <ms>, "note"?: string}
 * - passkeys: key = the passkey ([A-Za-z0-9_-]{8,128});
 *   value = {"createdAt": <ms>, "expiresAt": <ms> | null, "user"?: string}
 * - meta/revision: any string; '' (absent) before the first change.
 */

export const INFO_HASH_HEX = /^[0-9a-fA-F]{40}$/;
/** Printable ASCII without space, 1-20 bytes (a peer_id is 20 bytes). */
export const CLIENT_PREFIX = /^[\x21-\x7e]{1,20}$/;
export const PASSKEY = /^[A-Za-z0-9_-]{8,128}$/;
export const NOTE_MAX = 256;

// ---------------------------------------------------------------- admin view

export interface ApprovalEntry {
  /** Info hash (40 lowercase hex) or client prefix (as given). */
  value: string;
  note?: string;
  /** ms since the epoch. */
  addedAt: number;
}

export interface PasskeyEntry {
  passkey: string;
  user?: string;
  createdAt: number;
  /** ms since the epoch; null = never expires. */
  expiresAt: number | null;
}

export interface ImportResult {
  /** Entries that were not there before. */
  added: number;
  /** Entries already there (their note/expiry is overwritten). */
  updated: number;
  /** Entries removed because `replace` was asked and they were not in the import. */
  removed: number;
}

// ---------------------------------------------------------------- snapshot
/**
 * Everything a gateway needs, as served by storage-api's GET /v1/policy (JSON,
 * ETag = "<revision>") and as read from an embedded DataStore.
 */
export interface PolicySnapshot {
  revision: string;
  torrents: { allow: string[]; deny: string[] };
  /** Prefixes as given (not hex). */
  clients: { allow: string[]; deny: string[] };
  /** [passkey, expiresAt ms | null] */
  passkeys: Array<[string, number | null]>;
  /** Linked swarms of hybrid torrents (links.ts): [first, second], 40 hex each; absent from an older storage-api. */
  links?: Array<[string, string]>;
  /** Bans not yet expired (bans.ts): [key, until ms]; absent from an older storage-api. */
  bans?: Array<[string, number]>;
}

/**
 * Reads and changes policy data in a DataStore. Every change writes its
 * entries first, then a new revision, so a reader that reads the revision
 * before the entries (snapshot()) never keeps a stale list under a new
 * revision. Bad input throws PolicyError (POLICY_ERR_BAD_*); a bulk import
 * validates everything first and writes nothing if any entry is bad.
 */
export interface PolicyRepository extends LinkRepository, BanRepository {
  revision(): Promise<string>;
  snapshot(): Promise<PolicySnapshot>;
  listApproval(kind: ApprovalKind, list: ApprovalList): Promise<ApprovalEntry[]>;
  /** true when the entry is new. */
  addApproval(
    kind: ApprovalKind,
    list: ApprovalList,
    value: string,
    note?: string,
  ): Promise<boolean>;
  /** true when the entry existed. */
  removeApproval(kind: ApprovalKind, list: ApprovalList, value: string): Promise<boolean>;
  importApproval(
    kind: ApprovalKind,
    list: ApprovalList,
    entries: ReadonlyArray<{ value: string; note?: string }>,
    options?: { replace?: boolean },
  ): Promise<ImportResult>;
  listPasskeys(): Promise<PasskeyEntry[]>;
  /** A random 32-hex passkey unless one is given; expiresAt ms or null. */
  createPasskey(input: {
    passkey?: string;
    user?: string;
    expiresAt?: number | null;
  }): Promise<PasskeyEntry>;
  removePasskey(passkey: string): Promise<boolean>;
  importPasskeys(
    entries: ReadonlyArray<{ passkey: string; user?: string; expiresAt?: number | null }>,
    options?: { replace?: boolean },
  ): Promise<ImportResult>;
}

export type CreatePolicyRepository = (data: DataStore, clock?: () => number) => PolicyRepository;

// ---------------------------------------------------------------- gateway side
/** A snapshot turned into constant-time lookups (built once per revision). */
export interface CompiledPolicy {
  readonly revision: string;
  /** Raw 20-byte info hash. Throws PolicyError TORRENT_NOT_ALLOWED / TORRENT_DENIED per mode. */
  checkTorrent(infoHash: Buffer, mode: ApprovalMode): void;
  /** Raw 20-byte peer_id. Throws CLIENT_NOT_ALLOWED / CLIENT_DENIED per mode. */
  checkClient(peerId: Buffer, mode: ApprovalMode): void;
  /** Throws PASSKEY_MISSING (undefined), PASSKEY_UNKNOWN, PASSKEY_EXPIRED (expiresAt <= nowMs). */
  checkPasskey(passkey: string | undefined, nowMs: number): void;
  /** The swarm a raw 20-byte info hash announces into: its link's first hash, or itself. */
  swarmOf(infoHash: Buffer): Buffer;
  /** true when the hash is in a link (either side). */
  linked(infoHash: Buffer): boolean;
  /** The ban of a source address (banKeyOf) in force at nowMs, as its expiry; undefined when none. */
  bannedUntil(key: string, nowMs: number): number | undefined;
  /** true when the snapshot holds any ban (so a gateway can skip building keys). */
  readonly hasBans: boolean;
  readonly sizes: { torrents: number; clients: number; passkeys: number; links: number };
}

/** off: step skipped; allow: only listed entries pass; deny: listed entries are refused. */
export type ApprovalMode = 'off' | 'allow' | 'deny';

/** Per-address token bucket (IPv4 per address, IPv6 per /64). */
export interface RateLimiter {
  /** Takes one token; false when the address is over its limit. Synchronous, no allocation on the common path. */
  take(family: 4 | 6, address: Buffer, nowMs: number): boolean;
  /** Addresses tracked now (metric). */
  readonly size: number;
}

export interface RateLimiterOptions {
  /** Tokens added per second per address. */
  ratePerSecond: number;
  /** Bucket size: requests allowed at once. */
  burst: number;
  /** Most addresses tracked; beyond it, the least recently seen are forgotten (full bucket again). */
  maxAddresses: number;
}

export interface JwtVerifierOptions {
  issuer: string;
  /** Expected `aud`; unset = not checked. */
  audience?: string;
  /** A JWKS URL (fetched and cached by jose) or a JWKS document. Exactly one. */
  jwksUrl?: string;
  jwks?: { keys: object[] };
  /** Allowed `alg`s, e.g. ['RS256', 'ES256', 'EdDSA']. */
  algorithms: string[];
  /** Verified tokens remembered (until their exp) so a re-announce does not verify again. */
  cacheSize: number;
  clockToleranceSeconds: number;
}

export interface JwtVerifier {
  /**
   * Resolves when the token is valid for this torrent: signature by a key of
   * the set, `iss`, `aud` (if configured), `exp`/`nbf`, and an `infohash`
   * claim equal to the announce's info hash (40 hex, case-insensitive) as
   * chihaya's jwt middleware requires. Rejects with POLICY_ERR_JWT_MISSING
   * (undefined token) or POLICY_ERR_JWT_INVALID.
   */
  verify(token: string | undefined, infoHash: Buffer, nowMs: number): Promise<void>;
}
