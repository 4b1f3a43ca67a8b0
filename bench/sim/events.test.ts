import { describe, expect, it } from 'vitest';
import { EventQueue, Rng } from './events.ts';

describe('EventQueue', () => {
  it('runs events in time order whatever the order they were scheduled in', () => {
    const q = new EventQueue();
    const seen: number[] = [];
    for (const t of [5, 1, 4, 2, 3]) q.at(t, () => seen.push(t));
    q.runUntil(10);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  it('runs events due at the same time first in, first out', () => {
    const q = new EventQueue();
    const seen: string[] = [];
    for (const name of ['a', 'b', 'c', 'd']) q.at(7, () => seen.push(name));
    q.runUntil(7);
    expect(seen).toEqual(['a', 'b', 'c', 'd']);
  });

  it('sets the clock to each event, never runs one in the past, and stops at the end', () => {
    const q = new EventQueue();
    const clock: number[] = [];
    q.at(2, () => {
      clock.push(q.now);
      q.at(1, () => clock.push(q.now)); // in the past: runs now, after this event
      q.after(3, () => clock.push(q.now));
    });
    q.at(20, () => clock.push(q.now));
    q.runUntil(10);
    expect(clock).toEqual([2, 2, 5]);
    expect(q.now).toBe(10);
    expect(q.pending).toBe(1);
    expect(q.ran).toBe(3);
  });
});

describe('Rng', () => {
  it('gives the same sequence for the same seed and another for another seed', () => {
    const draw = (seed: number): number[] => {
      const rng = new Rng(seed);
      return Array.from({ length: 5 }, () => rng.next());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('draws exponential gaps with the asked mean and picks keys by weight', () => {
    const rng = new Rng(1);
    const n = 100_000;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += rng.exponential(3);
    expect(sum / n).toBeCloseTo(3, 1);
    const counts = { a: 0, b: 0 };
    for (let i = 0; i < n; i++) counts[rng.pick({ a: 1, b: 3 })]++;
    expect(counts.b / n).toBeCloseTo(0.75, 2);
  });
});
