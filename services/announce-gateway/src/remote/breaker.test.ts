import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitState } from './breaker.ts';

function breaker(overrides: Partial<ConstructorParameters<typeof CircuitBreaker>[0]> = {}) {
  let now = 1_000_000;
  const transitions: string[] = [];
  const b = new CircuitBreaker({
    failures: 3,
    failureRatio: 1,
    window: 10,
    openMs: 1000,
    clock: () => now,
    onStateChange: (to: CircuitState, from: CircuitState) => transitions.push(`${from}->${to}`),
    ...overrides,
  });
  return { b, transitions, advance: (ms: number) => (now += ms) };
}

describe('CircuitBreaker', () => {
  it('opens after the configured consecutive failures and refuses until the open period ends', () => {
    const { b, advance } = breaker();
    b.failure();
    b.failure();
    expect(b.state).toBe('closed');
    expect(b.tryAcquire()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    expect(b.refusing()).toBe(true);
    expect(b.tryAcquire()).toBe(false);
    advance(999);
    expect(b.tryAcquire()).toBe(false);
    advance(1);
    expect(b.refusing()).toBe(false);
  });

  it('a success between failures resets the consecutive count', () => {
    const { b } = breaker();
    b.failure();
    b.failure();
    b.success();
    b.failure();
    b.failure();
    expect(b.state).toBe('closed');
  });

  it('lets exactly one half-open probe through; its success closes the circuit', () => {
    const { b, advance, transitions } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    advance(1000);
    expect(b.tryAcquire()).toBe(true);
    expect(b.state).toBe('half-open');
    expect(b.refusing()).toBe(true);
    expect(b.tryAcquire()).toBe(false);
    b.success();
    expect(b.state).toBe('closed');
    expect(b.tryAcquire()).toBe(true);
    expect(transitions).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
  });

  it('a failed probe opens the circuit for another full period', () => {
    const { b, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    advance(1000);
    expect(b.tryAcquire()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    advance(500);
    expect(b.tryAcquire()).toBe(false);
    advance(500);
    expect(b.tryAcquire()).toBe(true);
  });

  it('opens on the failure ratio of the window even without a long failure run', () => {
    const { b } = breaker({ failures: 100, failureRatio: 0.5, window: 10 });
    // Alternating outcomes: never 2 failures in a row, but half of the last 10 failed.
    for (let i = 0; i < 4; i++) {
      b.failure();
      b.success();
    }
    expect(b.state).toBe('closed');
    b.failure();
    b.success();
    expect(b.state).toBe('closed');
    b.failure();
    expect(b.state).toBe('open');
  });

  it('ignores outcomes of requests sent before it opened', () => {
    const { b, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    b.failure();
    b.success();
    expect(b.state).toBe('open');
    expect(b.tryAcquire()).toBe(false);
    advance(1000);
    expect(b.tryAcquire()).toBe(true);
  });
});
