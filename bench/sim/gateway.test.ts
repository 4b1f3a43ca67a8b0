import { describe, expect, it } from 'vitest';
import { Rng } from './events.ts';
import { GatewayPolicy, IntervalController } from './gateway.ts';
import { defaultOptions } from './scenarios.ts';

const options = defaultOptions('adaptive', { kind: 'none', at: 0 }, 1).gateway;

/** Samples once a second from `from` for `seconds`, all with the same queue. */
function run(c: IntervalController, from: number, seconds: number, waiting: number): number {
  for (let t = from; t < from + seconds; t++) c.sample(t, waiting, false);
  return from + seconds;
}

describe('IntervalController (docs/load.md)', () => {
  const high = options.LOAD_QUEUE_TARGET * 2;
  const low = 0;
  it('raises by LOAD_RAISE_FACTOR only after LOAD_RAISE_AFTER_MS of high samples, up to the ceiling', () => {
    const c = new IntervalController(options);
    let t = run(c, 0, 60, high);
    expect(c.interval).toBe(1800);
    t = run(c, t, 1, high);
    expect(c.interval).toBe(2700);
    run(c, t, 600, high);
    expect(c.interval).toBe(options.ANNOUNCE_INTERVAL_MAX_SECONDS);
    expect(c.load).toBe(2);
  });

  it('needs an unbroken window: one sample between the thresholds starts it again', () => {
    const c = new IntervalController(options);
    let t = run(c, 0, 50, high);
    t = run(c, t, 1, options.LOAD_QUEUE_TARGET * 0.7);
    t = run(c, t, 60, high);
    expect(c.interval).toBe(1800);
    run(c, t, 1, high);
    expect(c.interval).toBe(2700);
  });

  it('lowers by LOAD_LOWER_FACTOR per LOAD_LOWER_AFTER_MS of low samples, never under the base', () => {
    const c = new IntervalController(options);
    let t = run(c, 0, 121, high);
    expect(c.interval).toBe(4050);
    t = run(c, t, 300, low);
    expect(c.interval).toBe(4050);
    t = run(c, t, 1, low);
    expect(c.interval).toBe(3240);
    run(c, t, 3600, low);
    expect(c.interval).toBe(1800);
  });

  it('counts storage-api reports and an open breaker as load', () => {
    const c = new IntervalController(options);
    c.observeBatch(options.LOAD_BATCH_TARGET_MS / 5000, 0); // a fifth of the target, in seconds
    c.sample(0, 0, false);
    expect(c.load).toBeCloseTo(0.2);
    c.sample(1, 0, true);
    expect(c.load).toBe(1);
  });
});

describe('GatewayPolicy', () => {
  it('spreads a raised interval over a tenth of the raise and keeps the peer for its promise', () => {
    const p = new GatewayPolicy('adaptive', options);
    run(p.controller, 0, 61, options.LOAD_QUEUE_TARGET * 2);
    const rng = new Rng(2);
    const told = Array.from({ length: 1000 }, () => p.promisedInterval(rng));
    expect(Math.min(...told)).toBe(2700);
    expect(Math.max(...told)).toBe(2790);
    expect(p.lifetimeFor(2790)).toBe(2850);
    expect(new GatewayPolicy('today', options).lifetimeFor(2790)).toBe(
      options.PEER_LIFETIME_SECONDS,
    );
  });

  it('sheds seeder updates first and events last, only under the shedding policy', () => {
    const p = new GatewayPolicy('adaptive-shed', options);
    const at = (w: number): string[] =>
      (['seeder', 'leecher', 'event'] as const).filter((k) => p.shouldShed(k, w));
    expect(at(options.SHED_SEEDER_UPDATES_AT - 1)).toEqual([]);
    expect(at(options.SHED_SEEDER_UPDATES_AT)).toEqual(['seeder']);
    expect(at(options.SHED_LEECHER_UPDATES_AT)).toEqual(['seeder', 'leecher']);
    expect(at(options.SHED_EVENTS_AT)).toEqual(['seeder', 'leecher', 'event']);
    expect(new GatewayPolicy('adaptive', options).shouldShed('seeder', 1e9)).toBe(false);
  });

  it("today's retry-later says nothing of when to come back; the others give RETRY_LATER_INTERVAL_SECONDS", () => {
    expect(new GatewayPolicy('today', options).retryLater()).toEqual({ kind: 'failure' });
    expect(new GatewayPolicy('failure-interval', options).retryLater()).toEqual({
      kind: 'failure',
      interval: options.RETRY_LATER_INTERVAL_SECONDS,
      minInterval: options.RETRY_LATER_INTERVAL_SECONDS,
    });
  });
});
