import { describe, expect, it } from 'vitest';
import { createRateLimiter } from './rate-limit.ts';

const v4 = (s: string): Buffer => Buffer.from(s.split('.').map(Number));
function v6(groups: number[]): Buffer {
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}
const T = 1_000_000;

/** How many takes in a row succeed at one instant (bounded). */
function drain(take: () => boolean, max = 1000): number {
  let n = 0;
  while (n < max && take()) n++;
  return n;
}

describe('createRateLimiter', () => {
  it('allows a burst, then refuses until tokens refill at the rate', () => {
    const rl = createRateLimiter({ ratePerSecond: 2, burst: 5, maxAddresses: 100 });
    const a = v4('192.0.2.1');
    expect(drain(() => rl.take(4, a, T))).toBe(5);
    expect(rl.take(4, a, T + 499)).toBe(false);
    expect(rl.take(4, a, T + 500)).toBe(true);
    expect(rl.take(4, a, T + 500)).toBe(false);
    // A long pause refills to the burst, not beyond.
    expect(drain(() => rl.take(4, a, T + 60_000))).toBe(5);
  });

  it('keeps addresses apart; a clock stepping back adds no tokens', () => {
    const rl = createRateLimiter({ ratePerSecond: 1, burst: 2, maxAddresses: 100 });
    expect(drain(() => rl.take(4, v4('192.0.2.1'), T))).toBe(2);
    expect(drain(() => rl.take(4, v4('192.0.2.2'), T))).toBe(2);
    expect(rl.take(4, v4('192.0.2.1'), T - 10_000)).toBe(false);
    expect(rl.size).toBe(2);
  });

  it('groups IPv6 by /64 and IPv4-mapped IPv6 with the IPv4 address', () => {
    const rl = createRateLimiter({ ratePerSecond: 1, burst: 3, maxAddresses: 100 });
    const net = [0x2001, 0xdb8, 0, 1];
    expect(rl.take(6, v6([...net, 0, 0, 0, 1]), T)).toBe(true);
    expect(rl.take(6, v6([...net, 0xffff, 1, 2, 3]), T)).toBe(true);
    expect(rl.take(6, v6([...net, 9, 9, 9, 9]), T)).toBe(true);
    expect(rl.take(6, v6([...net, 7, 7, 7, 7]), T)).toBe(false);
    // Next /64 is a different bucket.
    expect(rl.take(6, v6([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]), T)).toBe(true);
    expect(rl.size).toBe(2);

    const mapped = v6([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0263]); // ::ffff:192.0.2.99
    expect(drain(() => rl.take(4, v4('192.0.2.99'), T))).toBe(3);
    expect(rl.take(6, mapped, T)).toBe(false);
    expect(rl.size).toBe(3);
  });

  it('tracks at most maxAddresses, forgetting the least recently seen first', () => {
    const rl = createRateLimiter({ ratePerSecond: 0.001, burst: 1, maxAddresses: 3 });
    const a = v4('198.51.100.1');
    const b = v4('198.51.100.2');
    const c = v4('198.51.100.3');
    const d = v4('198.51.100.4');
    for (const x of [a, b, c]) expect(rl.take(4, x, T)).toBe(true);
    // Recency counts to the second: a seen again within it is not moved.
    expect(rl.take(4, a, T + 999)).toBe(false);
    // A second later it is (still refused: the refill is far slower): b is now the oldest.
    expect(rl.take(4, a, T + 1000)).toBe(false);
    expect(rl.take(4, d, T + 1000)).toBe(true);
    expect(rl.size).toBe(3);
    // b was forgotten, so it starts with a full bucket; a was kept, still empty.
    expect(rl.take(4, b, T + 1000)).toBe(true);
    expect(rl.take(4, a, T + 1000)).toBe(false);
    for (let i = 0; i < 1000; i++) rl.take(4, Buffer.from([10, 0, i >> 8, i & 255]), T);
    expect(rl.size).toBe(3);
  });

  it('rejects nonsense options', () => {
    expect(() => createRateLimiter({ ratePerSecond: 0, burst: 1, maxAddresses: 1 })).toThrow(
      RangeError,
    );
    expect(() => createRateLimiter({ ratePerSecond: 1, burst: 0, maxAddresses: 1 })).toThrow(
      RangeError,
    );
    expect(() => createRateLimiter({ ratePerSecond: 1, burst: 1, maxAddresses: 0 })).toThrow(
      RangeError,
    );
  });
});
