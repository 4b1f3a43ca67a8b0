// `helm upgrade` from this chart to the next version changes no field the API
// server refuses to change, and the CockroachDB init Job is a hook that is
// created afresh on every install and upgrade (docs/kubernetes.md "Upgrade").
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHART_DIR,
  HELM_MAJORS,
  ensureHelm,
  find,
  helmTemplate,
  ofKind,
  renderChart,
  type K8sObject,
} from './harness/helm.ts';

let dir: string;
let nextChart: string;

beforeAll(async () => {
  await ensureHelm();
  dir = await mkdtemp(join(tmpdir(), 'shoal-chart-next-'));
  nextChart = join(dir, 'shoal');
  await cp(CHART_DIR, nextChart, { recursive: true });
  const chartYaml = join(nextChart, 'Chart.yaml');
  const text = await readFile(chartYaml, 'utf8');
  const bumped = text
    .replace(/^version: .*$/m, 'version: 99.1.0')
    .replace(/^appVersion: .*$/m, "appVersion: '99.1.0'");
  expect(bumped).not.toBe(text);
  await writeFile(chartYaml, bumped);
}, 300_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Hooked {
  'helm.sh/hook'?: string;
  'helm.sh/hook-delete-policy'?: string;
  'helm.sh/hook-weight'?: string;
}
const hook = (o: K8sObject): Hooked => o.metadata.annotations ?? {};

/** Fields of a live object that `helm upgrade` cannot change (the API server refuses). */
function immutable(o: K8sObject): unknown {
  const spec = o.spec as Record<string, unknown>;
  switch (o.kind) {
    case 'StatefulSet':
      return {
        selector: spec.selector,
        serviceName: spec.serviceName,
        podManagementPolicy: spec.podManagementPolicy,
        volumeClaimTemplates: spec.volumeClaimTemplates,
      };
    case 'Deployment':
      return { selector: spec.selector };
    case 'Job':
      // A Job's selector and pod template are immutable; a hook Job deleted
      // before each run (before-hook-creation) is created afresh instead.
      return hook(o)['helm.sh/hook-delete-policy']?.includes('before-hook-creation')
        ? 'replaced'
        : { template: spec.template };
    case 'PodDisruptionBudget':
    case 'Service':
      return { selector: spec.selector, clusterIP: spec.clusterIP };
    default:
      return undefined;
  }
}

const VALUE_SETS = [
  { name: 'defaults', values: [] },
  { name: 'CockroachDB TLS, migrations Job', values: ['tls-values.yaml'] },
  { name: 'dev profile', values: ['dev-values.yaml'] },
];

describe.each(HELM_MAJORS)('Helm %i', (major) => {
  it.each(VALUE_SETS)(
    'chart N and N+1 agree on every immutable field: $name',
    async ({ values }) => {
      // Given passwords: generated ones differ per render and so would the pods' checksum/auth.
      const set = {
        'redis.auth.password': 'redis-pw-1',
        'redis.auth.sentinelPassword': 'sentinel-pw-1',
      };
      const [now, next] = await Promise.all([
        renderChart(major, { values, set }),
        renderChart(major, { values, set, chartDir: nextChart }),
      ]);
      // The bump reaches the objects (labels), so equality below is not vacuous.
      expect(JSON.stringify(next)).toContain('99.1.0');
      const stateful = now.filter((o) => ['StatefulSet', 'Job'].includes(o.kind));
      expect(stateful.length).toBeGreaterThan(0);
      for (const o of now) {
        const later = find(next, o.kind, o.metadata.name);
        expect(immutable(later), `${o.kind}/${o.metadata.name}`).toEqual(immutable(o));
      }
      // A version bump alone restarts no store pod (each Redis restart is a failover).
      for (const sts of ofKind(now, 'StatefulSet')) {
        const later = find(next, 'StatefulSet', sts.metadata.name);
        expect((later.spec as { template: unknown }).template, sts.metadata.name).toEqual(
          (sts.spec as { template: unknown }).template,
        );
      }
    },
  );
});

describe('CockroachDB init (Helm 4)', () => {
  it('is a post-install/post-upgrade hook, replaced before each run, ahead of the migrations', async () => {
    const objects = await renderChart(4, { values: ['tls-values.yaml'] });
    const init = find(objects, 'Job', 'shoal-cockroachdb-init');
    const migrations = find(objects, 'Job', 'shoal-migrations');
    expect(hook(init)['helm.sh/hook']?.split(',').sort()).toEqual(['post-install', 'post-upgrade']);
    expect(hook(init)['helm.sh/hook-delete-policy']).toBe('before-hook-creation');
    expect(Number(hook(init)['helm.sh/hook-weight'])).toBeLessThan(
      Number(hook(migrations)['helm.sh/hook-weight'] ?? 0),
    );
    for (const job of ofKind(objects, 'Job'))
      expect(hook(job)['helm.sh/hook-delete-policy'], job.metadata.name).toContain(
        'before-hook-creation',
      );
  });

  it('retries inside its container against pod 0, which answers before any Service has endpoints', async () => {
    for (const values of [[], ['dev-values.yaml']]) {
      const objects = await renderChart(4, { values });
      const spec = (
        find(objects, 'Job', 'shoal-cockroachdb-init').spec as {
          template: { spec: { containers: Array<{ command: string[] }> } };
        }
      ).template.spec;
      const script = spec.containers[0]?.command.join('\n') ?? '';
      expect(script).toContain(
        'host=shoal-cockroachdb-0.shoal-cockroachdb-headless.tracker.svc:26257',
      );
      expect(script).not.toContain('-public');
      expect(script).toMatch(/retry \/cockroach\/cockroach sql .*--host="\$host"/);
      expect(script).toMatch(/until out=/);
      if (values.length === 0)
        expect(script).toMatch(/retry \/cockroach\/cockroach init --certs-dir=\S+ --host="\$host"/);
      else expect(script).not.toMatch(/cockroach init/);
    }
  });

  const initScript = (objects: K8sObject[]): string =>
    (
      find(objects, 'Job', 'shoal-cockroachdb-init').spec as {
        template: { spec: { containers: Array<{ command: string[] }> } };
      }
    ).template.spec.containers[0]?.command.join('\n') ?? '';

  it('keeps a backup schedule as the values say: replaced on every run, dropped when off', async () => {
    const on = initScript(
      await renderChart(4, {
        set: {
          'cockroachdb.backup.enabled': 'true',
          'cockroachdb.backup.destination': 's3://tracker-backups/shoal?AUTH=implicit',
          'cockroachdb.backup.recurring': '*/30 * * * *',
        },
      }),
    );
    const drop =
      "DROP SCHEDULES WITH s AS (SHOW SCHEDULES) SELECT id FROM s WHERE label = 'shoal-backup';";
    expect(on).toContain(drop);
    const create =
      /CREATE SCHEDULE 'shoal-backup' FOR BACKUP DATABASE shoal\s+INTO 's3:\/\/tracker-backups\/shoal\?AUTH=implicit' WITH revision_history\s+RECURRING '\*\/30 \* \* \* \*' FULL BACKUP '@daily'/;
    expect(on).toMatch(create);
    // Dropped before it is created, each retried like the other steps.
    expect(on.indexOf(drop)).toBeLessThan(on.search(create));
    const off = initScript(await renderChart(4));
    expect(off).toContain(drop);
    expect(off).not.toMatch(/CREATE SCHEDULE/);
  });

  it('refuses a backup without a destination, or one that would break out of the SQL quotes', async () => {
    const none = await helmTemplate(4, { set: { 'cockroachdb.backup.enabled': 'true' } });
    expect(none.ok).toBe(false);
    expect(none.stderr).toMatch(
      /cockroachdb\.backup\.enabled needs cockroachdb\.backup\.destination/,
    );
    for (const destination of ["s3://b/x'; DROP DATABASE shoal; --", 's3://b/$(id)']) {
      const bad = await helmTemplate(4, {
        set: {
          'cockroachdb.backup.enabled': 'true',
          'cockroachdb.backup.destination': destination,
        },
      });
      expect(bad.ok, destination).toBe(false);
      expect(bad.stderr).toMatch(/cockroachdb\.backup\.destination may not contain/);
    }
  });
});
