// The Kubernetes Lease elector through the real @kubernetes/client-node
// against a fake API server (no API server runs here, docs/conventions.md
// "Tests"). Timings are scaled down, retry period 100 ms. Every test runs in
// one process with the fake API, so a loaded machine stalls the candidates
// and the server together: nothing here is bounded by the wall clock. Bounds
// are events instead: the API server's own record of who wrote and read the
// Lease, and when (`kube.writes`, `kube.calls`), and the count of attempts a
// candidate made, which load can only lower (they are a retry period apart).
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeKubeApi, type FakeKubeApi } from '@shoal/testing/fake-kube-api';
import { createKubernetesLeaseElector } from './kubernetes.ts';
import type { ElectionTiming, LeaderElector } from './types.ts';

/**
 * A lease long enough that no stall of a loaded machine lets it lapse or pass
 * on while a test watches it (with 1 s a leader lapsed, and with it another
 * candidate could take over, when a renewal round took longer).
 */
const steady: ElectionTiming = {
  leaseDurationMs: 20_000,
  renewDeadlineMs: 12_000,
  retryPeriodMs: 100,
};
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
  electionTiming: ElectionTiming,
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
 * Samples every 10 ms (the first sample at once, before it returns) for
 * `ms`, or until `done(seen)` holds when given (then `ms` is only a cap and
 * running out fails); fails if two electors ever lead at once. Returns the
 * leaders seen.
 */
