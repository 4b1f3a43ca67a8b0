// The two optional batch headers (docs/load.md): golden text, round trips,
// and that nothing a peer could send them makes a side throw.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatLoadReport, parseLifetimeHeader, parseLoadReport } from './storage-rpc-load.ts';

describe('the load report header', () => {
  it('is written with three decimals and read back', () => {
    expect(formatLoadReport({ latency: 0.42, queue: 0.0125 })).toBe('latency=0.420, queue=0.013');
    expect(parseLoadReport('latency=0.420, queue=0.013')).toEqual({ latency: 0.42, queue: 0.013 });
    expect(parseLoadReport('latency=5,queue=0')).toEqual({ latency: 5, queue: 0 });
  });

  it('clamps what it cannot trust and reads nothing from a malformed or absent header', () => {
    expect(formatLoadReport({ latency: Number.NaN, queue: 1e9 })).toBe(
      'latency=0.000, queue=1000.000',
    );
    for (const bad of [
      undefined,
      '',
      'latency=1',
      'queue=1, latency=1',
      'latency=-1, queue=0',
      ['latency=1, queue=1'],
    ])
      expect(parseLoadReport(bad)).toBeUndefined();
  });

  it('round-trips any pair of ratios to three decimals, and never throws on any text', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 999, noNaN: true }),
        fc.double({ min: 0, max: 999, noNaN: true }),
        (latency, queue) => {
          const back = parseLoadReport(formatLoadReport({ latency, queue }));
          expect(back?.latency).toBeCloseTo(latency, 2);
          expect(back?.queue).toBeCloseTo(queue, 2);
        },
      ),
    );
    fc.assert(fc.property(fc.string(), (s) => void parseLoadReport(s)));
  });
});

describe('the promised lifetime header', () => {
  it('reads a positive whole number of seconds and nothing else', () => {
    expect(parseLifetimeHeader('7260')).toBe(7260);
    for (const bad of [undefined, '', '0', '-5', '1.5', '07', 'abc', '1234567890', ['60']])
      expect(parseLifetimeHeader(bad)).toBeUndefined();
    fc.assert(fc.property(fc.string(), (s) => void parseLifetimeHeader(s)));
  });
});
