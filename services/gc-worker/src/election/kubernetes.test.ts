// The Kubernetes Lease elector through the real @kubernetes/client-node
// against a fake API server (no API server runs here, docs/conventions.md
// "Tests"). Timings are scaled down: 1 s lease, 600 ms renew
// deadline, 100 ms retry period.
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeKubeApi, type FakeKubeApi } from '@shoal/testing/fake-kube-api';
import { createKubernetesLeaseElector } from './kubernetes.ts';
import type { ElectionTiming, LeaderElector } from './types.ts';

const timing: ElectionTiming = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 };
const NS = 'shoal';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function apiFor(url: string, token: string): CoordinationV1Api {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: token, token }],
    contexts: [{ name: 'fake', cluster: 'fake', user: token }],
    currentContext: 'fake',
  });
  return kc.makeApiClient(CoordinationV1Api);
}

let kube: FakeKubeApi;
let live: LeaderElector[] = [];
let leaseSeq = 0;

beforeAll(async () => {
  kube = await startFakeKubeApi();
});
afterEach(async () => {
  await Promise.all(live.map((e) => e.stop()));
  live = [];
  kube.failing = false;
  kube.cutOff.clear();
});
afterAll(() => kube.close());

function candidates(
  n: number,
  electionTiming: ElectionTiming = timing,
): { leaseName: string; electors: LeaderElector[] } {
  const leaseName = `gc-${++leaseSeq}`;
  const electors = Array.from({ length: n }, (_, i) =>
    createKubernetesLeaseElector({
      api: apiFor(kube.url, `pod-${i}`),
      namespace: NS,
      leaseName,
      identity: `pod-${i}`,
      timing: electionTiming,
      logger: pino({ level: 'silent' }),
    }),
  );
  live.push(...electors);
  return { leaseName, electors };
}

/**
 * Samples every 10 ms for `ms`, or until `done()` holds when given (then `ms`
 * is only a cap and running out fails); fails if two electors ever lead at
 * once. Returns the leaders seen.
 */
async function watchExclusive(
  electors: LeaderElector[],
  ms: number,
  done?: () => boolean,
): Promise<Set<string>> {
  const seen = new Set<string>();
  const end = Date.now() + ms;
  for (;;) {
    if (done?.()) break;
    if (Date.now() >= end) {
      if (done !== undefined) throw new Error(`watch cap of ${ms} ms ran out`);
      break;
    }
    const leaders = electors.filter((e) => e.isLeader());
    expect(leaders.length).toBeLessThanOrEqual(1);
    for (const l of leaders) seen.add(l.identity);
    await sleep(10);
  }
  return seen;
}

async function waitFor(what: string, check: () => boolean, ms = 5000): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
  return Date.now() - start;
}

