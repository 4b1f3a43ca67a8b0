// Reproducible randomness for input-abuse tests: every run draws a seed,
// prints it in failures, and SHOAL_FUZZ_SEED replays one.

export interface Rng {
  readonly seed: number;
  /** [0, 1) */
  next(): number;
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  bytes(n: number): Buffer;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

/** mulberry32: tiny, fast, and good enough to pick fuzz inputs. */
export function createRng(
  seed = Number(process.env.SHOAL_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32)),
): Rng {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return {
    seed,
    next,
    int,
    bytes(n) {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = int(0, 255);
      return b;
    },
    pick(xs) {
      const x = xs[int(0, xs.length - 1)];
      if (x === undefined) throw new RangeError('pick from an empty list');
      return x;
    },
    chance: (p) => next() < p,
  };
}

/** Overwrites 1..maxFlips random bytes of a copy of `packet`. */
export function mutate(rng: Rng, packet: Buffer, maxFlips = 4, from = 0): Buffer {
  const out = Buffer.from(packet);
  const flips = rng.int(1, maxFlips);
  for (let i = 0; i < flips; i++) out[rng.int(from, out.length - 1)] = rng.int(0, 255);
  return out;
}
