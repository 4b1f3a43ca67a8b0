// One tracker conformance suite, run against every topology an operator can
// deploy (harness/topologies.ts: embedded memory, Redis and PostgreSQL, and
// the split gateway -> storage-api -> Redis Sentinel + PostgreSQL), with the
// same cases everywhere (tracker-conformance-cases.ts). Each case is its own
// `it`; a case a topology cannot have (a swarm shared by replicas that each
// keep their own memory store) is "n/a" there, and its `it` checks why. The
// results print as one table, cases by topologies, when the file ends.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { TOPOLOGIES, type Deployment, type TopologySpec } from './harness/topologies.ts';
import {
  CASES,
  REQUIREMENTS,
  ipv6LoopbackAvailable,
  type ConformanceCase,
} from './tracker-conformance-cases.ts';

type Cell = 'pass' | 'FAIL' | 'n/a';

const machine = { ipv6Loopback: await ipv6LoopbackAvailable() };
const cells = new Map<string, Cell>();
const naReasons = new Map<string, string>();
const didNotStart = new Set<string>();

const key = (c: ConformanceCase, t: TopologySpec): string => `${c.name}\u0000${t.name}`;

function renderTable(): string {
  const reasons = [...new Set(naReasons.values())];
  const cell = (c: ConformanceCase, t: TopologySpec): string => {
    const k = key(c, t);
    const v = cells.get(k);
    if (v === 'n/a') return `n/a (${reasons.indexOf(naReasons.get(k)!) + 1})`;
    return v ?? (didNotStart.has(t.name) ? 'FAIL' : 'not run');
  };
  const header = ['case', ...TOPOLOGIES.map((t) => t.name)];
  const rows = CASES.map((c) => [c.name, ...TOPOLOGIES.map((t) => cell(c, t))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string =>
    `| ${r.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    '',
    'Tracker conformance: cases by topology (tests/src/tracker-conformance.test.ts)',
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
    ...reasons.map((r, i) => `(${i + 1}) n/a: ${r}`),
    ...[...didNotStart].map((t) => `${t}: the topology did not start (its error is above)`),
    '',
  ].join('\n');
}

afterAll(() => {
  process.stdout.write(`${renderTable()}\n`);
});

for (const spec of TOPOLOGIES) {
  describe(spec.name, () => {
    let deployment: Deployment | undefined;

    beforeAll(async () => {
      try {
        deployment = await spec.start({ ipv6: machine.ipv6Loopback });
      } catch (err) {
        didNotStart.add(spec.name);
        throw err;
      }
    }, 120_000);

    afterAll(async () => {
      await deployment?.stop();
    });

    const running = (): Deployment => {
      if (deployment === undefined) throw new Error(`${spec.name} did not start`);
      return deployment;
    };

    for (const c of CASES) {
      const missing = (c.needs ?? []).filter((r) => !REQUIREMENTS[r].holds(spec, machine));
      if (missing.length === 0) {
        it(c.name, async () => {
          cells.set(key(c, spec), 'FAIL');
          try {
            await c.run(running(), spec);
          } catch (err) {
            // The processes' last words, next to the assertion that failed.
            process.stderr.write(`${spec.name} / ${c.name}:\n${running().describe()}\n`);
            throw err;
          }
          cells.set(key(c, spec), 'pass');
        });
      } else {
        const reason = missing.map((r) => REQUIREMENTS[r].reason).join('; ');
        it(`${c.name} (n/a: ${reason})`, async () => {
          cells.set(key(c, spec), 'FAIL');
          for (const r of missing) await REQUIREMENTS[r].premise(running());
          cells.set(key(c, spec), 'n/a');
          naReasons.set(key(c, spec), reason);
        });
      }
    }
  });
}
