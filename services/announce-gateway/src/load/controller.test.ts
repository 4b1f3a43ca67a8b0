// The controller's rule as docs/load.md states it, sample by sample.
import { describe, expect, it } from 'vitest';
import { IntervalController, jitteredInterval } from './controller.ts';

const OPTIONS = {
  baseSeconds: 1800,
  maxSeconds: 7200,
  high: 1,
  low: 0.5,
  raiseAfterMs: 60_000,
  lowerAfterMs: 300_000,
  raiseFactor: 1.5,
  lowerFactor: 1.25,
};

/** Samples every second from `fromMs` for `seconds` at `load`; returns the time after. */
function run(c: IntervalController, fromMs: number, seconds: number, load: number): number {
  let t = fromMs;
  for (let i = 0; i < seconds; i++, t += 1000) c.sample(t, load);
  return t;
}

describe('the interval controller', () => {
  it('raises by the factor only after a full window of high samples, and again after each window', () => {
    const c = new IntervalController(OPTIONS);
    let t = run(c, 0, 60, 1.2);
    expect(c.intervalSeconds).toBe(1800);
    c.sample(t, 1.2);
    t += 1000;
    expect(c.intervalSeconds).toBe(2700);
    t = run(c, t, 59, 1.2);
    expect(c.intervalSeconds).toBe(2700);
    c.sample(t, 1.2);
    expect(c.intervalSeconds).toBe(4050);
  });

  it('a sample between the thresholds restarts the window', () => {
    const c = new IntervalController(OPTIONS);
    let t = run(c, 0, 50, 2);
    t = run(c, t, 1, 0.7);
    t = run(c, t, 60, 2);
    expect(c.intervalSeconds).toBe(1800);
    run(c, t, 1, 2);
    expect(c.intervalSeconds).toBe(2700);
  });

  it('stops at the ceiling and comes back down slowly to the base, never below', () => {
    const c = new IntervalController(OPTIONS);
    let t = run(c, 0, 10 * 61, 5);
    expect(c.intervalSeconds).toBe(7200);
    const raisedAt = t;
    t = run(c, t, 301, 0.1);
    expect(c.intervalSeconds).toBe(5760);
    t = run(c, t, 7 * 300, 0.1);
    expect(c.intervalSeconds).toBe(1800);
    // Four raises up (about 4 min), seven lowerings down (35 min) with the defaults.
    expect(t - raisedAt).toBeGreaterThan(35 * 60_000);
  });

  it('stays at the base while pinned (an older storage-api), and never moves when max <= base', () => {
    const c = new IntervalController(OPTIONS);
    const t = run(c, 0, 200, 5);
    expect(c.intervalSeconds).toBeGreaterThan(1800);
    c.sample(t, 5, true);
    expect(c.intervalSeconds).toBe(1800);
    // Unpinned, the next raise needs a whole new window.
    run(c, t + 1000, 60, 5);
    expect(c.intervalSeconds).toBe(1800);
    const fixed = new IntervalController({ ...OPTIONS, maxSeconds: 900 });
    run(fixed, 0, 1000, 10);
    expect(fixed.intervalSeconds).toBe(1800);
  });
});

describe('the interval a client is told', () => {
  it("spreads the base by the operator's jitter and a raised interval by a tenth of the raise", () => {
    expect(jitteredInterval(1800, 1800, 7200, 0, () => 0.999)).toBe(1800);
    expect(jitteredInterval(1800, 1800, 7200, 60, () => 0.999)).toBe(1860);
    expect(jitteredInterval(4050, 1800, 7200, 60, () => 0)).toBe(4050);
    expect(jitteredInterval(4050, 1800, 7200, 60, () => 0.999)).toBe(4050 + 225);
    expect(jitteredInterval(7200, 1800, 7200, 60, () => 0.999)).toBe(7200);
  });
});
