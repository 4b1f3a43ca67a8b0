// Release names up to Helm's limit of 53 characters install: every name and
// label value the chart renders stays within what the API server accepts
// (docs/kubernetes.md "Names").
import { beforeAll, describe, expect, it } from 'vitest';
import {
  HELM_MAJORS,
  MONITORING_API_VERSIONS,
  ensureHelm,
  renderChart,
  type K8sObject,
  type RenderOptions,
} from './harness/helm.ts';

// 53 characters: the longest release name Helm accepts.
const LONG_RELEASE = 'tracker-production-europe-west-primary-cluster-ab-001';
const DNS_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const VALUE_SETS: ReadonlyArray<{ name: string; opts: RenderOptions }> = [
  { name: 'defaults', opts: {} },
  {
    name: 'monitoring on',
    opts: { values: ['monitoring-values.yaml'], apiVersions: MONITORING_API_VERSIONS },
  },
  { name: 'CockroachDB TLS, migrations Job', opts: { values: ['tls-values.yaml'] } },
  { name: 'HPA on', opts: { values: ['hpa-values.yaml'] } },
  { name: 'dev profile', opts: { values: ['dev-values.yaml'] } },
  { name: 'split TCP and UDP load balancers', opts: { values: ['split-lb-values.yaml'] } },
  { name: 'Redis backup CronJob', opts: { values: ['redis-backup-values.yaml'] } },
];

interface Meta {
  name?: string;
  labels?: Record<string, string>;
}
interface Spec {
  replicas?: number;
  serviceName?: string;
  /** matchLabels for workloads; the label map itself for a Service. */
  selector?: Record<string, unknown>;
  template?: { metadata?: Meta };
  volumeClaimTemplates?: Array<{ metadata?: Meta }>;
}

/** Every problem the API server (or the controllers after it) would have with these objects. */
function nameProblems(objects: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  const labelValues = (where: string, labels: Record<string, string> | undefined): void => {
    for (const [k, v] of Object.entries(labels ?? {})) {
      const value = String(v);
      if (value.length > 63 || !LABEL_VALUE.test(value))
        problems.push(`${where}: label ${k}=${value} (${value.length} chars)`);
    }
  };
  const seen = new Set<string>();
  for (const o of objects) {
    const name = o.metadata.name;
    const where = `${o.kind}/${name}`;
    if (seen.has(where)) problems.push(`${where}: rendered twice (names collide)`);
    seen.add(where);
    if (name.length > 63 || !DNS_1123_LABEL.test(name))
      problems.push(`${where}: name of ${name.length} chars`);
    labelValues(where, o.metadata.labels);
    const spec = (o.spec ?? {}) as Spec;
    labelValues(`${where} template`, spec.template?.metadata?.labels);
    const selector = o.kind === 'Service' ? spec.selector : spec.selector?.matchLabels;
    labelValues(`${where} selector`, selector as Record<string, string> | undefined);
    if (o.kind === 'Service') {
      if (!DNS_1035.test(name)) problems.push(`${where}: not a DNS-1035 label`);
    }
    if (o.kind === 'StatefulSet') {
      // controller-revision-hash=<name>-<10 chars> on every pod.
      if (name.length > 52) problems.push(`${where}: StatefulSet name of ${name.length} > 52`);
      const lastPod = `${name}-${(spec.replicas ?? 1) - 1}`;
      if (lastPod.length > 63) problems.push(`${where}: pod name ${lastPod}`);
      if (!objects.some((s) => s.kind === 'Service' && s.metadata.name === spec.serviceName))
        problems.push(`${where}: serviceName ${spec.serviceName} is not rendered`);
      for (const t of spec.volumeClaimTemplates ?? [])
        labelValues(`${where} claim`, t.metadata?.labels);
    }
    if (o.kind === 'CronJob') {
      // Its Jobs are <name>-<8-digit minute stamp>, and that name is a label value.
      if (name.length > 52) problems.push(`${where}: CronJob name of ${name.length} > 52`);
      labelValues(
        `${where} job template`,
        (o.spec as { jobTemplate?: { spec?: Spec } }).jobTemplate?.spec?.template?.metadata?.labels,
      );
    }
    if (o.kind === 'Job') {
      // The Job's pods carry job-name=<name> and batch.kubernetes.io/job-name=<name>.
      if (name.length > 63) problems.push(`${where}: Job name (job-name label) of ${name.length}`);
    }
  }
  return problems;
}

beforeAll(async () => {
  await ensureHelm();
}, 300_000);

describe.each(HELM_MAJORS)('Helm %i', (major) => {
  it.each(VALUE_SETS)(
    `a ${LONG_RELEASE.length}-character release name renders names and labels the API server accepts: $name`,
    async ({ opts }) => {
      const objects = await renderChart(major, { ...opts, releaseName: LONG_RELEASE });
      expect(objects.length).toBeGreaterThan(10);
      expect(nameProblems(objects)).toEqual([]);
    },
  );
});

describe('long and unusual release names (Helm 4)', () => {
  it('two long release names sharing their first 50 characters get disjoint objects in one namespace', async () => {
    const a = await renderChart(4, { releaseName: `${LONG_RELEASE.slice(0, 50)}-a1` });
    const b = await renderChart(4, { releaseName: `${LONG_RELEASE.slice(0, 50)}-b2` });
    const names = (objects: K8sObject[]): Set<string> =>
      new Set(objects.map((o) => `${o.kind}/${o.metadata.name}`));
    const shared = [...names(a)].filter((n) => names(b).has(n));
    expect(shared).toEqual([]);
  });

  it('a release name with dots or a leading digit still gives DNS-1035 Service names', async () => {
    for (const releaseName of ['tracker.eu.prod', '2026-tracker']) {
      const objects = await renderChart(4, { releaseName });
      expect(nameProblems(objects)).toEqual([]);
    }
  });

  it('short release names keep their familiar names', async () => {
    const objects = await renderChart(4);
    const names = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'Deployment/shoal-gateway',
        'StatefulSet/shoal-redis',
        'StatefulSet/shoal-cockroachdb',
        'Service/shoal-cockroachdb-headless',
      ]),
    );
  });
});
