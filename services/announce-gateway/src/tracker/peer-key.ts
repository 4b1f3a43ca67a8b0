// The key hash a store moves a client's entry by (docs/decisions.md "Peers
// that move"): SipHash-2-4 of the peer_id followed by the client's `key`,
// under a fixed key that every gateway shares, 8 bytes. Stores, storage-api's
// wire and Redis/PostgreSQL only ever see the hash, never the key. Not
// SHA-256: one-shot crypto.hash costs ~1.5 µs per announce here, SipHash
// ~0.2 µs (BENCHMARKS.md "The cost of each feature on the announce path"),
// and no secrecy rests on the hash: a client's key is the secret.
import { PEER_KEY_HASH_SIZE, sipHash24, sipKey } from '@shoal/protocol';

/** Fixed and public: the hash must agree across gateways and restarts. */
const HASH_KEY = sipKey(Buffer.from('shoal/peer-key/1', 'latin1'));
/** peer_id, a marker byte and a key of up to 64 bytes; longer keys get a buffer of their own. */
const scratch = Buffer.alloc(20 + 1 + 64);
const words = new Uint32Array(2);

/**
 * UDP keys arrive as 8 lowercase hex digits, HTTP keys as the client wrote
 * them (libtorrent: `%08X`): a hex key is compared as its number.
 */
export function keyOf(key: string): string {
  return /^[0-9a-fA-F]{1,8}$/.test(key) ? Number.parseInt(key, 16).toString(16) : key;
}

/** The value of a key of 1..8 hex digits, or -1. No regex or string on the announce path. */
function hexValue(key: string): number {
  if (key.length === 0 || key.length > 8) return -1;
  let v = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    const d =
      c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/**
 * undefined when the announce has no key: none on HTTP, an empty one, or 0
 * (BEP 15's field has no "absent", and a client that sends 0 sends no key).
 * Hashed: the peer_id, then 0x00 and a hex key's value as 4 bytes (so
 * libtorrent's `%08X` over HTTP and the UDP field agree), or 0x01 and any
 * other key's bytes.
 */
export function peerKeyHash(peerId: Buffer, key: string | undefined): Buffer | undefined {
  if (key === undefined || key.length === 0) return undefined;
  const hex = hexValue(key);
  if (hex === 0) return undefined;
  const at = peerId.copy(scratch, 0);
  let data: Buffer;
  if (hex > 0) {
    scratch[at] = 0;
    scratch.writeUInt32BE(hex, at + 1);
    data = scratch.subarray(0, at + 5);
  } else if (at + 1 + key.length <= scratch.length) {
    scratch[at] = 1;
    data = scratch.subarray(0, at + 1 + scratch.write(key, at + 1, 'latin1'));
  } else {
    data = Buffer.concat([peerId, Buffer.from([1]), Buffer.from(key, 'latin1')]);
  }
  sipHash24(HASH_KEY, data, words);
  const out = Buffer.allocUnsafe(PEER_KEY_HASH_SIZE);
  out.writeUInt32BE(words[0]!, 0);
  out.writeUInt32BE(words[1]!, 4);
  return out;
}
