// The policy cache on its own: one load at a time, one log line per outage,
// the last snapshot kept through failures (docs/policy.md).
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { PolicySnapshot } from '@shoal/policy';
import { captureLogs } from '@shoal/testing/logs';
import { createGatewayMetrics } from '../metrics.ts';
import { createPolicyCache } from './cache.ts';
import type { PolicySource } from './source.ts';

function snapshot(revision: string, passkeys: Array<[string, number | null]>): PolicySnapshot {
  return {
    revision,
    torrents: { allow: [], deny: [] },
    clients: { allow: [], deny: [] },
    passkeys,
  };
}

/** A source whose answers the test scripts: a snapshot, 'unchanged', or an error. */
function scripted(): {
  source: PolicySource;
  next: Array<PolicySnapshot | 'unchanged' | Error>;
  revisions: Array<string | undefined>;
  release: () => void;
  hold: boolean;
} {
  const state = {
    next: [] as Array<PolicySnapshot | 'unchanged' | Error>,
    revisions: [] as Array<string | undefined>,
    hold: false,
    release: () => undefined as void,
    source: undefined as unknown as PolicySource,
  };
  state.source = {
    load: async (revision) => {
      state.revisions.push(revision);
      if (state.hold) await new Promise<void>((resolve) => (state.release = resolve));
      const answer = state.next.shift() ?? 'unchanged';
      if (answer instanceof Error) throw answer;
      return answer === 'unchanged' ? undefined : answer;
    },
    close: () => Promise.resolve(),
  };
  return state;
}

describe('policy cache', () => {
  it('runs one load at a time and asks with the revision it holds', async () => {
    const s = scripted();
    const cache = createPolicyCache({
      source: s.source,
      refreshSeconds: 3600,
      metrics: createGatewayMetrics(new Registry()),
      logger: pino({ level: 'silent' }),
      clock: Date.now,
    });
    s.next.push(snapshot('r1', [['passkey-0001', null]]));
    s.hold = true;
    const a = cache.refresh();
    const b = cache.refresh();
    s.release();
    expect(await a).toBe('changed');
    expect(await b).toBe('changed');
    expect(s.revisions).toEqual([undefined]);
    s.hold = false;
    expect(await cache.refresh()).toBe('unchanged');
    expect(s.revisions).toEqual([undefined, 'r1']);
    expect(cache.current?.revision).toBe('r1');
    await cache.close();
    expect(await cache.refresh()).toBe('failed');
    expect(s.revisions).toHaveLength(2);
  });

  it('logs an outage once and its end once, keeping the last snapshot meanwhile', async () => {
    const s = scripted();
    const { lines, stream } = captureLogs<{ level: number; msg: string }>();
    const registry = new Registry();
    const cache = createPolicyCache({
      source: s.source,
      refreshSeconds: 3600,
      metrics: createGatewayMetrics(registry),
      logger: pino({ level: 'info' }, stream),
      clock: Date.now,
    });
    s.next.push(
      snapshot('r1', [['passkey-0001', null]]),
      new Error('down'),
      new Error('still down'),
      new Error('still down'),
      'unchanged',
    );
    for (let i = 0; i < 5; i++) await cache.refresh();
    expect(lines.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([
      'policy refresh failed, keeping the last snapshot',
    ]);
    expect(lines.filter((l) => l.msg === 'policy refresh working again')).toHaveLength(1);
    expect(() => cache.current?.checkPasskey('passkey-0001', Date.now())).not.toThrow();
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/shoal_policy_refresh_total\{outcome="failed"\} 3/);
    expect(metrics).toMatch(/shoal_policy_refresh_total\{outcome="unchanged"\} 1/);
    expect(metrics).toMatch(/shoal_policy_entries\{list="passkeys"\} 1/);
    await cache.close();
  });
});
