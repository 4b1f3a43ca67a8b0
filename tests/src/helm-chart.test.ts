// helm/shoal renders with Helm 3 and Helm 4, lints strictly, produces only
// objects the Kubernetes schemas accept, and keeps the promises of docs/kubernetes.md:
// one Service with HTTP+UDP and Local traffic policy, no PDB at one replica,
// a minimal Role, no inline secret when an existing Secret is named, a
// values schema that refuses wrong types and unknown keys.
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  CHART_DIR,
  HELM_MAJORS,
  MONITORING_API_VERSIONS,
  REPO_ROOT,
  containerEnv,
  ensureHelm,
  find,
  helmLint,
  helmTemplate,
  ofKind,
  renderChart,
  renderNotes,
  validateObject,
  type K8sObject,
} from './harness/helm.ts';

/** Values files under helm/shoal/ci; [] is the chart's defaults. */
const VALUE_SETS: ReadonlyArray<{
  name: string;
  values: string[];
  apiVersions?: readonly string[];
}> = [
  { name: 'defaults', values: [] },
  {
    name: 'external stores (sentinel + postgres, existing secrets)',
    values: ['external-stores-values.yaml'],
  },
  { name: 'external ring + cockroach', values: ['external-ring-values.yaml'] },
  {
    name: 'external Redis Cluster, all durable data in Redis',
    values: ['external-cluster-values.yaml'],
  },
  { name: 'HPA on', values: ['hpa-values.yaml'] },
  {
    name: 'monitoring on',
    values: ['monitoring-values.yaml'],
    apiVersions: MONITORING_API_VERSIONS,
  },
  { name: 'CockroachDB TLS', values: ['tls-values.yaml'] },
  { name: 'CockroachDB TLS from cert-manager', values: ['tls-cert-manager-values.yaml'] },
  { name: 'dev profile', values: ['dev-values.yaml'] },
  { name: 'every tracker policy step on', values: ['policy-values.yaml'] },
  { name: 'gateway HTTPS only', values: ['gateway-tls-values.yaml'] },
  { name: 'GitOps: nothing generated, secrets named', values: ['gitops-values.yaml'] },
  { name: 'split TCP and UDP load balancers', values: ['split-lb-values.yaml'] },
  { name: 'durable data in Redis, its backup CronJob', values: ['redis-backup-values.yaml'] },
  {
    name: "the stores' exporters on",
    values: ['store-metrics-values.yaml'],
    apiVersions: MONITORING_API_VERSIONS,
  },
  {
    name: "the stores' exporters on, CockroachDB TLS",
    values: ['store-metrics-values.yaml', 'tls-values.yaml'],
    apiVersions: MONITORING_API_VERSIONS,
  },
];

interface Container {
  name: string;
  image: string;
  securityContext?: {
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
  env?: Array<{
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string } };
  }>;
}
interface PodSpec {
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  initContainers?: Container[];
}

function podSpec(o: K8sObject): PodSpec | undefined {
  if (o.kind === 'Pod') return o.spec as PodSpec;
  const spec = o.spec as { template?: { spec?: PodSpec } } | undefined;
  return spec?.template?.spec;
}

function workloads(objects: readonly K8sObject[]): K8sObject[] {
  return objects.filter((o) => ['Deployment', 'StatefulSet', 'Job', 'Pod'].includes(o.kind));
}

beforeAll(async () => {
  await ensureHelm();
}, 300_000);

describe('the schema validator', () => {
  it('catches unknown fields, wrong types and missing required fields', async () => {
    const deployment = (
      extra: Record<string, unknown>,
      containerExtra: Record<string, unknown> = {},
    ): K8sObject => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x' },
      spec: {
        selector: { matchLabels: { a: 'b' } },
        template: {
          metadata: { labels: { a: 'b' } },
          spec: { containers: [{ name: 'c', image: 'i', ...containerExtra }] },
        },
        ...extra,
      },
    });
    expect(await validateObject(deployment({}))).toEqual([]);
    expect((await validateObject(deployment({}, { readinesProbe: {} }))).join()).toMatch(
      /readinesProbe: unknown field/,
    );
    expect((await validateObject(deployment({ replicas: 'two' }))).join()).toMatch(/replicas/);
    expect((await validateObject(deployment({ selector: undefined }))).join()).toMatch(/selector/);
    const sm: K8sObject = {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { name: 'x' },
      spec: { selector: {}, endpoints: [{ port: 'admin', intervall: '30s' }] },
    };
    expect((await validateObject(sm)).join()).toMatch(/intervall: unknown field/);
  });
});

describe.each(HELM_MAJORS)('Helm %i', (major) => {
  it.each(VALUE_SETS)('lints --strict and renders schema-valid objects: $name', async (set) => {
    const opts = { values: set.values, apiVersions: set.apiVersions ?? [] };
    const lint = await helmLint(major, opts);
    expect(lint.ok, `${lint.stdout}\n${lint.stderr}`).toBe(true);
    const objects = await renderChart(major, opts);
    expect(objects.length).toBeGreaterThan(10);
    const problems = (await Promise.all(objects.map((o) => validateObject(o)))).flat();
    expect(problems).toEqual([]);
  });

  it('values.schema.json refuses a wrong type and an unknown key', async () => {
    const wrongType = await helmTemplate(major, { set: { 'gateway.replicas': 'two' } });
    expect(wrongType.ok).toBe(false);
    expect(wrongType.stderr).toMatch(/gateway\/replicas|gateway\.replicas/);
    const unknown = await helmTemplate(major, {
      values: [],
      set: { 'redis.sentinel.quorom': '2' },
    });
    expect(unknown.ok).toBe(false);
    expect(unknown.stderr).toMatch(/quorom/);
  });
});