describe('KubernetesLeaseElector', () => {
  it('elects exactly one of three pods and writes a Lease the API server accepts', async () => {
    const { leaseName, electors } = candidates(3);
    for (const e of electors) e.start();
    await waitFor('a leader', () => electors.some((e) => e.isLeader()));
    const seen = await watchExclusive(electors, 800);
    expect(seen.size).toBe(1);
    const leader = electors.find((e) => e.isLeader())!;
    const lease = kube.lease(NS, leaseName)!;
    expect(lease.spec).toMatchObject({
      holderIdentity: leader.identity,
      leaseDurationSeconds: 1,
      leaseTransitions: 0,
    });
    // Microsecond timestamps (V1MicroTime), renewed since acquisition.
    expect(lease.spec.renewTime).toMatch(/\.\d{6}Z$/);
    expect(lease.spec.acquireTime).toMatch(/\.\d{6}Z$/);
    expect(Date.parse(lease.spec.renewTime as string)).toBeGreaterThan(
      Date.parse(lease.spec.acquireTime as string),
    );
    expect(kube.rejectedTimes).toEqual([]);
  });

  it('stops leading within the renew deadline when renewals fail, and the lease passes on after its duration', async () => {
    const { leaseName, electors } = candidates(2);
    electors[0]!.start();
    await waitFor('first leader', () => electors[0]!.isLeader());
    electors[1]!.start();
    await sleep(300);
    expect(electors[1]!.isLeader()).toBe(false);

    kube.cutOff.add('pod-0');
    const cut = Date.now();
    const overlapWatch = watchExclusive(electors, 2500);
    const stoppedAfter = await waitFor('old leader to stop', () => !electors[0]!.isLeader());
    expect(stoppedAfter).toBeLessThanOrEqual(timing.renewDeadlineMs + 200);
    await waitFor('new leader', () => electors[1]!.isLeader(), 3000);
    const tookOverAfter = Date.now() - cut;
    // Not before the lease ran out (measured from the last renewal it saw), not much after.
    expect(tookOverAfter).toBeGreaterThanOrEqual(timing.leaseDurationMs - 2 * timing.retryPeriodMs);
    expect(tookOverAfter).toBeLessThanOrEqual(
      timing.leaseDurationMs + 4 * timing.retryPeriodMs + 500,
    );
    expect(await overlapWatch).toEqual(new Set(['pod-0', 'pod-1']));
    expect(kube.lease(NS, leaseName)!.spec).toMatchObject({
      holderIdentity: 'pod-1',
      leaseTransitions: 1,
    });
  });

  it('keeps leading through an API outage shorter than the renew deadline', async () => {
    const { electors } = candidates(1);
    electors[0]!.start();
    await waitFor('leader', () => electors[0]!.isLeader());
    kube.failing = true;
    await sleep(timing.renewDeadlineMs / 2);
    expect(electors[0]!.isLeader()).toBe(true);
    kube.failing = false;
    await sleep(timing.renewDeadlineMs);
    expect(electors[0]!.isLeader()).toBe(true);
  });

  it('releases on stop (SIGTERM): holder cleared, and a waiting pod leads within a retry period', async () => {
    const { leaseName, electors } = candidates(2);
    electors[0]!.start();
    await waitFor('first leader', () => electors[0]!.isLeader());
    electors[1]!.start();
    await sleep(200);
    await electors[0]!.stop();
    const released = kube.lease(NS, leaseName)!.spec;
    expect(released.holderIdentity).toBeUndefined();
    expect(released.leaseDurationSeconds).toBe(1);
    const after = await waitFor('second leader', () => electors[1]!.isLeader(), 2000);
    expect(after).toBeLessThan(timing.leaseDurationMs);
    expect(kube.lease(NS, leaseName)!.spec).toMatchObject({
      holderIdentity: 'pod-1',
      leaseTransitions: 1,
    });
  });

  it('retries a write that lost a resourceVersion race instead of taking the lease twice', async () => {
    // Six candidates start in the same tick: every create/replace after the
    // first conflicts (409) and must re-read. The lease and renew deadline are
    // long here so that on a loaded machine (a renewal round of six clients
    // can take most of a second) the leader neither lapses nor loses the lease
    // while the race is watched; the race itself happens in the first round
    // whatever the durations.
    const raceTiming: ElectionTiming = {
      leaseDurationMs: 20_000,
      renewDeadlineMs: 12_000,
      retryPeriodMs: 100,
    };
    const { leaseName, electors } = candidates(6, raceTiming);
    const before = kube.conflicts;
    const writesBefore = kube.writes.length;
    const writes = (): typeof kube.writes => kube.writes.slice(writesBefore);
    for (const e of electors) e.start();
    await waitFor('a leader', () => electors.some((e) => e.isLeader()), 60_000);
    // Watched through the acquisition and five renewals by the holder, while
    // the five others keep trying every retry period.
    const seen = await watchExclusive(electors, 60_000, () => writes().length >= 6);
    expect(seen.size).toBe(1);
    const [leader] = [...seen];
    expect(kube.conflicts).toBeGreaterThan(before);
    // Every write that went through was the leader's: nobody else ever held it.
    expect(new Set(writes().map((w) => w.holder))).toEqual(new Set([leader]));
    expect(kube.lease(NS, leaseName)!.spec).toMatchObject({
      holderIdentity: leader,
      leaseTransitions: 0,
    });
  });

  it('is what the fake API server enforces: a plain Date renewTime is refused (kubernetes-client/javascript#828)', async () => {
    const api = apiFor(kube.url, 'probe');
    const err: unknown = await api
      .createNamespacedLease({
        namespace: NS,
        body: {
          metadata: { name: 'plain-date' },
          spec: { holderIdentity: 'x', renewTime: new Date() },
        },
      })
      .catch((e: unknown) => e);
    expect((err as { code?: number }).code).toBe(400);
  });
});
