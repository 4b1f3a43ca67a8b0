// The soak: the local topology (docs/local-topology.md) under steady mixed
// HTTP + UDP announce load for DURATION_SECONDS, crashing (SIGKILL) and
// restarting in turn the Redis primary, a Redis replica, a sentinel,
// storage-api, a gateway, the gc-worker leader and PostgreSQL, round after
// round. It checks and prints:
//   - answers by kind: each is a valid answer or a coded retry-later
//     (BEP 31) within 1 s; no hang, no uncoded error;
//   - recovery after each fault: announces answer ok again within 10 s
//     (p50 / max per fault kind); the gc lease is taken over within
//     LEASE_DURATION + RETRY_PERIOD + 5 s;
//   - downloads: scrape's `downloaded` at the end equals the completions the
//     tracker acknowledged (none lost, none counted twice);
//   - no process that was not under fault crashed;
//   - RSS of the gateways and storage-api (start / peak / end).
// Exits 1 when a check fails. Loopback only; stops by itself; everything it
// started is stopped on exit. Figures go into RELIABILITY.md.
//   bench/soak.sh [--short]   env: DURATION_SECONDS (600; --short 120), RATE (announces/s, 150),
//                             TORRENTS (40), FAULT_GAP_SECONDS (8), RSS_LIMIT_MB (400), SOAK_JSON (file),
//                             FAULTS (comma list of the kinds below, or none: load only)
// Only gateway-b is killed, so gateway-a lives through the whole run and its
// memory shows what every other fault leaves behind.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { postgresBinDir } from '@shoal/testing/postgres';
import { startLocalTopology, type ServiceProcess } from '@shoal/testing/topology';
// The load and its answer classes are shared with the fault drills of `make test`.
import {
  ACCEPTABLE,
  ANSWER_KINDS,
  FaultLoad,
  checkDownloads,
  countKinds,
  topologyProcesses,
  type Answer,
  type TopologyProcess as Proc,
} from '../tests/src/fault-drills-load.ts';
import { ALL_FAULTS, injectFault, sleep, type FaultKind, type FaultResult } from './soak-faults.ts';

const short = process.argv.includes('--short');
const num = (name: string, fallback: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
};
const DURATION_S = num('DURATION_SECONDS', short ? 120 : 600);
const RATE = num('RATE', 150);
const TORRENTS = num('TORRENTS', 40);
const GAP_S = num('FAULT_GAP_SECONDS', 8);
const RSS_LIMIT_MB = num('RSS_LIMIT_MB', 400);
const ANSWER_BOUND_MS = 1_000;
// FAULTS=storage-api,postgres runs those only; FAULTS=none runs the load alone (a baseline).
const FAULTS: readonly FaultKind[] = (() => {
  const v = process.env.FAULTS;
  if (v === undefined || v === '') return ALL_FAULTS;
  if (v === 'none') return [];
  const kinds = v.split(',');
  const unknown = kinds.filter((k) => !(ALL_FAULTS as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw new Error(`FAULTS: unknown ${unknown.join(', ')}; known: ${ALL_FAULTS.join(', ')}, none`);
  return kinds as FaultKind[];
})();

const t0 = performance.now();
const stamp = (): string => `[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s]`;
const log = (msg: string): void => console.log(`${stamp()} ${msg}`);

function rssMb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]) / 1024;
  } catch {
    return undefined;
  }
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function versions(): Promise<string> {
  const run = (cmd: string, args: string[]): Promise<string> =>
    new Promise((r) => execFile(cmd, args, { timeout: 5_000 }, (_e, out) => r(String(out).trim())));
  const redis = /v=(\S+)/.exec(await run('redis-server', ['--version']))?.[1] ?? '?';
  const bin = postgresBinDir();
  const pg =
    bin === undefined ? '?' : (await run(join(bin, 'postgres'), ['--version'])).split(' ').at(-1);
  return `node ${process.version}, redis ${redis}, postgresql ${pg ?? '?'}`;
}

