// The discrete-event core of the reliability simulation (RELIABILITY.md
// "Simulation"): a clock, a queue of events ordered by time, and a seeded
// random source, so one seed always gives one run.
import TinyQueue from 'tinyqueue';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

interface Scheduled {
  readonly at: number;
  /** Insertion order: events due at the same time run first in, first out. */
  readonly seq: number;
  readonly run: () => void;
}

const byTimeThenSeq = (a: Scheduled, b: Scheduled): number => a.at - b.at || a.seq - b.seq;

export class EventQueue {
  #queue = new TinyQueue<Scheduled>([], byTimeThenSeq);
  #seq = 0;
  #now = 0;
  #ran = 0;

  get now(): number {
    return this.#now;
  }

  /** Events run so far. */
  get ran(): number {
    return this.#ran;
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Runs `run` at time `at` (seconds); a time in the past means now. */
  at(at: number, run: () => void): void {
    this.#queue.push({ at: Math.max(at, this.#now), seq: this.#seq++, run });
  }

  after(delaySeconds: number, run: () => void): void {
    this.at(this.#now + delaySeconds, run);
  }

  /** Runs every event due up to and including `end`, then sets the clock to `end`. */
  runUntil(end: number): void {
    for (;;) {
      const next = this.#queue.peek();
      if (next === undefined || next.at > end) break;
      this.#queue.pop();
      this.#now = next.at;
      this.#ran++;
      next.run();
    }
    this.#now = Math.max(this.#now, end);
  }
}

export class Rng {
  readonly #gen: RandomGenerator;

  constructor(seed: number) {
    this.#gen = xoroshiro128plus(seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return uniformFloat64(this.#gen);
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** Exponentially distributed with this mean (Poisson arrivals' gaps). */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A key of `weights` drawn in proportion to its weight. */
  pick<K extends string>(weights: Readonly<Record<K, number>>): K {
    const keys = Object.keys(weights) as K[];
    let total = 0;
    for (const k of keys) total += weights[k];
    let x = this.next() * total;
    for (const k of keys) {
      x -= weights[k];
      if (x < 0) return k;
    }
    const last = keys[keys.length - 1];
    if (last === undefined) throw new Error('pick from no weights');
    return last;
  }
}
