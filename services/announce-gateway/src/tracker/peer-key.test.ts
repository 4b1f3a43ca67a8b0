import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { peerKeyHash } from './peer-key.ts';

const PEER_ID = Buffer.from('-qB4650-abcdefghijkl', 'latin1');

describe('the key hash of peers that move', () => {
  it('is the first 8 bytes of SHA-256 over the peer_id and the key', () => {
    const want = createHash('sha256')
      .update(Buffer.concat([PEER_ID, Buffer.from('1a2b3c', 'latin1')]))
      .digest()
      .subarray(0, 8);
    expect(peerKeyHash(PEER_ID, '1A2B3C')).toEqual(want);
  });

  it("names the same client over HTTP (libtorrent's %08X) and UDP (8 lowercase hex digits)", () => {
    expect(peerKeyHash(PEER_ID, '001A2B3C')).toEqual(peerKeyHash(PEER_ID, '001a2b3c'));
    expect(peerKeyHash(PEER_ID, '001A2B3C')).toEqual(peerKeyHash(PEER_ID, '1a2b3c'));
  });

  it('differs with the peer_id or the key, and keeps non-hex keys as they are', () => {
    const other = Buffer.from('-qB4650-abcdefghijkm', 'latin1');
    expect(peerKeyHash(other, 'deadbeef')).not.toEqual(peerKeyHash(PEER_ID, 'deadbeef'));
    expect(peerKeyHash(PEER_ID, 'deadbeee')).not.toEqual(peerKeyHash(PEER_ID, 'deadbeef'));
    expect(peerKeyHash(PEER_ID, 'not hex!')).toHaveLength(8);
  });

  it('is undefined without a key: absent, empty, or 0 (UDP cannot say absent)', () => {
    expect(peerKeyHash(PEER_ID, undefined)).toBeUndefined();
    expect(peerKeyHash(PEER_ID, '')).toBeUndefined();
    expect(peerKeyHash(PEER_ID, '00000000')).toBeUndefined();
    expect(peerKeyHash(PEER_ID, '0')).toBeUndefined();
  });
});
