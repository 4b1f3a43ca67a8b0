// A PolicySnapshot turned into the lookups the gateway's chain runs on every
// announce (docs/policy.md "The chain in the gateway"). Built once per
// revision; every check is a hash lookup (clients: one per distinct listed
// prefix length, at most 20).
import { PolicyError } from './errors.ts';
import type { PolicyErrorCode } from './errors.ts';
import { CLIENT_PREFIX, INFO_HASH_HEX } from './types.ts';
import type { ApprovalMode, CompiledPolicy, PolicySnapshot } from './types.ts';

/** What a gateway enforces before its first load: nothing listed, revision ''. */
export const EMPTY_SNAPSHOT: PolicySnapshot = Object.freeze({
  revision: '',
  torrents: Object.freeze({ allow: [], deny: [] }),
  clients: Object.freeze({ allow: [], deny: [] }),
  passkeys: [],
  links: [],
});

// Refusals can be frequent (a banned torrent's swarm re-announces forever),
// so each refusal throws one error object made once: no stack capture per
// announce. Callers read only code / failureReason / httpStatus; the stack
// points here, which is all it could usefully say.
function refusal(code: PolicyErrorCode): PolicyError {
  return new PolicyError(code);
}
const TORRENT_NOT_ALLOWED = refusal('POLICY_ERR_TORRENT_NOT_ALLOWED');
const TORRENT_DENIED = refusal('POLICY_ERR_TORRENT_DENIED');
const CLIENT_NOT_ALLOWED = refusal('POLICY_ERR_CLIENT_NOT_ALLOWED');
const CLIENT_DENIED = refusal('POLICY_ERR_CLIENT_DENIED');
const PASSKEY_MISSING = refusal('POLICY_ERR_PASSKEY_MISSING');
const PASSKEY_UNKNOWN = refusal('POLICY_ERR_PASSKEY_UNKNOWN');
const PASSKEY_EXPIRED = refusal('POLICY_ERR_PASSKEY_EXPIRED');

/** Listed client prefixes grouped by byte length, shortest first. */
interface PrefixSet {
  lengths: number[];
  /** sets[i] holds the prefixes of lengths[i] bytes (numbers up to 6 bytes, latin1 beyond). */
  sets: Array<Set<number | string>>;
}

/*
 * Info hashes are kept as 20-character latin1 strings (one char per byte) and
 * looked up with `buf.toString('latin1', 0, 20)`: a quick micro-benchmark (100k
 * listed hashes, half hits) put latin1 keys slightly ahead of hex (half the
 * string length to build and hash, about 5-10%), and base64 no better and
 * noisier. A peer_id prefix is ASCII, so its latin1 string is the prefix.
 */
export function compilePolicy(snapshot: PolicySnapshot): CompiledPolicy {
  const torrentAllow = hashSet(snapshot.torrents.allow);
  const torrentDeny = hashSet(snapshot.torrents.deny);
  const clientAllow = prefixSet(snapshot.clients.allow);
  const clientDeny = prefixSet(snapshot.clients.deny);
  // null (never expires) becomes +Infinity so every value is a number.
  const passkeys = new Map<string, number>();
  for (const entry of snapshot.passkeys) {
    const [key, expiresAt] = entry;
    if (typeof key !== 'string') continue;
    passkeys.set(key, typeof expiresAt === 'number' ? expiresAt : Number.POSITIVE_INFINITY);
  }
  const links = linkMap(snapshot.links ?? []);
  const bans = new Map<string, number>();
  for (const ban of snapshot.bans ?? []) {
    if (Array.isArray(ban) && typeof ban[0] === 'string' && typeof ban[1] === 'number')
      bans.set(ban[0], ban[1]);
  }

  return {
    revision: snapshot.revision,
    sizes: {
      torrents: torrentAllow.size + torrentDeny.size,
      clients: prefixCount(clientAllow) + prefixCount(clientDeny),
      passkeys: passkeys.size,
      links: links.size / 2,
    },

    swarmOf(infoHash: Buffer): Buffer {
      return links.size === 0 ? infoHash : (links.get(infoHash) ?? infoHash);
    },

    linked(infoHash: Buffer): boolean {
      return links.size !== 0 && links.get(infoHash) !== undefined;
    },

    hasBans: bans.size > 0,

    bannedUntil(key: string, nowMs: number): number | undefined {
      const until = bans.get(key);
      return until !== undefined && until > nowMs ? until : undefined;
    },

    checkTorrent(infoHash: Buffer, mode: ApprovalMode): void {
      switch (mode) {
        case 'off':
          return;
        case 'allow':
          if (!torrentAllow.has(infoHash)) throw TORRENT_NOT_ALLOWED;
          return;
        case 'deny':
          if (torrentDeny.has(infoHash)) throw TORRENT_DENIED;
          return;
      }
    },

    checkClient(peerId: Buffer, mode: ApprovalMode): void {
      switch (mode) {
        case 'off':
          return;
        case 'allow':
          if (!matchesPrefix(clientAllow, peerId)) throw CLIENT_NOT_ALLOWED;
          return;
        case 'deny':
          if (matchesPrefix(clientDeny, peerId)) throw CLIENT_DENIED;
          return;
      }
    },

    checkPasskey(passkey: string | undefined, nowMs: number): void {
      if (passkey === undefined) throw PASSKEY_MISSING;
      const expiresAt = passkeys.get(passkey);
      if (expiresAt === undefined) throw PASSKEY_UNKNOWN;
      if (expiresAt <= nowMs) throw PASSKEY_EXPIRED;
    },
  };
}

