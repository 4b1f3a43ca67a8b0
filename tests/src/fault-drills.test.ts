// Fault drills on the production topology as processes (startLocalTopology):
// with light HTTP + UDP announce load running all along, crash (SIGKILL) and
// bring back in turn the Redis primary, storage-api, one gateway, the
// gc-worker leader and PostgreSQL. Each drill checks what a user would see:
// every answer is a valid answer or a coded "retry later" (BEP 31; no hang,
// no uncoded error), announces recover within a bound, the processes not
// under fault did not crash; at the end no acknowledged download is lost or
// counted twice. The recovery times are printed; bench/soak.sh repeats the
// same faults for ten minutes (RELIABILITY.md). What a single fault does in
// isolation (retry-later latency with storage-api down, no peer lost with a
// gateway killed) is checked in topology.test.ts; these run one topology
// through every fault in sequence, so each test needs the previous ones.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startLocalTopology,
  type LocalTopology,
  type ServiceProcess,
} from '@shoal/testing/topology';
import {
  ACCEPTABLE,
  FaultLoad,
  checkDownloads,
  countKinds,
  topologyProcesses,
  type Answer,
  type TopologyProcess,
} from './fault-drills-load.ts';
import { waitFor } from '@shoal/testing/processes';
import { sentinelRecoveryBoundMs } from '@shoal/testing/sentinel-drill';

// Recovery target is 10 s (RELIABILITY.md); asserted with margin for 2
// shared cores and other test files running beside this one.
const RECOVERY_BOUND_MS = 20_000;
// deploy/redis waits 5 s; a shorter wait keeps the drill short, the soak uses
// 5 s. The failover-timeout is the harness's (packages/testing/src/redis.ts),
// not deploy/redis's 60 s: an election that fails under load is retried 2 x
// failover-timeout later, so the Redis drill is bounded by the sentinels' own
// timing (docs/redis.md "Failover drill"), 51.5 s with these, not by 20 s.
const SENTINEL_TIMING = { downAfterMs: 1_500, failoverTimeoutMs: 10_000 };
const SENTINEL_BOUND_MS = sentinelRecoveryBoundMs(SENTINEL_TIMING);

let topo: LocalTopology;
let load: FaultLoad;
const recoveries: string[] = [];

beforeAll(async () => {
  topo = await startLocalTopology({
    sentinelDownAfterMs: SENTINEL_TIMING.downAfterMs,
    sentinelFailoverTimeoutMs: SENTINEL_TIMING.failoverTimeoutMs,
    gcWorkers: 2,
    gcWorkerEnv: {
      LEASE_DURATION_SECONDS: '3',
      RENEW_DEADLINE_SECONDS: '2',
      RETRY_PERIOD_SECONDS: '0.5',
    },
  });
  load = new FaultLoad(topo.gateways, { ratePerSecond: 40, torrents: 12, hangMs: 5_000 });
  await load.start();
  // Warm up: everything answers before the first fault.
  await load.waitRecovered(performance.now(), 20_000);
}, 120_000);

afterAll(async () => {
  await load?.stop();
  await topo?.stop();
  if (recoveries.length > 0) console.info(`fault drills:\n  ${recoveries.join('\n  ')}`);
}, 60_000);

/** The processes other than `victims`, with their pids, to check none of them crashed. */
function survivors(
  victims: readonly TopologyProcess[],
): Array<{ p: TopologyProcess; pid: number }> {
  return topologyProcesses(topo)
    .filter((p) => !victims.includes(p))
    .map((p) => ({ p, pid: p.pid }));
}

function expectSurvived(before: Array<{ p: TopologyProcess; pid: number }>): void {
  const crashed = before.filter(({ p, pid }) => p.pid !== pid || !p.alive());
  expect(
    crashed.map(({ p }) => `${p.name}:\n${p.tail(20)}`),
    'processes not under fault',
  ).toEqual([]);
}

function expectAcceptable(answers: readonly Answer[]): void {
  const bad = answers.filter((a) => !ACCEPTABLE.has(a.kind));
  expect(
    bad.slice(0, 5).map((a) => `${a.kind} ${a.transport} ${a.gateway} ${a.detail ?? ''}`),
    `answers by kind: ${JSON.stringify(countKinds(answers))}`,
  ).toEqual([]);
}

