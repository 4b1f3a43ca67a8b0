import { describe, expect, it } from 'vitest';
import { POLICIES } from './gateway.ts';
import { SCENARIOS, defaultOptions } from './scenarios.ts';
import { simulate, type SimOptions } from './simulate.ts';

/** A small tracker (2,000 peers, 10 announces/s of store) for an hour. */
function small(base: SimOptions, peers = 2000): SimOptions {
  return {
    ...base,
    durationSeconds: 3600,
    population: { ...base.population, peers },
    store: { ...base.store, opsPerSecond: 10, queueMax: 40 },
    gateway: {
      ...base.gateway,
      LOAD_QUEUE_TARGET: 5,
      LOAD_QUEUE_TARGET_OPS: 10,
      SHED_SEEDER_UPDATES_AT: 5,
      SHED_LEECHER_UPDATES_AT: 10,
      SHED_EVENTS_AT: 20,
    },
  };
}

describe('simulate', () => {
  it('accounts for every announce: served, shed or failed, or still in flight at the end', () => {
    for (const scenario of SCENARIOS) {
      for (const policy of POLICIES) {
        const r = simulate(small(defaultOptions(policy, scenario.disturbance, 5)));
        const c = r.counts;
        expect(c.arrivals).toBeGreaterThan(0);
        expect(c.ok + c.shed + c.failed + c.inFlight).toBe(c.arrivals);
        const binned = r.bins.reduce((n, b) => n + b.offered, 0);
        expect(binned).toBe(c.arrivals);
      }
    }
    // The overload scenario does exercise shedding and failures.
    const step = simulate(small(defaultOptions('adaptive-shed', SCENARIOS[0]!.disturbance, 5)));
    expect(step.counts.shed).toBeGreaterThan(0);
  });

  it('gives the same run for the same seed and another for another', () => {
    const opts = small(defaultOptions('adaptive-shed', SCENARIOS[1]!.disturbance, 9));
    expect(simulate(opts).counts).toEqual(simulate(opts).counts);
    expect(simulate({ ...opts, seed: 10 }).counts).not.toEqual(simulate(opts).counts);
  });

  it('without churn or faults offers N / interval announces a second and expires no live peer', () => {
    const base = small(defaultOptions('today', { kind: 'none', at: 0 }, 2), 3600);
    const r = simulate({
      ...base,
      population: {
        ...base.population,
        mix: { libtorrent: 0, transmission: 1, aria2: 0 },
        meanSessionSeconds: 1e12,
        meanDownloadSeconds: 1e12,
      },
    });
    // 3,600 Transmission peers at a 1800 s interval: 2 announces/s, 7,200 in 3,600 s.
    expect(r.counts.arrivals).toBeGreaterThan(7200 * 0.97);
    expect(r.counts.arrivals).toBeLessThan(7200 * 1.03);
    expect(r.counts.failed + r.counts.shed).toBe(0);
    expect(r.counts.expiredWhileAlive).toBe(0);
    expect(r.summary.minPresent).toBe(1);
  });

  it('a failure without interval keeps HTTP libtorrent peers away long enough to expire', () => {
    const outage = { kind: 'outage', at: 900, seconds: 6 } as const;
    const onlyLibtorrent = (policy: 'today' | 'failure-interval'): SimOptions => {
      const base = small(defaultOptions(policy, outage, 4), 6000);
      return {
        ...base,
        population: {
          ...base.population,
          mix: { libtorrent: 1, transmission: 0, aria2: 0 },
          udpShare: { libtorrent: 0, transmission: 0, aria2: 0 },
        },
      };
    };
    const today = simulate(onlyLibtorrent('today'));
    const told = simulate(onlyLibtorrent('failure-interval'));
    expect(today.counts.expiredWhileAlive).toBeGreaterThan(0);
    // Both lose the peers that failed (300 s is past the 60 s grace); told ones are back 6x sooner.
    expect(told.summary.missingPeerHours).toBeLessThan(today.summary.missingPeerHours / 3);
  });
});
