// The gc-worker's leader election under the Role the chart renders: the fake
// Lease API (services/gc-worker, no API server runs here) authorizes every
// call against that Role's rules as RBAC would, and the real elector
// (@kubernetes/client-node underneath) campaigns, renews, releases and hands
// over with the Lease name and namespace the chart gives the pods. A Role
// without a verb the elector needs fails here (docs/kubernetes.md "Leader
// election").
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { startFakeKubeApi, type FakeKubeApi, type PolicyRule } from '@shoal/testing/fake-kube-api';
import { createKubernetesLeaseElector } from '@shoal/gc-worker/kubernetes';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { containerEnv, ensureHelm, find, renderChart, type K8sObject } from './harness/helm.ts';

const NAMESPACE = 'tracker';
const timing = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let rules: PolicyRule[];
let leaseName: string;
let namespace: string;
let kube: FakeKubeApi | undefined;
const stops: Array<() => Promise<void>> = [];

beforeAll(async () => {
  await ensureHelm();
  const objects = await renderChart(4, { namespace: NAMESPACE });
  const role = find(objects, 'Role', 'shoal-gc-worker') as K8sObject & { rules: PolicyRule[] };
  rules = role.rules;
  const binding = find(objects, 'RoleBinding', 'shoal-gc-worker') as K8sObject & {
    roleRef: { kind: string; name: string };
    subjects: Array<{ kind: string; name: string; namespace: string }>;
  };
  const deployment = find(objects, 'Deployment', 'shoal-gc-worker');
  const pod = (deployment.spec as { template: { spec: { serviceAccountName?: string } } }).template
    .spec;
  // The Role reaches the pods: bound to the service account they run as.
  expect(binding.roleRef).toMatchObject({ kind: 'Role', name: role.metadata.name });
  expect(binding.subjects).toContainEqual({
    kind: 'ServiceAccount',
    name: pod.serviceAccountName,
    namespace: NAMESPACE,
  });
  const env = containerEnv(objects, deployment, 'gc-worker', {
    fieldRefs: { 'metadata.namespace': NAMESPACE, 'metadata.name': 'shoal-gc-worker-abc' },
  });
  expect(env.LEADER_ELECTION).toBe('kubernetes');
  leaseName = env.LEASE_NAME ?? '';
  namespace = env.POD_NAMESPACE ?? '';
  expect(leaseName).toBe('shoal-gc-worker');
}, 300_000);

afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
  await kube?.close();
  kube = undefined;
});

function elector(api: FakeKubeApi, identity: string) {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: api.url, skipTLSVerify: true }],
    users: [{ name: identity, token: identity }],
    contexts: [{ name: 'fake', cluster: 'fake', user: identity }],
    currentContext: 'fake',
  });
  const e = createKubernetesLeaseElector({
    api: kc.makeApiClient(CoordinationV1Api),
    namespace,
    leaseName,
    identity,
    timing,
    logger: pino({ level: 'silent' }),
  });
  stops.push(() => e.stop());
  return e;
}

async function waitFor(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const denied = (api: FakeKubeApi): string[] =>
  api.calls.filter((c) => !c.allowed).map((c) => `${c.verb} ${c.name ?? '(collection)'}`);

describe("gc-worker election under the chart's Role", () => {
  it('campaigns, renews, releases and hands over with every call allowed', async () => {
    kube = await startFakeKubeApi({ role: { namespace: NAMESPACE, rules } });
    const a = elector(kube, 'pod-a');
    a.start();
    await waitFor('pod-a to lead', () => a.isLeader());
    const b = elector(kube, 'pod-b');
    b.start();
    // Several renewals (each a get and an update) while pod-b waits.
    const renewals = (): number =>
      kube!.calls.filter((c) => c.verb === 'update' && c.allowed).length;
    await waitFor('renewals', () => renewals() >= 3);
    expect(b.isLeader()).toBe(false);
    await a.stop();
    expect(kube.lease(NAMESPACE, leaseName)?.spec.holderIdentity ?? null).toBeNull();
    await waitFor('pod-b to take over', () => b.isLeader());
    expect(kube.lease(NAMESPACE, leaseName)?.spec.holderIdentity).toBe('pod-b');

    expect(denied(kube)).toEqual([]);
    expect(new Set(kube.calls.map((c) => c.verb))).toEqual(new Set(['get', 'create', 'update']));
    // RBAC sees no name on create (a POST to the collection); every other call names the Lease.
    expect(new Set(kube.calls.filter((c) => c.verb !== 'create').map((c) => c.name))).toEqual(
      new Set([leaseName]),
    );
  });

  it('a Role without update: the leader cannot renew, and the refusals name the verb', async () => {
    const withoutUpdate = rules.map((r) => ({
      ...r,
      verbs: r.verbs.filter((v) => v !== 'update'),
    }));
    kube = await startFakeKubeApi({ role: { namespace: NAMESPACE, rules: withoutUpdate } });
    const a = elector(kube, 'pod-a');
    a.start();
    // create is allowed, so pod-a leads once; every renewal is then refused.
    await waitFor('pod-a to lead', () => a.isLeader());
    await waitFor('pod-a to lose the lease', () => !a.isLeader());
    expect(denied(kube)).toContain(`update ${leaseName}`);
  });

  it('a Role pinned to another Lease name, or in another namespace, never lets a worker lead', async () => {
    for (const role of [
      {
        namespace: NAMESPACE,
        rules: rules.map((r) => (r.resourceNames ? { ...r, resourceNames: ['other'] } : r)),
      },
      { namespace: 'elsewhere', rules },
    ]) {
      kube = await startFakeKubeApi({ role });
      const a = elector(kube, 'pod-a');
      a.start();
      await waitFor('refused calls', () => denied(kube!).length >= 3);
      expect(a.isLeader()).toBe(false);
      expect(denied(kube)[0]).toBe(`get ${leaseName}`);
      await a.stop();
      stops.length = 0;
      await kube.close();
      kube = undefined;
    }
  });
});