describe('chart promises (Helm 4, defaults unless said)', () => {
  let objects: K8sObject[];
  beforeAll(async () => {
    objects = await renderChart(4);
  });

  // Helm 4 only: Helm 3's `install --dry-run=client` still asks an API server for its version.
  it('NOTES.txt gives the HTTP, WebSocket and UDP announce URLs (only those served)', async () => {
    const notes = await renderNotes(4);
    expect(notes).toContain('http://$ADDR:6969/announce');
    expect(notes).toContain('ws://$ADDR:6969/announce');
    expect(notes).toContain('docs/webtorrent.md "Kubernetes"');
    expect(notes).toContain('udp://$ADDR:6969/announce');
    expect(notes).toContain('helm test shoal -n tracker');
    const httpOnly = await renderNotes(4, {
      set: { 'gateway.udpEnabled': 'false', 'gateway.port': '443' },
    });
    expect(httpOnly).toContain('http://$ADDR:443/announce');
    expect(httpOnly).not.toContain('udp://');
    const udpOnly = await renderNotes(4, { set: { 'gateway.httpEnabled': 'false' } });
    expect(udpOnly).toContain('udp://$ADDR:6969/announce');
    expect(udpOnly).not.toContain('ws://');
  });

  it('one gateway Service carries HTTP (TCP) and UDP on 6969, keeps client IPs and is dual-stack', () => {
    const svc = find(objects, 'Service', 'shoal-gateway');
    const spec = svc.spec as {
      type: string;
      externalTrafficPolicy: string;
      ipFamilyPolicy: string;
      ports: Array<{ port: number; protocol: string }>;
    };
    expect(spec.type).toBe('LoadBalancer');
    expect(spec.externalTrafficPolicy).toBe('Local');
    expect(spec.ipFamilyPolicy).toBe('PreferDualStack');
    expect(spec.ports.map((p) => `${p.protocol}/${p.port}`).sort()).toEqual([
      'TCP/6969',
      'UDP/6969',
    ]);
  });

  it('the gateway Service takes a loadBalancerClass, and can split into TCP and UDP Services on one address', async () => {
    interface Svc {
      type: string;
      loadBalancerClass?: string;
      loadBalancerIP?: string;
      externalTrafficPolicy?: string;
      ports: Array<{ port: number; protocol: string }>;
    }
    const spec = (o: K8sObject): Svc => o.spec as Svc;
    const ports = (o: K8sObject): string[] => spec(o).ports.map((p) => `${p.protocol}/${p.port}`);
    const classed = await renderChart(4, {
      set: { 'gateway.service.loadBalancerClass': 'service.k8s.aws/nlb' },
    });
    const one = find(classed, 'Service', 'shoal-gateway');
    expect(spec(one).loadBalancerClass).toBe('service.k8s.aws/nlb');
    expect(ports(one)).toEqual(['TCP/6969', 'UDP/6969']);
    expect(spec(find(objects, 'Service', 'shoal-gateway')).loadBalancerClass).toBeUndefined();

    const split = await renderChart(4, { values: ['split-lb-values.yaml'] });
    const [inner, tcp, udp] = ['shoal-gateway', 'shoal-gateway-tcp', 'shoal-gateway-udp'].map((n) =>
      find(split, 'Service', n),
    ) as [K8sObject, K8sObject, K8sObject];
    // In-cluster clients and `helm test` keep one name with both protocols.
    expect(spec(inner).type).toBe('ClusterIP');
    expect(ports(inner)).toEqual(['TCP/6969', 'UDP/6969']);
    expect(ports(tcp)).toEqual(['TCP/6969']);
    expect(ports(udp)).toEqual(['UDP/6969']);
    for (const lb of [tcp, udp]) {
      expect(spec(lb)).toMatchObject({
        type: 'LoadBalancer',
        loadBalancerIP: '203.0.113.7',
        externalTrafficPolicy: 'Local',
      });
      expect(lb.metadata.annotations?.['metallb.universe.tf/allow-shared-ip']).toBe('shoal');
    }
    expect(udp.metadata.annotations?.['example.com/udp-only']).toBe('true');
    expect(tcp.metadata.annotations?.['example.com/udp-only']).toBeUndefined();
    const notes = await renderNotes(4, { values: ['split-lb-values.yaml'] });
    expect(notes).toContain('get svc shoal-gateway-tcp');

    const httpOnly = await renderChart(4, {
      values: ['split-lb-values.yaml'],
      set: { 'gateway.udpEnabled': 'false' },
    });
    expect(ofKind(httpOnly, 'Service').map((s) => s.metadata.name)).not.toContain(
      'shoal-gateway-udp',
    );
    const notLb = await helmTemplate(4, {
      values: ['split-lb-values.yaml'],
      set: { 'gateway.service.type': 'NodePort' },
    });
    expect(notLb.ok).toBe(false);
    expect(notLb.stderr).toMatch(
      /gateway\.service\.split .* needs gateway\.service\.type LoadBalancer/,
    );
  });

  it('every gateway replica reads the same UDP connection-ID secret from one Secret', () => {
    const gw = find(objects, 'Deployment', 'shoal-gateway');
    const env = podSpec(gw)?.containers[0]?.env ?? [];
    const ref = env.find((e) => e.name === 'UDP_CONNECTION_ID_SECRET')?.valueFrom?.secretKeyRef;
    expect(ref).toEqual({ name: 'shoal-secrets', key: 'udp-connection-id-secret' });
    const secret = find(objects, 'Secret', 'shoal-secrets') as K8sObject & {
      data: Record<string, string>;
    };
    expect(Buffer.from(secret.data['udp-connection-id-secret'] ?? '', 'base64').toString()).toMatch(
      /^[0-9a-f]{64}$/,
    );
  });

  it('probes hit the admin port and preStop delays SIGTERM', () => {
    const c = podSpec(find(objects, 'Deployment', 'shoal-gateway'))?.containers[0] as unknown as {
      readinessProbe: { httpGet: { path: string; port: string } };
      livenessProbe: { httpGet: { path: string; port: string } };
      lifecycle: { preStop: { exec: { command: string[] } } };
      ports: Array<{ name: string; containerPort: number }>;
    };
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(c.ports.find((p) => p.name === 'admin')?.containerPort).toBe(9090);
    expect(c.lifecycle.preStop.exec.command[0]).toBe('sleep');
  });

  it('gateway and storage-api keep serving through preStop, then drain, all within the grace period', async () => {
    interface Drained {
      terminationGracePeriodSeconds: number;
      containers: Array<{
        env: Array<{ name: string; value?: string }>;
        lifecycle?: { preStop?: { exec?: { command: string[] } } };
      }>;
    }
    const windows = (rendered: K8sObject[], name: string) => {
      const spec = podSpec(find(rendered, 'Deployment', name)) as unknown as Drained;
      const c = spec.containers[0]!;
      const [cmd, seconds] = c.lifecycle?.preStop?.exec?.command ?? [];
      expect(cmd, `${name} preStop`).toBe('sleep');
      const drain = Number(c.env.find((e) => e.name === 'SHUTDOWN_GRACE_SECONDS')?.value);
      return { preStop: Number(seconds), drain, grace: spec.terminationGracePeriodSeconds };
    };
    const gw = windows(objects, 'shoal-gateway');
    const api = windows(objects, 'shoal-storage-api');
    // Cloud balancers need 2-3 failed node health checks 5-10 s apart to stop sending.
    expect(gw.preStop).toBeGreaterThanOrEqual(30);
    expect(api.preStop).toBeGreaterThan(0);
    for (const w of [gw, api]) expect(w.grace).toBeGreaterThan(w.preStop + w.drain);

    const tuned = await renderChart(4, {
      set: {
        'gateway.preStopSleepSeconds': '90',
        'gateway.shutdownGraceSeconds': '40',
        'storageApi.preStopSleepSeconds': '20',
        'storageApi.shutdownGraceSeconds': '50',
      },
    });
    const [tgw, tapi] = [windows(tuned, 'shoal-gateway'), windows(tuned, 'shoal-storage-api')];
    expect([tgw.preStop, tgw.drain, tapi.preStop, tapi.drain]).toEqual([90, 40, 20, 50]);
    for (const w of [tgw, tapi]) expect(w.grace).toBeGreaterThan(w.preStop + w.drain);
  });

  it('has a gateway PDB at two replicas and none at one (a PDB over one pod blocks every drain)', async () => {
    expect(ofKind(objects, 'PodDisruptionBudget').map((p) => p.metadata.name)).toContain(
      'shoal-gateway',
    );
    const single = await renderChart(4, {
      set: { 'gateway.replicas': '1', 'storageApi.replicas': '1' },
    });
    const names = ofKind(single, 'PodDisruptionBudget').map((p) => p.metadata.name);
    expect(names).not.toContain('shoal-gateway');
    expect(names).not.toContain('shoal-storage-api');
    const hpaOne = await renderChart(4, {
      values: ['hpa-values.yaml'],
      set: { 'gateway.autoscaling.minReplicas': '1' },
    });
    expect(ofKind(hpaOne, 'PodDisruptionBudget').map((p) => p.metadata.name)).not.toContain(
      'shoal-gateway',
    );
  });

  it('with the HPA on, the Deployment leaves replicas to the autoscaler', async () => {
    const hpa = await renderChart(4, { values: ['hpa-values.yaml'] });
    const dep = find(hpa, 'Deployment', 'shoal-gateway');
    expect((dep.spec as { replicas?: number }).replicas).toBeUndefined();
    const auto = find(hpa, 'HorizontalPodAutoscaler', 'shoal-gateway').spec as {
      minReplicas: number;
      maxReplicas: number;
      metrics: unknown[];
    };
    expect(auto).toMatchObject({ minReplicas: 3, maxReplicas: 20 });
    const cpu = {
      type: 'Resource',
      resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } },
    };
    const announces = {
      type: 'Pods',
      pods: {
        metric: { name: 'shoal_announces_per_second' },
        target: { type: 'AverageValue', averageValue: '3000' },
      },
    };
    expect(auto.metrics).toEqual([cpu, announces]);
    const announcesOnly = await renderChart(4, {
      values: ['hpa-values.yaml'],
      set: { 'gateway.autoscaling.targetCPUUtilizationPercentage': '0' },
    });
    expect(
      (find(announcesOnly, 'HorizontalPodAutoscaler', 'shoal-gateway').spec as typeof auto).metrics,
    ).toEqual([announces]);
  });

  it("gc-worker's Role allows only get/update on its one Lease, plus create", () => {
    const role = find(objects, 'Role', 'shoal-gc-worker') as K8sObject & {
      rules: Array<{
        apiGroups: string[];
        resources: string[];
        verbs: string[];
        resourceNames?: string[];
      }>;
    };
    expect(role.rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['shoal-gc-worker'],
        verbs: ['get', 'update'],
      },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    ]);
    expect(ofKind(objects, 'ClusterRole')).toEqual([]);
    const binding = find(objects, 'RoleBinding', 'shoal-gc-worker') as K8sObject & {
      subjects: Array<{ name: string }>;
    };
    expect(binding.subjects.map((s) => s.name)).toEqual(['shoal-gc-worker']);
    // The other pods get no API token at all.
    for (const name of ['shoal-gateway', 'shoal-storage-api']) {
      const spec = podSpec(find(objects, 'Deployment', name)) as {
        automountServiceAccountToken?: boolean;
      };
      expect(spec.automountServiceAccountToken).toBe(false);
    }
  });

  it('two releases in one namespace elect their gc-worker leaders in two Leases, each in its Role', async () => {
    const leaseOf = (rendered: K8sObject[], release: string): string => {
      const env = podSpec(find(rendered, 'Deployment', `${release}-shoal-gc-worker`))?.containers[0]
        ?.env;
      const lease = env?.find((e) => e.name === 'LEASE_NAME')?.value ?? '';
      const role = find(rendered, 'Role', `${release}-shoal-gc-worker`) as K8sObject & {
        rules: Array<{ resourceNames?: string[] }>;
      };
      expect(role.rules[0]?.resourceNames).toEqual([lease]);
      return lease;
    };
    const [blue, green] = await Promise.all([
      renderChart(4, { releaseName: 'blue' }),
      renderChart(4, { releaseName: 'green' }),
    ]);
    const leases = [leaseOf(blue, 'blue'), leaseOf(green, 'green')];
    expect(leases).toEqual(['blue-shoal-gc-worker', 'green-shoal-gc-worker']);
    const named = await renderChart(4, {
      releaseName: 'blue',
      set: { 'gcWorker.leaseName': 'tracker-gc' },
    });
    expect(leaseOf(named, 'blue')).toBe('tracker-gc');
  });

  it('never copies a secret inline when an existing Secret is named', async () => {
    const ext = await renderChart(4, { values: ['external-stores-values.yaml'] });
    const named = new Set(['my-redis', 'my-postgres', 'my-shoal-token', 'my-udp-secret']);
    const ownSecrets = ofKind(ext, 'Secret') as Array<
      K8sObject & { data?: Record<string, string> }
    >;
    for (const s of ownSecrets) {
      expect(Object.keys(s.data ?? {})).toEqual([]);
    }
    const refs = workloads(ext).flatMap((w) =>
      [...(podSpec(w)?.containers ?? []), ...(podSpec(w)?.initContainers ?? [])].flatMap((c) =>
        (c.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : [])),
      ),
    );
    expect(refs.length).toBeGreaterThan(4);
    for (const r of refs) expect(named.has(r.name), `${r.name}/${r.key}`).toBe(true);
    expect(refs).toContainEqual({ name: 'my-udp-secret', key: 'secret' });
  });

  it('runs every container non-root with a read-only root filesystem and no capabilities', async () => {
    const all = [...objects, ...(await renderChart(4, { values: ['tls-values.yaml'] }))];
    for (const w of workloads(all)) {
      const spec = podSpec(w);
      expect(spec?.securityContext?.runAsNonRoot, `${w.kind}/${w.metadata.name}`).toBe(true);
      for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
        const where = `${w.kind}/${w.metadata.name}/${c.name}`;
        expect(c.securityContext?.readOnlyRootFilesystem, where).toBe(true);
        expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false);
        expect(c.securityContext?.capabilities?.drop, where).toEqual(['ALL']);
      }
    }
  });

  it('lets only Shoal store clients and the stores themselves reach Redis and CockroachDB', () => {
    const policies = ofKind(objects, 'NetworkPolicy') as Array<
      K8sObject & {
        spec: {
          podSelector: { matchLabels: Record<string, string> };
          ingress: Array<{ from: Array<{ podSelector: { matchLabels: Record<string, string> } }> }>;
        };
      }
    >;
    expect(
      policies.map((p) => p.spec.podSelector.matchLabels['app.kubernetes.io/component']).sort(),
    ).toEqual(['cockroachdb', 'redis']);
    const clientLabels = policies.flatMap((p) =>
      p.spec.ingress.flatMap((i) => i.from.map((f) => f.podSelector.matchLabels)),
    );
    const clients = workloads(objects).filter((w) => {
      const labels =
        (w.spec as { template?: { metadata?: { labels?: Record<string, string> } } }).template
          ?.metadata?.labels ?? {};
      return clientLabels.some((sel) => Object.entries(sel).every(([k, v]) => labels[k] === v));
    });
    const names = clients.map((c) => c.metadata.name).sort();
    expect(names).toContain('shoal-storage-api');
    expect(names).not.toContain('shoal-gateway');
    expect(names).not.toContain('shoal-gc-worker');
  });

  it('runs Redis Sentinel per pod with AOF+RDB on PVCs and a PDB', () => {
    const sts = find(objects, 'StatefulSet', 'shoal-redis');
    const spec = sts.spec as {
      replicas: number;
      volumeClaimTemplates: Array<{ metadata: { name: string } }>;
    };
    expect(spec.replicas).toBe(3);
    expect(spec.volumeClaimTemplates.map((v) => v.metadata.name)).toEqual(['data']);
    expect(podSpec(sts)?.containers.map((c) => c.name)).toEqual(['redis', 'sentinel']);
    const conf = (
      find(objects, 'ConfigMap', 'shoal-redis') as K8sObject & { data: Record<string, string> }
    ).data;
    expect(conf['redis.conf']).toMatch(/^appendonly yes$/m);
    expect(conf['redis.conf']).toMatch(/^save 3600 1/m);
    expect(conf['sentinel.conf']).toMatch(
      /^sentinel monitor shoal shoal-redis-0\.shoal-redis-headless\.tracker\.svc 6379 2$/m,
    );
    expect(ofKind(objects, 'PodDisruptionBudget').map((p) => p.metadata.name)).toContain(
      'shoal-redis',
    );
    // Both containers wait in preStop while a primary fails over (prestop.sh,
    // run for real in helm-sentinel.test.ts), within the grace period.
    const pod = podSpec(sts) as unknown as {
      terminationGracePeriodSeconds: number;
      containers: Array<{
        name: string;
        lifecycle?: { preStop?: { exec?: { command: string[] } } };
        volumeMounts: Array<{ name: string; mountPath: string }>;
      }>;
    };
    for (const c of pod.containers) {
      expect(c.lifecycle?.preStop?.exec?.command, c.name).toEqual(['sh', '/config/prestop.sh']);
      expect(c.volumeMounts, c.name).toContainEqual({ name: 'config', mountPath: '/config' });
    }
    expect(conf['prestop.sh']).toMatch(/^TIMEOUT_SECONDS=\$\{TIMEOUT_SECONDS:-60\}$/m);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(60);
  });

  it('runs CockroachDB as a StatefulSet with headless and public Services, an init Job and a PDB; one node in the dev profile', async () => {
    const sts = find(objects, 'StatefulSet', 'shoal-cockroachdb');
    expect((sts.spec as { replicas: number }).replicas).toBe(3);
    find(objects, 'Service', 'shoal-cockroachdb-headless');
    find(objects, 'Service', 'shoal-cockroachdb-public');
    find(objects, 'Job', 'shoal-cockroachdb-init');
    expect(ofKind(objects, 'PodDisruptionBudget').map((p) => p.metadata.name)).toContain(
      'shoal-cockroachdb',
    );
    const cmd = podSpec(sts)?.containers[0] as unknown as { command: string[] };
    expect(cmd.command.join(' ')).toMatch(/start --join=.*--certs-dir=/);

    const dev = await renderChart(4, { values: ['dev-values.yaml'] });
    const devSts = find(dev, 'StatefulSet', 'shoal-cockroachdb');
    expect((devSts.spec as { replicas: number }).replicas).toBe(1);
    expect(
      (podSpec(devSts)?.containers[0] as unknown as { command: string[] }).command.join(' '),
    ).toMatch(/start-single-node/);
    expect(ofKind(dev, 'PodDisruptionBudget').map((p) => p.metadata.name)).not.toContain(
      'shoal-cockroachdb',
    );

    const tls = await renderChart(4, { values: ['tls-values.yaml'] });
    const tlsCmd = (
      podSpec(find(tls, 'StatefulSet', 'shoal-cockroachdb'))?.containers[0] as unknown as {
        command: string[];
      }
    ).command.join(' ');
    expect(tlsCmd).toMatch(/--certs-dir=/);
    expect(tlsCmd).not.toMatch(/--insecure/);
    find(tls, 'Job', 'shoal-migrations');
  });

  it("backs the chart's Redis up only where it holds the durable data: a CronJob the NetworkPolicy admits, its volume kept", async () => {
    const peersOnly = await helmTemplate(4, { set: { 'redis.backup.enabled': 'true' } });
    expect(peersOnly.ok).toBe(false);
    expect(peersOnly.stderr).toMatch(
      /redis\.backup\.enabled: the chart's Redis holds only peers .* storageApi\.dataStore is postgres/,
    );
    expect(ofKind(objects, 'CronJob')).toEqual([]);
    const on = await renderChart(4, { values: ['redis-backup-values.yaml'] });
    const cron = find(on, 'CronJob', 'shoal-rdb-backup');
    const job = (
      cron.spec as {
        concurrencyPolicy: string;
        jobTemplate: {
          spec: {
            template: {
              metadata: { labels: Record<string, string> };
              spec: { volumes: Array<{ persistentVolumeClaim?: { claimName: string } }> };
            };
          };
        };
      }
    ).jobTemplate.spec.template;
    expect((cron.spec as { concurrencyPolicy: string }).concurrencyPolicy).toBe('Forbid');
    expect(job.metadata.labels['shoal.dev/store-client']).toBe('true');
    const claim = job.spec.volumes[0]?.persistentVolumeClaim?.claimName ?? '';
    expect(find(on, 'PersistentVolumeClaim', claim).metadata.annotations).toMatchObject({
      'helm.sh/resource-policy': 'keep',
    });
    const own = await renderChart(4, {
      values: ['redis-backup-values.yaml'],
      set: { 'redis.backup.persistence.existingClaim': 'my-backups' },
    });
    expect(ofKind(own, 'PersistentVolumeClaim')).toEqual([]);
  });

  it('refuses contradictory store choices with a clear message', async () => {
    const both = await helmTemplate(4, {
      set: { 'externalRedis.enabled': 'true', 'externalRedis.addresses': '{r:6379}' },
    });
    expect(both.ok).toBe(false);
    expect(both.stderr).toMatch(/redis\.enabled and externalRedis\.enabled/);
    const none = await helmTemplate(4, { set: { 'cockroachdb.enabled': 'false' } });
    expect(none.ok).toBe(false);
    expect(none.stderr).toMatch(/enable cockroachdb or externalDatabase/);
  });
});

