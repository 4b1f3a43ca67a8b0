// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF",
// 2012): a keyed hash built for short inputs, here the connection-id tag.
// One call on 8-20 bytes costs a fraction of a native crypto call, whose
// fixed cost dominates inputs this short (numbers in connection-id.ts).
// 64-bit words are split into int32 halves held in locals: values kept
// in int32 range stay unboxed, so a call allocates nothing.

/** A 128-bit key as four little-endian int32: k0 low, k0 high, k1 low, k1 high. */
export type SipKey = readonly [number, number, number, number];

export function sipKey(key: Buffer): SipKey {
  if (key.length !== 16) throw new RangeError('SipHash key is 16 bytes');
  return [key.readInt32LE(0), key.readInt32LE(4), key.readInt32LE(8), key.readInt32LE(12)];
}

/** SipHash-2-4 of `data`; writes the 64-bit result to `out` as [high, low] halves. */
export function sipHash24(key: SipKey, data: Buffer, out: Uint32Array): void {
  const [k0l, k0h, k1l, k1h] = key;
  let v0h = k0h ^ 0x736f6d65;
  let v0l = k0l ^ 0x70736575;
  let v1h = k1h ^ 0x646f7261;
  let v1l = k1l ^ 0x6e646f6d;
  let v2h = k0h ^ 0x6c796765;
  let v2l = k0l ^ 0x6e657261;
  let v3h = k1h ^ 0x74656462;
  let v3l = k1l ^ 0x79746573;
  const len = data.length;
  const whole = len - (len & 7);
  // Blocks 0..whole/8-1 are message words; the last block holds the tail
  // bytes little-endian with the length's low byte on top; then finalization.
  for (let i = 0; i <= whole + 8; i += 8) {
    let mh = 0;
    let ml = 0;
    let rounds = 2;
    if (i < whole) {
      mh = data.readInt32LE(i + 4);
      ml = data.readInt32LE(i);
    } else if (i === whole) {
      mh = (len & 0xff) << 24;
      for (let j = whole; j < len; j++) {
        const shift = 8 * (j - whole);
        if (shift < 32) ml |= (data[j] as number) << shift;
        else mh |= (data[j] as number) << (shift - 32);
      }
    } else {
      v2l ^= 0xff;
      rounds = 4;
    }
    v3h ^= mh;
    v3l ^= ml;
    for (let r = 0; r < rounds; r++) {
      let t: number;
      // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
      t = (v0l + v1l) | 0;
      v0h = (v0h + v1h + (t >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = t;
      t = (v1h << 13) | (v1l >>> 19);
      v1l = (v1l << 13) | (v1h >>> 19);
      v1h = t ^ v0h;
      v1l ^= v0l;
      t = v0h;
      v0h = v0l;
      v0l = t;
      // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
      t = (v2l + v3l) | 0;
      v2h = (v2h + v3h + (t >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = t;
      t = (v3h << 16) | (v3l >>> 16);
      v3l = (v3l << 16) | (v3h >>> 16);
      v3h = t ^ v2h;
      v3l ^= v2l;
      // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
      t = (v0l + v3l) | 0;
      v0h = (v0h + v3h + (t >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = t;
      t = (v3h << 21) | (v3l >>> 11);
      v3l = (v3l << 21) | (v3h >>> 11);
      v3h = t ^ v0h;
      v3l ^= v0l;
      // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
      t = (v2l + v1l) | 0;
      v2h = (v2h + v1h + (t >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = t;
      t = (v1h << 17) | (v1l >>> 15);
      v1l = (v1l << 17) | (v1h >>> 15);
      v1h = t ^ v2h;
      v1l ^= v2l;
      t = v2h;
      v2h = v2l;
      v2l = t;
    }
    v0h ^= mh;
    v0l ^= ml;
  }
  out[0] = v0h ^ v1h ^ v2h ^ v3h;
  out[1] = v0l ^ v1l ^ v2l ^ v3l;
}
