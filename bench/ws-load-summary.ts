// Summarises bench/ws-load.sh's results (one JSON object a line from
// bench/ws-load.ts): per target the median over rounds, and Shoal's ratio to
// bittorrent-tracker in the same run.
import { readFileSync } from 'node:fs';

interface Latency {
  n: number;
  p50: number | null;
  p99: number | null;
}

interface Result {
  label: string;
  mode: 'throughput' | 'latency' | 'idle';
  connected: number;
  announcesPerSecond: number | null;
  messagesPerSecond: number | null;
  announcesPerTrackerCpuSecond?: number | null;
  failures: number;
  offerLatencyMs: Latency;
  answerLatencyMs: Latency;
  crossOfferLatencyMs?: Latency;
  crossAnswerLatencyMs?: Latency;
  bytesPerIdleConnection: number | null;
  duplicateOffers?: number;
  duplicateAnswers?: number;
}

const results = readFileSync(process.argv[2] ?? '/dev/stdin', 'utf8')
  .split('\n')
  .filter((l) => l.startsWith('{'))
  .map((l) => JSON.parse(l) as Result);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

const labels = [...new Set(results.map((r) => r.label))];
const of = (label: string, mode: Result['mode']): Result[] =>
  results.filter((r) => r.label === label && r.mode === mode);
const fmt = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');

console.log(
  '| target | announces/s (median; each round) | announces per tracker CPU second (median) | tracker messages/s (median) | offer relay p50 / p99 ms | answer relay p50 / p99 ms | failures |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- |');
const aps = new Map<string, number>();
const cpu = new Map<string, number>();
for (const label of labels) {
  const tp = of(label, 'throughput');
  const lat = of(label, 'latency');
  const a = median(tp.map((r) => r.announcesPerSecond ?? NaN));
  aps.set(label, a);
  const msgs = median(tp.map((r) => r.messagesPerSecond ?? NaN));
  const perCpu = median(tp.map((r) => r.announcesPerTrackerCpuSecond ?? NaN));
  cpu.set(label, perCpu);
  const m = (f: (r: Result) => number | null): string =>
    fmt(median(lat.map((r) => f(r) ?? NaN)), 1);
  const rounds = tp.map((r) => r.announcesPerSecond).join(', ');
  const offer = `${m((r) => r.offerLatencyMs.p50)} / ${m((r) => r.offerLatencyMs.p99)}`;
  const answer = `${m((r) => r.answerLatencyMs.p50)} / ${m((r) => r.answerLatencyMs.p99)}`;
  const failures = [...tp, ...lat].reduce((s, r) => s + r.failures, 0);
  console.log(
    `| ${label} | ${fmt(a)} (${rounds}) | ${fmt(perCpu)} | ${fmt(msgs)} | ${offer} | ${answer} | ${failures} |`,
  );
}
const ref = aps.get('bittorrent-tracker');
for (const [label, a] of aps)
  if (label !== 'bittorrent-tracker' && ref !== undefined)
    console.log(
      `# ${label} / bittorrent-tracker: announces/s ${fmt(a / ref, 2)}x, per tracker CPU second ${fmt((cpu.get(label) ?? NaN) / (cpu.get('bittorrent-tracker') ?? NaN), 2)}x`,
    );
const cross = results.filter(
  (r) => r.mode === 'latency' && r.crossOfferLatencyMs !== undefined && r.crossOfferLatencyMs.n > 0,
);
if (cross.length > 0) {
  console.log('\n| two gateways | relayed | offer p50 / p99 ms | answer p50 / p99 ms |');
  console.log('| --- | --- | --- | --- |');
  const m = (f: (r: Result) => number | null | undefined): string =>
    fmt(median(cross.map((r) => f(r) ?? NaN)), 1);
  console.log(
    `| within one gateway | ${m((r) => r.offerLatencyMs.n)} offers | ${m((r) => r.offerLatencyMs.p50)} / ${m((r) => r.offerLatencyMs.p99)} | ${m((r) => r.answerLatencyMs.p50)} / ${m((r) => r.answerLatencyMs.p99)} |`,
  );
  console.log(
    `| across the two | ${m((r) => r.crossOfferLatencyMs?.n)} offers | ${m((r) => r.crossOfferLatencyMs?.p50)} / ${m((r) => r.crossOfferLatencyMs?.p99)} | ${m((r) => r.crossAnswerLatencyMs?.p50)} / ${m((r) => r.crossAnswerLatencyMs?.p99)} |`,
  );
}
console.log('\n| target | idle connections | bytes of tracker RSS per connection |');
console.log('| --- | --- | --- |');
for (const r of results.filter((x) => x.mode === 'idle'))
  console.log(`| ${r.label} | ${r.connected} | ${fmt(r.bytesPerIdleConnection ?? NaN)} |`);
// Every offer goes to one peer once and is answered once: a duplicate is a tracker bug, never load.
for (const r of results)
  if ((r.duplicateOffers ?? 0) + (r.duplicateAnswers ?? 0) > 0)
    console.log(
      `# ${r.label} ${r.mode}: ${r.duplicateOffers ?? 0} offers and ${r.duplicateAnswers ?? 0} answers delivered twice`,
    );