async function watchExclusive(
  electors: LeaderElector[],
  ms: number,
  done?: (seen: Set<string>) => boolean,
): Promise<Set<string>> {
  const seen = new Set<string>();
  const end = Date.now() + ms;
  for (;;) {
    if (done?.(seen)) break;
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

/** Polls `check` every 5 ms; a cap for a loaded machine, not a bound. */
async function waitFor(what: string, check: () => boolean, ms = 60_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The Lease reads (GET) by `user` that the API server handled after the call or write numbered `after` (its `seq`) and up to `upTo`. */
function readsBy(user: string, leaseName: string, after: number, upTo = Infinity): number {
  return kube.calls.filter(
    (c) =>
      c.user === user && c.verb === 'get' && c.name === leaseName && c.seq > after && c.seq <= upTo,
  ).length;
}

/** The API server's successful writes since `from` (an index into `kube.writes`). */
const writesSince = (from: number): typeof kube.writes => kube.writes.slice(from);

describe('KubernetesLeaseElector', () => {
  it('elects exactly one of three pods and writes a Lease the API server accepts', async () => {
    const { leaseName, electors } = candidates(3, steady);
    const from = kube.writes.length;
    for (const e of electors) e.start();
    await waitFor('a leader', () => electors.some((e) => e.isLeader()));
    // Watched through the acquisition and two renewals by the holder.
    const seen = await watchExclusive(electors, 60_000, () => writesSince(from).length >= 3);
    expect(seen.size).toBe(1);
    const [leader] = [...seen];
    const lease = kube.lease(NS, leaseName)!;
    expect(lease.spec).toMatchObject({
      holderIdentity: leader,
      leaseDurationSeconds: 20,
      leaseTransitions: 0,
    });
    // Microsecond timestamps (V1MicroTime), renewed since acquisition.
    expect(lease.spec.renewTime).toMatch(/\.\d{6}Z$/);
    expect(lease.spec.acquireTime).toMatch(/\.\d{6}Z$/);
    expect(Date.parse(lease.spec.renewTime as string)).toBeGreaterThan(
      Date.parse(lease.spec.acquireTime as string),
    );
    expect(kube.rejectedTimes).toEqual([]);
  }, 120_000);

  it('stops leading once the renew deadline has passed without a renewal, and the lease passes on after its duration, at the next attempt', async () => {
    // Long enough that neither a lapse of pod-0 nor a takeover by pod-1 can
    // come before the cut, however slow a round is.
    const cutTiming: ElectionTiming = {
      leaseDurationMs: 6000,
      renewDeadlineMs: 4000,
      retryPeriodMs: 100,
    };
    const { leaseName, electors } = candidates(2, cutTiming);
    const [a, b] = electors as [LeaderElector, LeaderElector];
    const from = kube.writes.length;
    const aChanges: boolean[] = [];
    a.onChange((leading) => aChanges.push(leading));
    a.start();
    await waitFor('first leader', () => a.isLeader());
    b.start();
    await waitFor('pod-1 to read the Lease pod-0 holds', () => readsBy('pod-1', leaseName, 0) >= 2);
    expect(b.isLeader()).toBe(false);

    // The watch takes its first sample now, while pod-0 still leads.
    expect(a.isLeader()).toBe(true);
    const overlapWatch = watchExclusive(electors, 120_000, (seen) => seen.has('pod-1'));
    kube.cutOff.add('pod-0');
    const cut = Date.now();
    // No renewal of pod-0 can succeed after the cut, so once the renew
    // deadline has passed since, it must not lead (however late this wakes;
    // 50 ms more because a timer may fire a millisecond early by Date.now()).
    await sleep(cutTiming.renewDeadlineMs + 50);
    expect(Date.now() - cut).toBeGreaterThanOrEqual(cutTiming.renewDeadlineMs);
    expect(a.isLeader()).toBe(false);
    await waitFor('pod-0 to report it stopped leading', () => aChanges.includes(false));
    await waitFor('new leader', () => b.isLeader());
    expect(await overlapWatch).toEqual(new Set(['pod-0', 'pod-1']));

    const writes = writesSince(from);
    const lastRenewal = writes.filter((w) => w.user === 'pod-0').at(-1)!;
    const takeover = writes.find((w) => w.holder === 'pod-1')!;
    // Not before the lease ran out: pod-1 saw pod-0's last renewal no sooner than it was stored.
    expect(takeover.at - lastRenewal.at).toBeGreaterThanOrEqual(cutTiming.leaseDurationMs);
    // Not much after: at pod-1's first attempt past the lease. Its attempts
    // are at least a retry period apart, so at most duration / retry of them
    // fall within the lease after it read that renewal (load only makes fewer).
    expect(readsBy('pod-1', leaseName, lastRenewal.seq, takeover.seq)).toBeLessThanOrEqual(
      cutTiming.leaseDurationMs / cutTiming.retryPeriodMs + 2,
    );
    expect(kube.lease(NS, leaseName)!.spec).toMatchObject({
      holderIdentity: 'pod-1',
      leaseTransitions: 1,
    });
  }, 180_000);

  it('keeps leading through an API outage shorter than the renew deadline', async () => {
    const { electors } = candidates(1, steady);
    const [e] = electors as [LeaderElector];
    const changes: boolean[] = [];
    e.onChange((leading) => changes.push(leading));
    e.start();
    await waitFor('leader', () => e.isLeader());
    const refused = kube.unavailable;
    kube.failing = true;
    // Five renewals refused: an outage far shorter than the 12 s renew deadline.
    await waitFor('five refused renewals', () => kube.unavailable - refused >= 5);
    expect(e.isLeader()).toBe(true);
    kube.failing = false;
    const from = kube.writes.length;
    await waitFor('a renewal after the outage', () =>
      writesSince(from).some((w) => w.user === 'pod-0'),
    );
    expect(e.isLeader()).toBe(true);
    // It never stopped leading meanwhile.
    expect(changes).toEqual([true]);
  }, 120_000);

  it('releases on stop (SIGTERM): holder cleared, and a waiting pod leads at its next attempt', async () => {
    const { leaseName, electors } = candidates(2, steady);
    const [a, b] = electors as [LeaderElector, LeaderElector];
    const from = kube.writes.length;
    a.start();
    await waitFor('first leader', () => a.isLeader());
    b.start();
    await waitFor('pod-1 to read the Lease pod-0 holds', () => readsBy('pod-1', leaseName, 0) >= 1);
    await a.stop();
    const released = kube.lease(NS, leaseName)!.spec;
    expect(released.holderIdentity).toBeUndefined();
    expect(released.leaseDurationSeconds).toBe(1);
    await waitFor('second leader', () => b.isLeader());
    const writes = writesSince(from);
    const release = writes.filter((w) => w.user === 'pod-0').at(-1)!;
    const takeover = writes.find((w) => w.holder === 'pod-1')!;
    // Taken at pod-1's first read of the released Lease, not after the 20 s lease ran out.
    expect(readsBy('pod-1', leaseName, release.seq, takeover.seq)).toBe(1);
    expect(kube.lease(NS, leaseName)!.spec).toMatchObject({
      holderIdentity: 'pod-1',
      leaseTransitions: 1,
    });
  }, 120_000);

  it('retries a write that lost a resourceVersion race instead of taking the lease twice', async () => {
    // Six candidates start in the same tick: every create/replace after the
    // first conflicts (409) and must re-read. The lease is `steady`, so that
    // on a loaded machine (a renewal round of six clients can take most of a
    // second) the leader neither lapses nor loses the lease while the race is
    // watched; the race itself happens in the first round whatever the
    // durations.
    const { leaseName, electors } = candidates(6, steady);
    const before = kube.conflicts;
    const from = kube.writes.length;
    const writes = (): typeof kube.writes => writesSince(from);
    for (const e of electors) e.start();
    await waitFor('a leader', () => electors.some((e) => e.isLeader()));
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
  }, 120_000);

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
