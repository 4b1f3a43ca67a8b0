import { sipHash24, sipKey } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { peerKeyHash } from './peer-key.ts';

const PEER_ID = Buffer.from('-qB4650-abcdefghijkl', 'latin1');

describe('the key hash of peers that move', () => {
  it('is SipHash-2-4 of the peer_id, 0x00 and a hex key as 4 bytes, under the fixed key', () => {
    const words = new Uint32Array(2);
    sipHash24(
      sipKey(Buffer.from('shoal/peer-key/1', 'latin1')),
      Buffer.concat([PEER_ID, Buffer.from([0, 0x00, 0x1a, 0x2b, 0x3c])]),
      words,
    );
    const want = Buffer.alloc(8);
    want.writeUInt32BE(words[0]!, 0);
    want.writeUInt32BE(words[1]!, 4);
    expect(peerKeyHash(PEER_ID, '1A2B3C')).toEqual(want);
    // Fixed across releases: the stores keep hashes written by older gateways.
    expect(peerKeyHash(PEER_ID, '1A2B3C')?.toString('hex')).toBe('6e3265edb5c1a196');
  });

  it('hashes other keys as 0x01 and their bytes, so no hex key collides with them', () => {
    const words = new Uint32Array(2);
    sipHash24(
      sipKey(Buffer.from('shoal/peer-key/1', 'latin1')),
      Buffer.concat([PEER_ID, Buffer.from([1]), Buffer.from('key!', 'latin1')]),
      words,
    );
    expect(peerKeyHash(PEER_ID, 'key!')?.readUInt32BE(0)).toBe(words[0]);
    expect(peerKeyHash(PEER_ID, 'key!')?.readUInt32BE(4)).toBe(words[1]);
  });

  it('takes keys longer than its scratch buffer, and two calls never share a result', () => {
    const long = 'k'.repeat(200);
    const a = peerKeyHash(PEER_ID, long);
    const b = peerKeyHash(PEER_ID, 'deadbeef');
    expect(a).toHaveLength(8);
    expect(a).not.toEqual(b);
    expect(peerKeyHash(PEER_ID, long)).toEqual(a);
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