describe.each(HELM_MAJORS)('Helm %i refuses values that cannot work, naming the value', (major) => {
  const digest = `sha256:${'ab'.repeat(32)}`;
  it.each([
    {
      what: 'HTTP, UDP and HTTPS all off',
      set: { 'gateway.httpEnabled': 'false', 'gateway.udpEnabled': 'false' },
      message: /gateway\.httpEnabled, gateway\.udpEnabled and gateway\.tls\.enabled are all false/,
    },
    {
      what: 'an HPA whose minimum is above its maximum',
      set: {
        'gateway.autoscaling.enabled': 'true',
        'gateway.autoscaling.minReplicas': '6',
        'gateway.autoscaling.maxReplicas': '4',
      },
      message:
        /gateway\.autoscaling\.minReplicas \(6\) is above gateway\.autoscaling\.maxReplicas \(4\)/,
    },
    {
      what: 'an HPA with no target',
      set: {
        'gateway.autoscaling.enabled': 'true',
        'gateway.autoscaling.targetCPUUtilizationPercentage': '0',
      },
      message: /gateway\.autoscaling has no target/,
    },
    {
      what: 'a digest given as the Redis tag',
      set: { 'redis.image.tag': digest },
      message: /redis\.image\.tag "sha256:[0-9a-f]+" is a digest.*redis\.image\.digest/,
    },
    {
      what: 'a tag@digest given as the CockroachDB tag',
      set: { 'cockroachdb.image.tag': `v25.2.2@${digest}` },
      message: /cockroachdb\.image\.tag .* is a digest.*cockroachdb\.image\.digest/,
    },
    {
      what: "a digest given as Shoal's tag",
      set: { 'image.tag': `@${digest}` },
      message: /image\.tag .* is a digest.*image\.overrides/,
    },
    {
      what: 'a memory peer store behind two storage-api replicas',
      set: { 'storageApi.peerStore': 'memory' },
      message:
        /storageApi\.peerStore or storageApi\.dataStore is memory.*storageApi\.replicas must be 1 \(is 2\)/,
    },
    {
      what: 'a memory data store behind three storage-api replicas',
      set: { 'storageApi.dataStore': 'memory', 'storageApi.replicas': '3' },
      message: /storageApi\.replicas must be 1 \(is 3\)/,
    },
  ])('$what', async ({ set, message }) => {
    const r = await helmTemplate(major, { set });
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(message);
  });

  it('accepts the working neighbours of those values', async () => {
    const ok = await Promise.all([
      helmTemplate(major, { set: { 'gateway.httpEnabled': 'false' } }),
      helmTemplate(major, {
        set: {
          'gateway.autoscaling.enabled': 'true',
          'gateway.autoscaling.minReplicas': '4',
          'gateway.autoscaling.maxReplicas': '4',
        },
      }),
      helmTemplate(major, {
        set: { 'storageApi.peerStore': 'memory', 'storageApi.replicas': '1' },
      }),
    ]);
    for (const r of ok) expect(r.stderr).toBe('');
    const pinned = await renderChart(major, {
      set: { 'redis.image.digest': digest, 'cockroachdb.image.digest': digest },
    });
    const images = [
      ...(podSpec(find(pinned, 'StatefulSet', 'shoal-redis'))?.containers ?? []),
      ...(podSpec(find(pinned, 'StatefulSet', 'shoal-cockroachdb'))?.containers ?? []),
    ].map((c) => c.image);
    expect(images).toEqual([
      `redis:7.4-alpine@${digest}`,
      `redis:7.4-alpine@${digest}`,
      `cockroachdb/cockroach:v25.2.2@${digest}`,
    ]);
    const badDigest = await helmTemplate(major, { set: { 'redis.image.digest': 'latest' } });
    expect(badDigest.ok).toBe(false);
    expect(badDigest.stderr).toMatch(/redis\/image\/digest|redis\.image\.digest/);
  });
});