async function main(): Promise<number> {
  const cpu = cpus();
  log(
    `soak: ${DURATION_S} s, ${RATE} announces/s over ${TORRENTS} torrents, ${GAP_S} s between faults; ` +
      `${cpu.length} x ${cpu[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${await versions()}`,
  );
  const topo = await startLocalTopology({ gcWorkers: 2 });
  const failures: string[] = [];
  const results: FaultResult[] = [];
  const [gatewayA, gatewayB] = topo.gatewayProcesses as [ServiceProcess, ServiceProcess];
  const gatewayBEnd = topo.gateways[1]!;
  const watched: Array<{ name: string; proc: ServiceProcess; metrics: string }> = [
    { name: gatewayA.name, proc: gatewayA, metrics: topo.gateways[0]!.metrics },
    { name: gatewayB.name, proc: gatewayB, metrics: topo.gateways[1]!.metrics },
    {
      name: topo.storageApiProcess.name,
      proc: topo.storageApiProcess,
      metrics: topo.storageApi.metrics,
    },
  ];
  const memory = new Map<string, { start: number; peak: number; end: number; pids: Set<number> }>();
  const sampleMemory = (): void => {
    for (const { name, proc } of watched) {
      const mb = rssMb(proc.pid);
      if (mb === undefined) continue;
      const m = memory.get(name);
      if (m === undefined)
        memory.set(name, { start: mb, peak: mb, end: mb, pids: new Set([proc.pid]) });
      else {
        m.peak = Math.max(m.peak, mb);
        m.end = mb;
        m.pids.add(proc.pid);
      }
    }
  };
  // Processes under fault right now; any other one that dies is a crash.
  const underFault = new Set<Proc>();
  const crashes: string[] = [];
  let lastMemoryLog = performance.now();
  const watch = setInterval(() => {
    sampleMemory();
    if (performance.now() - lastMemoryLog >= 60_000) {
      lastMemoryLog = performance.now();
      void Promise.all(
        watched.map(async ({ name, proc, metrics }) => {
          // The JS heap beside RSS: a leak grows it, allocator slack does not.
          const text = await fetch(metrics, { signal: AbortSignal.timeout(2_000) })
            .then((r) => r.text())
            .catch(() => '');
          const heap = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1];
          const rss = rssMb(proc.pid)?.toFixed(0) ?? '-';
          return `${name} ${rss} (heap ${heap === undefined ? '-' : (Number(heap) / 2 ** 20).toFixed(0)})`;
        }),
      ).then((parts) => log(`RSS MB: ${parts.join(', ')}`));
    }
    for (const p of topologyProcesses(topo))
      if (!underFault.has(p) && !p.alive() && !crashes.some((c) => c.startsWith(`${p.name} `)))
        crashes.push(`${p.name} (pid ${p.pid}) died:\n${p.tail(15)}`);
  }, 1_000);

  const load = new FaultLoad(topo.gateways, { ratePerSecond: RATE, torrents: TORRENTS });
  let exit: number;
  try {
    await load.start();
    await load.waitRecovered(performance.now(), 30_000);
    log('load running, every service answering');

    const ctx = { topo, load, underFault, gatewayB, gatewayBEnd };

    const end = t0 + DURATION_S * 1_000;
    let round = 0;
    outer: while (FAULTS.length > 0) {
      for (const kind of FAULTS) {
        // Every fault at least once; after that none starts that cannot
        // finish in time (a fault and its recovery take up to ~40 s).
        if (results.length >= FAULTS.length && performance.now() > end - 40_000) break outer;
        const r = await injectFault(ctx, kind, round);
        results.push(r);
        log(
          `${kind} (${r.victim}): recovered in ${r.recoveryMs.toFixed(0)} ms` +
            (r.handoverMs === undefined ? '' : `, handover ${r.handoverMs.toFixed(0)} ms`) +
            ` ${JSON.stringify(r.answers)}${r.failures.length > 0 ? ` FAILED: ${r.failures.join('; ')}` : ''}`,
        );
        failures.push(...r.failures.map((f) => `${kind} (${r.victim}): ${f}`));
        await sleep(GAP_S * 1_000);
      }
      round++;
    }
    const remaining = end - performance.now();
    if (remaining > 0) await sleep(remaining);
    await load.stop();
    sampleMemory();
    // Each fault's answers: from its kill to the next fault's (or the end).
    results.forEach((r, i) => {
      const answers = load.between(r.since, results[i + 1]?.since ?? Infinity);
      r.answers = countKinds(answers);
      const bad = answers.filter((a) => !ACCEPTABLE.has(a.kind));
      if (bad.length > 0)
        failures.push(
          `${r.kind} (${r.victim}): ${bad.length} answers neither valid nor coded retry-later, e.g. ${bad
            .slice(0, 3)
            .map((a) => `${a.kind} ${a.transport} ${a.gateway} ${a.detail ?? ''}`)
            .join(' | ')}`,
        );
    });
    clearInterval(watch);

    // --- Report.
    const all = load.answers;
    const late = all.filter(
      (a) => a.kind !== 'gateway-lost' && a.doneAt - a.sentAt > ANSWER_BOUND_MS,
    );
    const byKind = countKinds(all);
    console.log(`\nanswers: ${all.length} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    for (const transport of ['http', 'udp'] as const) {
      const xs = all.filter((a) => a.transport === transport);
      const lat = xs.filter((a) => a.kind !== 'gateway-lost').map((a) => a.doneAt - a.sentAt);
      console.log(
        `  ${transport}: ${xs.length} ${JSON.stringify(countKinds(xs))}; latency p50 ${percentile(lat, 50).toFixed(1)} ms, ` +
          `p99 ${percentile(lat, 99).toFixed(1)} ms, max ${Math.max(0, ...lat).toFixed(0)} ms`,
      );
    }
    // Which fault each slow answer fell in (none: before the first).
    const during = (a: Answer): string =>
      results.findLast((r) => r.since <= a.sentAt)?.kind ?? 'no fault';
    const lateBy: Record<string, number> = {};
    for (const a of late) lateBy[during(a)] = (lateBy[during(a)] ?? 0) + 1;
    console.log(
      `  slower than ${ANSWER_BOUND_MS} ms: ${late.length} ${JSON.stringify(countKinds(late))}` +
        (late.length === 0 ? '' : ` during ${JSON.stringify(lateBy)}`),
    );
    console.log(`  sends skipped (too many in flight): ${load.skipped}`);
    const unacceptable = all.filter((a: Answer) => !ACCEPTABLE.has(a.kind));
    if (unacceptable.length > 0)
      failures.push(`${unacceptable.length} answers neither valid nor coded retry-later`);
    if (late.length > 0) failures.push(`${late.length} answers slower than ${ANSWER_BOUND_MS} ms`);
    if (load.skipped > 0) failures.push(`${load.skipped} sends skipped: answers hung`);

    console.log(
      '\nrecovery by fault (announces ok again after the kill), answers from kill to next kill:',
    );
    console.log(
      `  ${'fault'.padEnd(14)} ${'n'.padStart(2)} ${'p50 ms'.padStart(8)} ${'max ms'.padStart(8)}  ` +
        `${'handover p50/max ms'.padEnd(20)} answers`,
    );
    for (const kind of FAULTS) {
      const rs = results.filter((r) => r.kind === kind);
      if (rs.length === 0) continue;
      const rec = rs.map((r) => r.recoveryMs);
      const hand = rs.flatMap((r) => (r.handoverMs === undefined ? [] : [r.handoverMs]));
      const handover =
        hand.length === 0
          ? '-'
          : `${percentile(hand, 50).toFixed(0)} / ${Math.max(...hand).toFixed(0)}`;
      const answers: Record<string, number> = {};
      for (const r of rs)
        for (const [k, n] of Object.entries(r.answers)) answers[k] = (answers[k] ?? 0) + n;
      console.log(
        `  ${kind.padEnd(14)} ${String(rs.length).padStart(2)} ${percentile(rec, 50).toFixed(0).padStart(8)} ` +
          `${Math.max(...rec)
            .toFixed(0)
            .padStart(8)}  ${handover.padEnd(20)} ${JSON.stringify(answers)}`,
      );
    }

    const downloads = await checkDownloads(load, topo.gateways[0]!.scrape);
    console.log(
      `\ndownloads: ${downloads.acked} completions acknowledged (${downloads.retried} only on a retry), ` +
        `${downloads.unknown} of unknown outcome, ` +
        `scrape counts ${downloads.downloaded} over ${downloads.torrents} torrents; ` +
        `lost on ${downloads.lost.length} torrents, doubled on ${downloads.doubled.length}`,
    );
    const faultAt = (t: number): string => {
      const r = results.findLast((x) => x.since <= t);
      return r === undefined
        ? 'no fault'
        : `${r.kind} (${r.victim}) +${(t - r.since).toFixed(0)} ms`;
    };
    for (const l of downloads.lost) {
      failures.push(
        `downloads lost on ${l.infoHash}: ${l.acked} acknowledged, scrape says ${l.downloaded}`,
      );
      // A first attempt applied but not answered makes the retry find a
      // seeder: the suspects are the retried completions sent nearest a kill.
      const offset = (t: number): number =>
        t - (results.findLast((x) => x.since <= t)?.since ?? -Infinity);
      const suspects = [...l.retried].sort((a, b) => offset(a.failedAt) - offset(b.failedAt));
      console.log(
        `  ${l.infoHash}: ${l.retried.length} completions acknowledged only on a retry; nearest a kill:`,
      );
      for (const r of suspects.slice(0, 3))
        console.log(
          `  ${l.infoHash} peer port ${r.port}: completed answered ${r.failed} during ${faultAt(r.failedAt)}, ` +
            `acknowledged on a retry ${((r.ackedAt - r.failedAt) / 1000).toFixed(1)} s later`,
        );
    }
    if (downloads.doubled.length > 0)
      failures.push(`downloads counted twice: ${JSON.stringify(downloads.doubled)}`);
    if (downloads.acked === 0)
      failures.push('no completion was acknowledged: the load did not run');

    console.log('\nmemory (VmRSS, MB): start / peak / end (processes)');
    for (const [name, m] of memory) {
      console.log(
        `  ${name.padEnd(12)} ${m.start.toFixed(0)} / ${m.peak.toFixed(0)} / ${m.end.toFixed(0)} (${m.pids.size} pid${m.pids.size > 1 ? 's' : ''})`,
      );
      if (m.peak > RSS_LIMIT_MB)
        failures.push(`${name} RSS peaked at ${m.peak.toFixed(0)} MB (limit ${RSS_LIMIT_MB})`);
    }

    for (const p of topologyProcesses(topo))
      if (!p.alive() && !crashes.some((c) => c.startsWith(`${p.name} `)))
        crashes.push(`${p.name} is not running`);
    console.log(`\ncrashes of processes not under fault: ${crashes.length}`);
    for (const c of crashes) console.log(`  ${c}`);
    failures.push(...crashes.map((c) => `crash: ${c.split('\n')[0]}`));

    if (process.env.SOAK_JSON !== undefined)
      writeFileSync(
        process.env.SOAK_JSON,
        JSON.stringify(
          {
            durationSeconds: DURATION_S,
            rate: RATE,
            torrents: TORRENTS,
            answers: byKind,
            kinds: ANSWER_KINDS,
            late: late.length,
            results,
            downloads,
            memory: Object.fromEntries(
              [...memory].map(([k, v]) => [k, { ...v, pids: v.pids.size }]),
            ),
            crashes,
            failures,
          },
          null,
          2,
        ),
      );
    console.log(`\n${failures.length === 0 ? 'PASS' : `FAIL (${failures.length})`}`);
    for (const f of failures) console.log(`  ${f}`);
    exit = failures.length === 0 ? 0 : 1;
  } catch (err) {
    console.error(`soak aborted: ${(err as Error).stack ?? String(err)}`);
    exit = 1;
  } finally {
    clearInterval(watch);
    await load.stop().catch(() => undefined);
    await topo.stop();
  }
  return exit;
}

process.exitCode = await main();
