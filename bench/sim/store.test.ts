import { describe, expect, it } from 'vitest';
import { Rng } from './events.ts';
import { Store } from './store.ts';

const OPEN = { queueMax: 1e9, timeoutSeconds: 1e9, outages: [] };

describe('Store', () => {
  it('waits as an M/D/1 queue: Poisson arrivals wait rho / (2 mu (1 - rho)) on average', () => {
    // Pollaczek-Khinchine for deterministic service.
    const mu = 1;
    const rho = 0.7;
    const store = new Store({ ...OPEN, opsPerSecond: mu });
    const rng = new Rng(3);
    let t = 0;
    let wait = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      t += rng.exponential(1 / (rho * mu));
      const a = store.admit(t);
      if (a.kind !== 'queued' || a.writtenAt === undefined) throw new Error('refused');
      wait += a.writtenAt - t - 1 / mu;
    }
    const expected = rho / (2 * mu * (1 - rho));
    expect(Math.abs(wait / n - expected) / expected).toBeLessThan(0.05);
  });

  it('under constant overload completes its rate and fails what waited out the deadline at no cost', () => {
    const store = new Store({ opsPerSecond: 10, queueMax: 1e9, timeoutSeconds: 2, outages: [] });
    let written = 0;
    let failed = 0;
    for (let t = 0; t < 100; t += 1 / 20) {
      const a = store.admit(t);
      if (a.kind !== 'queued') throw new Error('refused');
      if (a.writtenAt !== undefined) written++;
      if (!a.ok) {
        failed++;
        expect(a.answerAt - t).toBeGreaterThanOrEqual(2 - 1e-9);
      }
    }
    // 100 s at 10 ops/s, the last two seconds' worth still queued.
    expect(written).toBeGreaterThanOrEqual(1000);
    expect(written).toBeLessThanOrEqual(1021);
    expect(failed).toBeGreaterThan(900);
  });

  it('refuses at once past its queue bound and while down, and loses what an outage caught', () => {
    const store = new Store({
      opsPerSecond: 1,
      queueMax: 3,
      timeoutSeconds: 100,
      outages: [{ start: 10, end: 16 }],
    });
    expect(store.admit(0).kind).toBe('queued');
    store.admit(0);
    store.admit(0);
    expect(store.admit(0)).toEqual({ kind: 'refused', why: 'full' });
    expect(store.depth(0)).toBe(3);
    expect(store.depth(3)).toBe(0);
    // Queued at 8.5 behind work until 9, done at 10: the outage starting at 10 takes it.
    store.admit(8);
    expect(store.admit(8.5)).toEqual({
      kind: 'queued',
      answerAt: 10,
      ok: false,
      writtenAt: undefined,
    });
    expect(store.admit(12)).toEqual({ kind: 'refused', why: 'down' });
    // After the outage the queue it held is gone: a new op is served at once.
    expect(store.admit(20)).toEqual({ kind: 'queued', answerAt: 21, ok: true, writtenAt: 21 });
  });
});