describe.each(HELM_MAJORS)('Helm %i: secrets under GitOps and password changes', (major) => {
  const inline = {
    gitops: 'true',
    'storageApiToken.value': 'token-0123456789abcdef',
    'storageApiAdminToken.value': 'admin-0123456789abcdef',
    'gateway.udpConnectionIdSecret.value': 'ab'.repeat(32),
    'redis.auth.password': 'redis-password-1',
    'redis.auth.sentinelPassword': 'sentinel-password-1',
    'cockroachdb.tls.nodeSecret': 'crdb-node',
    'cockroachdb.tls.rootClientSecret': 'crdb-root',
    'cockroachdb.tls.userClientSecret': 'crdb-user',
  };

  it('two renders of the GitOps values are identical, with secrets named or given inline', async () => {
    for (const opts of [{ values: ['gitops-values.yaml'] }, { set: inline }]) {
      const [a, b] = [await helmTemplate(major, opts), await helmTemplate(major, opts)];
      expect(a.ok, a.stderr).toBe(true);
      expect(a.stdout.length).toBeGreaterThan(1000);
      expect(b.stdout).toBe(a.stdout);
    }
  });

  it('gitops: true refuses to generate, naming every secret that is missing', async () => {
    const r = await helmTemplate(major, {
      set: { gitops: 'true', 'storageApiToken.existingSecret': 'mine' },
    });
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(/gitops is true/);
    expect(r.stderr).not.toMatch(/storageApiToken\.value/);
    for (const missing of [
      'storageApiAdminToken.value or .existingSecret',
      'gateway.udpConnectionIdSecret.value or .existingSecret',
      'redis.auth.password and redis.auth.sentinelPassword, or redis.auth.existingSecret',
    ])
      expect(r.stderr).toContain(missing);
  });

  it('a Redis password change rolls the Redis pods; an unrelated token change does not', async () => {
    const annotation = async (set: Record<string, string>): Promise<string | undefined> => {
      const sts = find(
        await renderChart(major, { set: { ...inline, ...set } }),
        'StatefulSet',
        'shoal-redis',
      );
      return (sts.spec as { template: { metadata: { annotations?: Record<string, string> } } })
        .template.metadata.annotations?.['checksum/auth'];
    };
    const before = await annotation({});
    expect(before).toMatch(/^[0-9a-f]{64}$/);
    expect(await annotation({ 'storageApiToken.value': 'token-fedcba9876543210' })).toBe(before);
    expect(await annotation({ 'redis.auth.password': 'redis-password-2' })).not.toBe(before);
    expect(await annotation({ 'redis.auth.sentinelPassword': 'sentinel-password-2' })).not.toBe(
      before,
    );
    const named = await annotation({ 'redis.auth.existingSecret': 'redis-v1' });
    expect(await annotation({ 'redis.auth.existingSecret': 'redis-v2' })).not.toBe(named);
  });
});

