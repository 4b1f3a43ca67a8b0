// Input checks every driver runs before touching its backend, so a bad
// announce is the same coded STORE_ERR_BAD_INPUT on memory, Redis and
// PostgreSQL (the conformance suite holds them to it).
import { StoreError } from './errors.ts';
import type { PeerAnnounce } from './types.ts';

export const INFO_HASH_LEN = 20;
export const PEER_ID_LEN = 20;

export function badInput(detail: string): StoreError {
  return new StoreError('STORE_ERR_BAD_INPUT', detail);
}

export function validateAnnounce(a: PeerAnnounce): void {
  if (a.infoHash.length !== INFO_HASH_LEN) throw badInput('infoHash must be 20 bytes');
  if (a.peerId.length !== PEER_ID_LEN) throw badInput('peerId must be 20 bytes');
  if (a.family === 4) {
    if (a.address.length !== 4) throw badInput('an IPv4 address must be 4 bytes');
  } else if (a.family === 6) {
    if (a.address.length !== 16) throw badInput('an IPv6 address must be 16 bytes');
  } else {
    throw badInput('family must be 4 or 6');
  }
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 0xffff)
    throw badInput('port out of range');
  if (!Number.isInteger(a.numWant) || a.numWant < 0)
    throw badInput('numWant must be a non-negative integer');
}
