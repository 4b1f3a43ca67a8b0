// The key hash a store moves a client's entry by (docs/decisions.md "Peers
// that move"): the first 8 bytes of SHA-256 over the peer_id and the
// client's `key`. Stores, storage-api's wire and Redis/PostgreSQL only ever
// see the hash, never the key.
import { hash } from 'node:crypto';
import { PEER_KEY_HASH_SIZE } from '@shoal/protocol';

/**
 * UDP keys arrive as 8 lowercase hex digits, HTTP keys as the client wrote
 * them (libtorrent: `%08X`): a hex key is compared as its number.
 */
export function keyOf(key: string): string {
  return /^[0-9a-fA-F]{1,8}$/.test(key) ? Number.parseInt(key, 16).toString(16) : key;
}

/**
 * undefined when the announce has no key: none on HTTP, an empty one, or 0
 * (BEP 15's field has no "absent", and a client that sends 0 sends no key).
 */
export function peerKeyHash(peerId: Buffer, key: string | undefined): Buffer | undefined {
  if (key === undefined || key.length === 0) return undefined;
  const k = keyOf(key);
  if (k === '0') return undefined;
  const digest = hash('sha256', Buffer.concat([peerId, Buffer.from(k, 'latin1')]), 'buffer');
  return digest.subarray(0, PEER_KEY_HASH_SIZE);
}