describe('monitoring objects', () => {
  it('are created only when enabled and the cluster has the CRDs', async () => {
    const withoutCrds = await renderChart(4, { values: ['monitoring-values.yaml'] });
    expect(ofKind(withoutCrds, 'ServiceMonitor')).toEqual([]);
    expect(ofKind(withoutCrds, 'PrometheusRule')).toEqual([]);
    const off = await renderChart(4, { apiVersions: MONITORING_API_VERSIONS });
    expect(ofKind(off, 'ServiceMonitor')).toEqual([]);

    const on = await renderChart(4, {
      values: ['monitoring-values.yaml'],
      apiVersions: MONITORING_API_VERSIONS,
    });
    const sm = find(on, 'ServiceMonitor', 'shoal');
    expect(sm.metadata.labels?.release).toBe('kube-prometheus-stack');
    expect((sm.spec as { jobLabel: string }).jobLabel).toBe('shoal.dev/job');
  });

  it('give Prometheus the job names the shipped rules and dashboards query', async () => {
    const on = await renderChart(4, {
      values: ['monitoring-values.yaml'],
      apiVersions: MONITORING_API_VERSIONS,
      releaseName: 'tracker-prod',
    });
    const scraped = new Set(
      ofKind(on, 'Service')
        .filter((s) => s.metadata.labels?.['shoal.dev/metrics'] === 'true')
        .map((s) => s.metadata.labels?.['shoal.dev/job']),
    );
    expect([...scraped].sort()).toEqual(['shoal-gateway', 'shoal-gc-worker', 'shoal-storage-api']);
    const rules = ofKind(on, 'PrometheusRule');
    const text =
      JSON.stringify(rules.map((r) => r.spec)) +
      JSON.stringify(ofKind(on, 'ConfigMap').map((c) => c.data));
    // The stores dashboard reads the exporters' jobs, which exist only with
    // the exporters on (docs/kubernetes.md): those come from that render.
    const stores = await renderChart(4, {
      values: ['store-metrics-values.yaml'],
      apiVersions: MONITORING_API_VERSIONS,
      releaseName: 'tracker-prod',
    });
    const storeScraped = new Set(
      ofKind(stores, 'Service')
        .filter((s) => s.metadata.labels?.['shoal.dev/store-metrics'] === 'true')
        .map((s) => s.metadata.labels?.['shoal.dev/job']),
    );
    expect([...storeScraped].sort()).toEqual(['shoal-cockroachdb', 'shoal-redis']);
    const queried = new Set([...text.matchAll(/job=\\*"([a-z-]+)\\*"/g)].map((m) => m[1]));
    expect([...queried].filter((j) => !scraped.has(j) && !storeScraped.has(j))).toEqual([]);
    expect(queried.has('shoal-redis') && queried.has('shoal-cockroachdb')).toBe(true);
  });

  it('ship dashboards as ConfigMaps for the Grafana sidecar and rules equal to deploy/monitoring', async () => {
    const on = await renderChart(4, {
      values: ['monitoring-values.yaml'],
      apiVersions: MONITORING_API_VERSIONS,
    });
    const dashboards = ofKind(on, 'ConfigMap').filter(
      (c) => c.metadata.labels?.grafana_dashboard === '1',
    ) as Array<K8sObject & { data: Record<string, string> }>;
    const deployDir = resolve(REPO_ROOT, 'deploy/monitoring/dashboards');
    const files = (await readdir(deployDir).catch(() => []))
      .filter((f) => f.endsWith('.json'))
      .sort();
    expect(dashboards.flatMap((d) => Object.keys(d.data)).sort()).toEqual(files);
    for (const d of dashboards) {
      for (const [file, json] of Object.entries(d.data)) {
        expect(JSON.parse(json)).toEqual(JSON.parse(await readFile(join(deployDir, file), 'utf8')));
      }
    }
    const rulesDir = resolve(REPO_ROOT, 'deploy/monitoring/rules');
    const ruleFiles = (await readdir(rulesDir).catch(() => []))
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
    const groups = [];
    for (const f of ruleFiles) {
      groups.push(
        ...((parseYaml(await readFile(join(rulesDir, f), 'utf8')) as { groups?: unknown[] } | null)
          ?.groups ?? []),
      );
    }
    const rendered = ofKind(on, 'PrometheusRule').flatMap(
      (r) => (r.spec as { groups: unknown[] }).groups,
    );
    expect(rendered).toEqual(groups);
  });
});