function okShare(answers: readonly Answer[]): number {
  return answers.filter((a) => a.kind === 'ok').length / Math.max(1, answers.length);
}

function report(fault: string, recoveryMs: number, answers: readonly Answer[]): void {
  const maxMs = Math.max(0, ...answers.map((a) => a.doneAt - a.sentAt));
  recoveries.push(
    `${fault}: recovered in ${recoveryMs.toFixed(0)} ms; slowest answer ${maxMs.toFixed(0)} ms; ` +
      JSON.stringify(countKinds(answers)),
  );
  console.info(recoveries.at(-1));
}

function redisRole(port: number): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      'redis-cli',
      ['-h', '127.0.0.1', '-p', String(port), '--no-auth-warning', 'ROLE'],
      { timeout: 3_000, env: { ...process.env, REDISCLI_AUTH: topo.secrets.redisPassword } },
      (err, stdout) => resolve(err === null ? (stdout.split('\n')[0] ?? '') : ''),
    );
  });
}

async function leaderOrFail(): Promise<ServiceProcess> {
  let leader: ServiceProcess | undefined;
  await waitFor(
    'a gc-worker to lead',
    async () => (leader = await topo.gcWorkerLeader()) !== undefined,
    RECOVERY_BOUND_MS,
    100,
  );
  return leader!;
}

