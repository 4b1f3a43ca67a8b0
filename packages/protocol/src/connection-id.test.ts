import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnectionIdCodec } from './connection-id.ts';

const secret = Buffer.from('0123456789abcdef0123456789abcdef');
const v4 = Buffer.from([203, 0, 113, 7]);
const v6 = Buffer.from('20010db8000000000000000000000001', 'hex');
const T0 = 1_700_000_000_000;

describe('ConnectionIdCodec', () => {
  const codec = new ConnectionIdCodec({ secret, maxAgeSeconds: 600 });

  it('issues 8 bytes: issue time in seconds then a 32-bit tag', () => {
    const id = codec.issue(v4, T0 + 999);
    expect(id).toHaveLength(8);
    expect(id.readUInt32BE(0)).toBe(T0 / 1000);
  });

  it('pins the wire format so replicas of different versions agree (golden bytes)', () => {
    // Expected values from an independent Python SipHash-2-4 over
    // time_be32 || address with key = SHA-256(secret)[0:16], low 32 bits.
    expect(codec.issue(v4, T0).toString('hex')).toBe('6553f10088b588cb');
    expect(codec.issue(v6, T0).toString('hex')).toBe('6553f1002c73cace');
  });

  it('lets a replica holding the same secret verify what another issued', () => {
    const other = new ConnectionIdCodec({ secret: Buffer.from(secret), maxAgeSeconds: 600 });
    expect(other.verify(codec.issue(v4, T0), v4, T0 + 5_000)).toBe(true);
    expect(other.verify(codec.issue(v6, T0), v6, T0 + 5_000)).toBe(true);
  });

  it('accepts an id for maxAgeSeconds, then refuses it', () => {
    const id = codec.issue(v4, T0);
    expect(codec.verify(id, v4, T0 + 600_999)).toBe(true);
    expect(codec.verify(id, v4, T0 + 601_000)).toBe(false);
  });

  it('tolerates a little future skew between replica clocks, not more', () => {
    const id = codec.issue(v4, T0 + 30_000);
    expect(codec.verify(id, v4, T0)).toBe(true);
    expect(codec.verify(codec.issue(v4, T0 + 31_000), v4, T0)).toBe(false);
  });

  it('refuses an id presented from another address, family or with another secret', () => {
    const id = codec.issue(v4, T0);
    expect(codec.verify(id, Buffer.from([203, 0, 113, 8]), T0)).toBe(false);
    expect(
      codec.verify(codec.issue(v6, T0), Buffer.concat([v6.subarray(0, 15), Buffer.from([2])]), T0),
    ).toBe(false);
    const stranger = new ConnectionIdCodec({ secret: randomBytes(32), maxAgeSeconds: 600 });
    expect(stranger.verify(id, v4, T0)).toBe(false);
  });

  it('refuses forged ids: a re-stamped time, a flipped bit, random bytes, a wrong length', () => {
    const id = codec.issue(v4, T0);
    const restamped = Buffer.from(id);
    restamped.writeUInt32BE(T0 / 1000 + 1, 0);
    expect(codec.verify(restamped, v4, T0 + 2_000)).toBe(false);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 63 }), (bit) => {
        const forged = Buffer.from(id);
        forged[bit >> 3] = (forged[bit >> 3] as number) ^ (1 << (bit & 7));
        expect(codec.verify(forged, v4, T0)).toBe(false);
      }),
      { numRuns: 64 },
    );
    let accepted = 0;
    for (let k = 0; k < 2000; k++) {
      const guess = randomBytes(8);
      guess.writeUInt32BE(T0 / 1000, 0);
      if (codec.verify(guess, v4, T0)) accepted++;
    }
    expect(accepted).toBe(0);
    expect(codec.verify(id.subarray(0, 7), v4, T0)).toBe(false);
  });

  it('refuses a short secret or a bad age at construction with a coded error', () => {
    expect(() => new ConnectionIdCodec({ secret: Buffer.alloc(15), maxAgeSeconds: 60 })).toThrow(
      expect.objectContaining({ code: 'PROTO_ERR_BAD_CONFIG' }),
    );
    expect(() => new ConnectionIdCodec({ secret, maxAgeSeconds: -1 })).toThrow(
      expect.objectContaining({ code: 'PROTO_ERR_BAD_CONFIG' }),
    );
  });
});