describe('CockroachDB TLS from cert-manager (Helm 4)', () => {
  interface Certificate {
    secretName: string;
    commonName: string;
    dnsNames?: string[];
    usages: string[];
    issuerRef: { name: string; kind: string };
  }
  const volumeSecrets = (w: K8sObject): string[] => {
    const volumes =
      ((w.spec as { template: { spec: { volumes?: unknown[] } } }).template.spec.volumes as
        | Array<{
            secret?: { secretName: string };
            projected?: { sources: Array<{ secret?: { name: string } }> };
          }>
        | undefined) ?? [];
    return volumes.flatMap((v) => [
      ...(v.secret ? [v.secret.secretName] : []),
      ...(v.projected?.sources.flatMap((s) => (s.secret ? [s.secret.name] : [])) ?? []),
    ]);
  };

  it('issues node, root and user certificates whose Secrets the pods mount and whose names the clients dial', async () => {
    const objects = await renderChart(4, {
      values: ['tls-cert-manager-values.yaml', 'monitoring-values.yaml'],
      set: { 'cockroachdb.metrics.enabled': 'true' },
      apiVersions: MONITORING_API_VERSIONS,
    });
    const certs = new Map(
      ofKind(objects, 'Certificate').map((c) => [
        (c.spec as Certificate).commonName,
        c.spec as Certificate,
      ]),
    );
    expect([...certs.keys()].sort()).toEqual(['node', 'root', 'shoal']);
    for (const c of certs.values()) expect(c.issuerRef).toMatchObject({ name: 'shoal-ca' });
    const node = certs.get('node')!;
    expect(node.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
    expect(certs.get('shoal')!.usages).toContain('client auth');

    // Every name a node or client dials is in the node certificate.
    const url = new URL(
      Buffer.from(
        (find(objects, 'Secret', 'shoal-secrets') as K8sObject & { data: Record<string, string> })
          .data['database-url'] ?? '',
        'base64',
      ).toString(),
    );
    expect(url.searchParams.get('sslmode')).toBe('verify-full');
    const covers = (name: string): boolean =>
      (node.dnsNames ?? []).some((d) =>
        d.startsWith('*.')
          ? name.endsWith(d.slice(1)) && !name.slice(0, -d.length + 1).includes('.')
          : d === name,
      );
    expect(covers(url.hostname), url.hostname).toBe(true);
    expect(covers('shoal-cockroachdb-2.shoal-cockroachdb-headless.tracker.svc')).toBe(true);
    const sm = find(objects, 'ServiceMonitor', 'shoal-stores').spec as {
      endpoints: Array<{ port: string; tlsConfig?: { serverName?: string } }>;
    };
    const serverName = sm.endpoints.find((e) => e.port === 'http')?.tlsConfig?.serverName ?? '';
    expect(covers(serverName), serverName).toBe(true);

    // The pods mount what the Certificates write.
    const sts = find(objects, 'StatefulSet', 'shoal-cockroachdb');
    expect(volumeSecrets(sts)).toEqual([node.secretName]);
    expect(volumeSecrets(find(objects, 'Job', 'shoal-cockroachdb-init'))).toEqual([
      certs.get('root')!.secretName,
    ]);
    expect(volumeSecrets(find(objects, 'Deployment', 'shoal-storage-api'))).toEqual([
      certs.get('shoal')!.secretName,
    ]);
  });

  it('refuses cert-manager without an issuer, or with Secret names it would not use', async () => {
    const noIssuer = await helmTemplate(4, {
      values: ['tls-cert-manager-values.yaml'],
      set: { 'cockroachdb.tls.certManager.issuerRef.name': '' },
    });
    expect(noIssuer.ok).toBe(false);
    expect(noIssuer.stderr).toMatch(/cockroachdb\.tls\.certManager\.issuerRef\.name/);
    const both = await helmTemplate(4, {
      values: ['tls-cert-manager-values.yaml'],
      set: { 'cockroachdb.tls.nodeSecret': 'mine' },
    });
    expect(both.ok).toBe(false);
    expect(both.stderr).toMatch(/leave cockroachdb\.tls\.nodeSecret/);
  });
});

describe("the stores' metrics (Helm 4)", () => {
  interface Endpoint {
    port: string;
    path: string;
    scheme?: string;
  }
  interface Rule {
    from?: unknown[];
    ports: Array<{ port: number }>;
  }
  const ingress = (objects: K8sObject[], name: string): Rule[] =>
    (find(objects, 'NetworkPolicy', name).spec as { ingress: Rule[] }).ingress;

  it('a redis_exporter sidecar and CockroachDB /_status/vars are scraped as shoal-redis and shoal-cockroachdb', async () => {
    const objects = await renderChart(4, {
      values: ['store-metrics-values.yaml'],
      apiVersions: MONITORING_API_VERSIONS,
    });
    const sm = find(objects, 'ServiceMonitor', 'shoal-stores').spec as {
      jobLabel: string;
      selector: { matchLabels: Record<string, string> };
      endpoints: Endpoint[];
    };
    expect(sm.endpoints.map((e) => `${e.port} ${e.path}`)).toEqual([
      'metrics /metrics',
      'http /_status/vars',
    ]);
    // Each endpoint finds its Service: the selected Services carry the port it names.
    const selected = ofKind(objects, 'Service').filter((svc) =>
      Object.entries(sm.selector.matchLabels).every(([k, v]) => svc.metadata.labels?.[k] === v),
    );
    const jobs = new Map<string | undefined, string[]>(
      selected.map((svc) => [
        svc.metadata.labels?.[sm.jobLabel],
        (svc.spec as { ports: Array<{ name: string }> }).ports.map((p) => p.name),
      ]),
    );
    expect(jobs.get('shoal-redis')).toContain('metrics');
    expect(jobs.get('shoal-cockroachdb')).toContain('http');

    const sts = find(objects, 'StatefulSet', 'shoal-redis');
    const exporter = podSpec(sts)?.containers.find((c) => c.name === 'metrics');
    expect(exporter?.image).toBe('oliver006/redis_exporter:v1.67.0');
    const env = containerEnv(objects, sts, 'metrics');
    expect(env.REDIS_ADDR).toBe('redis://127.0.0.1:6379');
    expect(env.REDIS_PASSWORD).toBe(containerEnv(objects, sts, 'redis').REDIS_PASSWORD);

    // Only the named Prometheus namespace reaches the metrics ports.
    const monitoring = [
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ];
    expect(ingress(objects, 'shoal-redis')).toContainEqual({
      ports: [{ port: 9121, protocol: 'TCP' }],
      from: monitoring,
    });
    expect(ingress(objects, 'shoal-cockroachdb')).toContainEqual({
      ports: [{ port: 8080, protocol: 'TCP' }],
      from: monitoring,
    });
  });

  it('scrapes CockroachDB over HTTPS with its CA when TLS is on, and opens nothing when metrics are off', async () => {
    const tls = await renderChart(4, {
      values: ['store-metrics-values.yaml', 'tls-values.yaml'],
      apiVersions: MONITORING_API_VERSIONS,
    });
    const http = (
      find(tls, 'ServiceMonitor', 'shoal-stores').spec as {
        endpoints: Array<Endpoint & { tlsConfig?: { ca?: { secret?: { key: string } } } }>;
      }
    ).endpoints.find((e) => e.port === 'http');
    expect(http?.scheme).toBe('https');
    expect(http?.tlsConfig?.ca?.secret?.key).toBe('ca.crt');

    const off = await renderChart(4, {
      values: ['monitoring-values.yaml'],
      apiVersions: MONITORING_API_VERSIONS,
    });
    expect(ofKind(off, 'ServiceMonitor').map((o) => o.metadata.name)).toEqual(['shoal']);
    expect(podSpec(find(off, 'StatefulSet', 'shoal-redis'))?.containers.map((c) => c.name)).toEqual(
      ['redis', 'sentinel'],
    );
    const ports = (rules: Rule[]): number[] => rules.flatMap((r) => r.ports.map((p) => p.port));
    expect(ports(ingress(off, 'shoal-redis'))).not.toContain(9121);
    // 8080 stays open to the other CockroachDB nodes only.
    expect(ingress(off, 'shoal-cockroachdb').filter((r) => !r.from)).toEqual([]);
  });
});

describe("the chart's copies of files outside it", () => {
  async function sameFiles(from: string, to: string, pattern: RegExp): Promise<void> {
    const list = async (dir: string): Promise<string[]> =>
      (await readdir(dir).catch(() => [])).filter((f) => pattern.test(f)).sort();
    const [a, b] = [await list(from), await list(to)];
    expect(b, `run helm/sync-monitoring.sh: ${to} differs from ${from}`).toEqual(a);
    for (const f of a) {
      expect(await readFile(join(to, f), 'utf8'), `run helm/sync-monitoring.sh: ${f} differs`).toBe(
        await readFile(join(from, f), 'utf8'),
      );
    }
  }

  it('equal deploy/monitoring (dashboards, rules) and deploy/redis/redis.conf', async () => {
    await sameFiles(
      resolve(REPO_ROOT, 'deploy/monitoring/dashboards'),
      resolve(CHART_DIR, 'files/dashboards'),
      /\.json$/,
    );
    await sameFiles(
      resolve(REPO_ROOT, 'deploy/monitoring/rules'),
      resolve(CHART_DIR, 'files/rules'),
      /\.ya?ml$/,
    );
    expect(await readFile(resolve(CHART_DIR, 'files/redis/redis.conf'), 'utf8')).toBe(
      await readFile(resolve(REPO_ROOT, 'deploy/redis/redis.conf'), 'utf8'),
    );
  });
});