describe('fault drills under HTTP + UDP load', () => {
  it('fails over when the Redis primary is killed; the old primary rejoins as a replica', async () => {
    const primary = await topo.redisPrimary();
    if (primary === undefined) throw new Error('no sentinel names a primary');
    const alive = survivors([primary]);
    const since = performance.now();
    await primary.kill();
    await waitFor(
      'Sentinel to promote a replica',
      async () => {
        const now = await topo.redisPrimary();
        return now !== undefined && now !== primary;
      },
      SENTINEL_BOUND_MS,
      100,
    );
    const { recoveryMs, answers } = await load.waitRecovered(since, SENTINEL_BOUND_MS + 10_000);
    report('redis primary', recoveryMs, answers);
    expect(recoveryMs).toBeLessThan(SENTINEL_BOUND_MS);
    expectAcceptable(answers);

    await primary.restart();
    await waitFor(
      `${primary.name} to rejoin as a replica`,
      async () => (await redisRole(primary.port)) === 'slave',
      RECOVERY_BOUND_MS,
      200,
    );
    expectAcceptable(load.between(since));
    expectSurvived(alive);
  }, 180_000);

  it('answers retry-later while storage-api is killed, and recovers when it restarts', async () => {
    const api = topo.storageApiProcess;
    const alive = survivors([api]);
    const since = performance.now();
    await api.kill();
    await api.restart();
    const { recoveryMs, answers } = await load.waitRecovered(since, RECOVERY_BOUND_MS + 10_000);
    report('storage-api', recoveryMs, answers);
    expect(recoveryMs).toBeLessThan(RECOVERY_BOUND_MS);
    expectAcceptable(answers);
    expectSurvived(alive);
  }, 60_000);

  it('keeps serving through the other gateway while one is killed, and takes the restarted one back', async () => {
    const [victim, other] = topo.gatewayProcesses;
    const [victimEnd, otherEnd] = topo.gateways;
    const alive = survivors([victim!]);
    const since = performance.now();
    // The load balancer's view: out of rotation when it dies, back when ready.
    load.markDown(victimEnd!.name);
    await victim!.kill();
    await victim!.restart();
    await waitFor(
      `${victim!.name} to be ready`,
      async () => (await fetch(`${victimEnd!.admin}/readyz`).catch(() => undefined))?.ok === true,
      RECOVERY_BOUND_MS,
      100,
    );
    load.markUp(victimEnd!.name);
    let backMs = 0;
    await waitFor(
      `${victim!.name} to answer announces`,
      () => {
        const ok = load
          .between(since)
          .find((a) => a.gateway === victimEnd!.name && a.kind === 'ok');
        if (ok !== undefined) backMs = ok.doneAt - since;
        return ok !== undefined;
      },
      RECOVERY_BOUND_MS,
      50,
    );
    const answers = load.between(since);
    report(`gateway (${victim!.name} back in rotation)`, backMs, answers);
    expect(backMs).toBeLessThan(RECOVERY_BOUND_MS);
    expectAcceptable(answers);
    // The other gateway kept serving: every answer valid or coded, and all
    // but a few ok (a batch can time out when other test files load the cores).
    const onOther = answers.filter((a) => a.gateway === otherEnd!.name);
    expect(onOther.length).toBeGreaterThan(0);
    expectAcceptable(onOther);
    expect(okShare(onOther), JSON.stringify(countKinds(onOther))).toBeGreaterThan(0.9);
    expect(other!.alive()).toBe(true);
    expectSurvived(alive);
  }, 60_000);

  it('hands GC to the other gc-worker when the leader is killed, announces untouched', async () => {
    const leader = await leaderOrFail();
    const alive = survivors([leader]);
    const since = performance.now();
    const killedAt = Date.now();
    await leader.kill();
    let next: ServiceProcess | undefined;
    await waitFor(
      'another gc-worker to lead',
      async () => (next = await topo.gcWorkerLeader()) !== undefined,
      RECOVERY_BOUND_MS,
      100,
    );
    const handoverMs = performance.now() - since;
    expect(next).not.toBe(leader);
    // A new leader collects at once (docs/gc-worker.md).
    await waitFor(
      `${next!.name} to collect`,
      async () => {
        const res = await fetch(`http://127.0.0.1:${Number(next!.listening.admin)}/readyz`);
        const { info } = (await res.json()) as {
          info?: { lastRun?: { at: string; ok: boolean } | null };
        };
        return info?.lastRun?.ok === true && Date.parse(info.lastRun.at) >= killedAt;
      },
      RECOVERY_BOUND_MS,
      100,
    );
    await leader.restart();
    const answers = load.between(since);
    report(`gc-worker leader (${next!.name} took over)`, handoverMs, answers);
    expect(handoverMs).toBeLessThan(RECOVERY_BOUND_MS);
    // GC is off the announce path.
    expectAcceptable(answers);
    expect(okShare(answers), JSON.stringify(countKinds(answers))).toBeGreaterThan(0.9);
    expectSurvived(alive);
  }, 60_000);

  it('keeps answering through a PostgreSQL crash; the gc lease is taken again when it is back', async () => {
    const db = topo.postgresProcess;
    const alive = survivors([db]);
    const since = performance.now();
    await db.kill();
    // Down long enough for completions to arrive meanwhile (about 10 expected).
    await new Promise((r) => setTimeout(r, 1_000));
    const restartAt = performance.now();
    await db.restart();
    const { recoveryMs, answers } = await load.waitRecovered(since, RECOVERY_BOUND_MS + 10_000);
    report('postgresql', recoveryMs, answers);
    expect(recoveryMs).toBeLessThan(RECOVERY_BOUND_MS);
    expectAcceptable(answers);
    // Their counts wait in storage-api; the last test checks none was lost or doubled.
    const completedWhileDown = answers.filter(
      (a) => a.event === 'completed' && a.sentAt >= since && a.sentAt < restartAt,
    );
    expect(completedWhileDown.length).toBeGreaterThan(0);
    // The lease lives in PostgreSQL: someone leads again.
    await leaderOrFail();
    expectSurvived(alive);
  }, 60_000);

  it('lost no acknowledged download and counted none twice; no survivor crashed', async () => {
    await load.stop();
    const all = load.answers;
    console.info(
      `fault drills: ${all.length} answers ${JSON.stringify(countKinds(all))}, ` +
        `${load.skipped} sends skipped (too many in flight)`,
    );
    expectAcceptable(all);
    expect(load.skipped).toBe(0);
    const downloads = await checkDownloads(load, topo.gateways[1]!.scrape);
    console.info(
      `downloads: ${downloads.acked} acknowledged, ${downloads.unknown} unknown outcome, ` +
        `${downloads.downloaded} counted by scrape over ${downloads.torrents} torrents`,
    );
    expect(downloads.acked).toBeGreaterThan(0);
    expect(downloads.lost).toEqual([]);
    expect(downloads.doubled).toEqual([]);
    expect(
      topologyProcesses(topo)
        .filter((p) => !p.alive())
        .map((p) => p.name),
    ).toEqual([]);
  }, 60_000);
});