/**
 * A set of 20-byte info hashes looked up without building a string: the
 * first 6 bytes are a number key, the other 14 three numbers compared on a
 * hit (a chain of entries when two hashes share their first 6 bytes). Building
 * a latin1 key per announce cost about 0.4 us (profile of the UDP hot path,
 * BENCHMARKS.md "The cost of the policy chain"); this costs a Map lookup.
 */
interface HashEntry<V> {
  a: number;
  b: number;
  c: number;
  value: V;
  next: HashEntry<V> | undefined;
}

export class HashMap<V> {
  readonly #map = new Map<number, HashEntry<V>>();
  #size = 0;
  get size(): number {
    return this.#size;
  }
  set(hash: Buffer, value: V): void {
    const a = hash.readUInt32BE(6);
    const b = hash.readUInt32BE(10);
    const c = hash.readUInt32BE(14) * 65536 + hash.readUInt16BE(18);
    const key = hash.readUIntBE(0, 6);
    const head = this.#map.get(key);
    for (let e = head; e !== undefined; e = e.next)
      if (e.a === a && e.b === b && e.c === c) {
        e.value = value;
        return;
      }
    this.#map.set(key, { a, b, c, value, next: head });
    this.#size++;
  }
  get(hash: Buffer): V | undefined {
    let e = this.#map.get(hash.readUIntBE(0, 6));
    if (e === undefined) return undefined;
    const a = hash.readUInt32BE(6);
    const b = hash.readUInt32BE(10);
    const c = hash.readUInt32BE(14) * 65536 + hash.readUInt16BE(18);
    for (; e !== undefined; e = e.next) if (e.a === a && e.b === b && e.c === c) return e.value;
    return undefined;
  }
}

export class HashSet {
  readonly #map = new HashMap<true>();
  get size(): number {
    return this.#map.size;
  }
  add(hash: Buffer): void {
    this.#map.set(hash, true);
  }
  has(hash: Buffer): boolean {
    return this.#map.get(hash) === true;
  }
}

/**
 * Both hashes of each link to the link's first hash (docs/policy.md "Hybrid
 * torrents"). A hash already taken by an earlier link keeps it: storage-api
 * refuses such links, so only a hand-edited KV can hold them.
 */
function linkMap(links: ReadonlyArray<readonly [string, string]>): HashMap<Buffer> {
  const map = new HashMap<Buffer>();
  for (const link of links) {
    if (!Array.isArray(link)) continue;
    const [first, second] = link;
    if (typeof first !== 'string' || !INFO_HASH_HEX.test(first)) continue;
    if (typeof second !== 'string' || !INFO_HASH_HEX.test(second)) continue;
    const a = Buffer.from(first, 'hex');
    const b = Buffer.from(second, 'hex');
    if (a.equals(b) || map.get(a) !== undefined || map.get(b) !== undefined) continue;
    map.set(a, a);
    map.set(b, a);
  }
  return map;
}

/**
 * Entries that are not 40 hex are skipped: a snapshot comes over the network
 * from storage-api, and one bad line must not stop the gateway from enforcing
 * the rest.
 */
function hashSet(hashes: readonly string[]): HashSet {
  const set = new HashSet();
  for (const h of hashes) {
    if (typeof h === 'string' && INFO_HASH_HEX.test(h)) set.add(Buffer.from(h, 'hex'));
  }
  return set;
}

/** Prefixes of at most this many bytes are number keys (readUIntBE): no string per lookup. */
const NUMERIC_PREFIX_MAX = 6;

function prefixSet(prefixes: readonly string[]): PrefixSet {
  const byLength = new Map<number, Set<number | string>>();
  for (const p of prefixes) {
    if (typeof p !== 'string' || !CLIENT_PREFIX.test(p)) continue;
    let set = byLength.get(p.length);
    if (!set) byLength.set(p.length, (set = new Set()));
    set.add(prefixKey(Buffer.from(p, 'latin1'), p.length));
  }
  const lengths = [...byLength.keys()].sort((a, b) => a - b);
  return { lengths, sets: lengths.map((n) => byLength.get(n) ?? new Set()) };
}

function prefixKey(bytes: Buffer, len: number): number | string {
  return len <= NUMERIC_PREFIX_MAX ? bytes.readUIntBE(0, len) : bytes.toString('latin1', 0, len);
}

function prefixCount(p: PrefixSet): number {
  let n = 0;
  for (const set of p.sets) n += set.size;
  return n;
}

function matchesPrefix(p: PrefixSet, peerId: Buffer): boolean {
  const lengths = p.lengths;
  for (let i = 0; i < lengths.length; i++) {
    const len = lengths[i] as number;
    if (len > peerId.length) return false;
    if ((p.sets[i] as Set<number | string>).has(prefixKey(peerId, len))) return true;
  }
  return false;
}
