// The reliability simulation (RELIABILITY.md "Simulation"): every scenario
// under every policy, one seed, a Markdown table on stdout and the time
// series as JSON for bench/reliability-sim-plot.py.
//   node bench/reliability-sim.ts [--seed N] [--scale N] [--peer-lifetime SECONDS] [--json FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { POLICIES } from './sim/gateway.ts';
import { quantile } from './sim/metrics.ts';
import { DEFAULT_SCALE, POLICY_TITLES, SCENARIOS, defaultOptions } from './sim/scenarios.ts';
import { simulate, type SimResult } from './sim/simulate.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    scale: { type: 'string', default: String(DEFAULT_SCALE) },
    json: { type: 'string' },
    'peer-lifetime': { type: 'string' },
  },
});
const seed = Number(values.seed);
const scale = Number(values.scale);

const minutes = (s: number | undefined): string =>
  s === undefined ? 'not within 3 h' : s < 60 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`;
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

const started = performance.now();
const runs: { scenario: string; policy: string; result: SimResult }[] = [];
for (const scenario of SCENARIOS) {
  console.log(`\n${scenario.title}\n`);
  console.log(
    '| policy | offered peak/s | served | shed | failed | max queue | p99 latency | peers expired while alive | min swarm presence | missing peer-hours | max interval | answers recover | swarms recover |',
  );
  console.log(
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const policy of POLICIES) {
    const options = defaultOptions(policy, scenario.disturbance, seed, scale);
    const lifetime = values['peer-lifetime'];
    const result = simulate(
      lifetime === undefined
        ? options
        : { ...options, gateway: { ...options.gateway, PEER_LIFETIME_SECONDS: Number(lifetime) } },
    );
    runs.push({ scenario: scenario.name, policy, result });
    const s = result.summary;
    console.log(
      `| ${POLICY_TITLES[policy]} | ${(s.offeredPeakPerSecond * scale).toFixed(0)} | ${pct(s.servedShare)} | ${s.shed * scale} | ${s.failed * scale} | ${s.maxQueueDepth * scale} | ${(s.p99LatencySeconds * 1000).toFixed(0)} ms | ${result.counts.expiredWhileAlive * scale} | ${pct(s.minPresent)} | ${(s.missingPeerHours * scale).toFixed(0)} | ${(s.maxInterval / 60).toFixed(0)} min | ${minutes(s.answersRecoverSeconds)} | ${minutes(s.swarmsRecoverSeconds)} |`,
    );
  }
}
const events = runs.reduce((n, r) => n + r.result.events, 0);
console.log(
  `\n${runs.length} runs, ${events} events, ${((performance.now() - started) / 1000).toFixed(1)} s, seed ${seed}`,
);

if (values.json !== undefined) {
  const series = runs.map(({ scenario, policy, result }) => ({
    scenario,
    scenarioTitle: SCENARIOS.find((s) => s.name === scenario)?.title ?? scenario,
    policy,
    policyTitle: POLICY_TITLES[policy as keyof typeof POLICY_TITLES],
    binSeconds: result.options.binSeconds,
    scale,
    capacityPerSecond: result.options.store.opsPerSecond,
    faultAt: result.options.disturbance.at,
    bins: result.bins.map((b) => ({
      t: b.start,
      offered: b.offered,
      ok: b.ok,
      shed: b.shed,
      failed: b.failed,
      maxDepth: b.maxDepth,
      p99: quantile(b.latencies, 0.99),
      present: b.present,
      interval: b.interval,
    })),
  }));
  writeFileSync(values.json, JSON.stringify(series));
}
