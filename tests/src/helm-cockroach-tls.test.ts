// CockroachDB is secure by default (docs/cockroachdb.md "Certificates"): with
// no Secrets given and no cert-manager, the chart generates a CA and the
// node, root and Shoal-user certificates, keeps them across upgrades
// (`lookup`, exercised against a fake API server since no cluster runs here)
// and after uninstall; storage-api verifies the server; --insecure only by
// the explicit dev value; the join list does not follow replicas.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  HELM_MAJORS,
  containerEnv,
  ensureHelm,
  find,
  helmTemplate,
  ofKind,
  renderAgainstCluster,
  renderChart,
  validateObject,
  type K8sObject,
} from './harness/helm.ts';

interface Volume {
  name: string;
  secret?: { secretName: string };
  projected?: { sources: Array<{ secret?: { name: string } }> };
}
interface Container {
  name: string;
  command?: string[];
  env?: Array<{ name: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
}
type Secret = K8sObject & { type?: string; data: Record<string, string> };

const podSpec = (o: K8sObject): PodSpec =>
  (o.spec as { template: { spec: PodSpec } }).template.spec;
const script = (o: K8sObject): string => podSpec(o).containers[0]?.command?.join(' ') ?? '';
const pem = (s: Secret, key: string): string =>
  Buffer.from(s.data[key] ?? '', 'base64').toString('utf8');
const secret = (objects: readonly K8sObject[], name: string): Secret =>
  find(objects, 'Secret', name) as Secret;

/** The Secret names a pod's volumes read. */
function mountedSecrets(o: K8sObject): string[] {
  return (podSpec(o).volumes ?? []).flatMap((v) => [
    ...(v.secret ? [v.secret.secretName] : []),
    ...(v.projected?.sources ?? []).flatMap((s) => (s.secret ? [s.secret.name] : [])),
  ]);
}

const CERT_SECRETS = [
  'shoal-cockroachdb-node-tls',
  'shoal-cockroachdb-root-tls',
  'shoal-cockroachdb-user-tls',
];

let defaults: K8sObject[];
beforeAll(async () => {
  await ensureHelm();
  defaults = await renderChart(4, { set: { 'storageApi.migrations': 'job' } });
}, 300_000);

describe('CockroachDB TLS by default', () => {
  it('starts nodes and the init hook with certificates, never --insecure', () => {
    const sts = find(defaults, 'StatefulSet', 'shoal-cockroachdb');
    const init = find(defaults, 'Job', 'shoal-cockroachdb-init');
    for (const o of [sts, init]) {
      expect(script(o), o.metadata.name).not.toMatch(/--insecure/);
      expect(script(o), o.metadata.name).toMatch(/--certs-dir=/);
    }
    expect(mountedSecrets(sts)).toContain('shoal-cockroachdb-node-tls');
    expect(mountedSecrets(init)).toContain('shoal-cockroachdb-root-tls');
    const mounts = podSpec(sts).containers[0]?.volumeMounts ?? [];
    expect(mounts).toContainEqual(
      expect.objectContaining({ name: 'certs', mountPath: '/cockroach/cockroach-certs' }),
    );
  });

  it('generates one CA and node, root and user certificates it signed, kept on uninstall', async () => {
    const ca = secret(defaults, 'shoal-cockroachdb-ca');
    expect(ca.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    const caCert = new X509Certificate(pem(ca, 'ca.crt'));
    expect(caCert.ca).toBe(true);
    const subjects: Record<string, string> = {};
    for (const name of CERT_SECRETS) {
      const s = secret(defaults, name);
      expect(await validateObject(s)).toEqual([]);
      expect(s.type).toBe('kubernetes.io/tls');
      expect(s.metadata.annotations?.['helm.sh/resource-policy'], name).toBe('keep');
      expect(pem(s, 'ca.crt'), name).toBe(pem(ca, 'ca.crt'));
      const cert = new X509Certificate(pem(s, 'tls.crt'));
      expect(cert.verify(caCert.publicKey), `${name} signed by the CA`).toBe(true);
      expect(cert.checkPrivateKey(createPrivateKey(pem(s, 'tls.key'))), name).toBe(true);
      subjects[name] = cert.subject;
    }
    expect(subjects).toEqual({
      'shoal-cockroachdb-node-tls': 'CN=node',
      'shoal-cockroachdb-root-tls': 'CN=root',
      'shoal-cockroachdb-user-tls': 'CN=shoal',
    });
    // Every name a node or a client dials: the public Service (storage-api's
    // verify-full) and each pod by its headless name (--join, the init hook).
    const node = new X509Certificate(pem(secret(defaults, CERT_SECRETS[0]!), 'tls.crt'));
    expect(node.checkHost('shoal-cockroachdb-public.tracker.svc')).toBeTruthy();
    expect(
      node.checkHost('shoal-cockroachdb-4.shoal-cockroachdb-headless.tracker.svc'),
    ).toBeTruthy();
    expect(node.checkHost('shoal-cockroachdb-public.elsewhere.svc')).toBeUndefined();
  });

  it('storage-api and the migrations verify the server and present the Shoal user certificate', () => {
    for (const [kind, name, container] of [
      ['Deployment', 'shoal-storage-api', 'storage-api'],
      ['Job', 'shoal-migrations', 'migrate'],
    ] as const) {
      const o = find(defaults, kind, name);
      const env = containerEnv(defaults, o, container);
      const url = new URL(env.DATABASE_URL ?? '');
      expect(url.searchParams.get('sslmode'), name).toBe('verify-full');
      expect(url.hostname).toBe('shoal-cockroachdb-public.tracker.svc');
      expect(url.username).toBe('shoal');
      expect(url.password, 'certificate, not password').toBe('');
      expect(env).toMatchObject({
        PG_TLS_CA_FILE: '/etc/shoal/db-tls/ca.crt',
        PG_TLS_CERT_FILE: '/etc/shoal/db-tls/tls.crt',
        PG_TLS_KEY_FILE: '/etc/shoal/db-tls/tls.key',
      });
      expect(env.PG_TLS_REJECT_UNAUTHORIZED, name).toBeUndefined();
      const c = podSpec(o).containers.find((x) => x.name === container);
      const mount = c?.volumeMounts?.find((m) => m.mountPath === '/etc/shoal/db-tls');
      const volume = podSpec(o).volumes?.find((v) => v.name === mount?.name);
      expect(volume?.secret?.secretName, name).toBe('shoal-cockroachdb-user-tls');
    }
  });

  it('--insecure only by the explicit dev value, with no certificates generated', async () => {
    const dev = await renderChart(4, { set: { 'cockroachdb.tls.enabled': 'false' } });
    expect(script(find(dev, 'StatefulSet', 'shoal-cockroachdb'))).toMatch(/--insecure/);
    expect(ofKind(dev, 'Secret').map((s) => s.metadata.name)).toEqual(['shoal-secrets']);
    const env = containerEnv(dev, find(dev, 'Deployment', 'shoal-storage-api'), 'storage-api');
    expect(new URL(env.DATABASE_URL ?? '').searchParams.get('sslmode')).toBe('disable');
  });

  it('given Secrets or cert-manager replace the generated ones; a partial set is refused', async () => {
    for (const values of [['tls-values.yaml'], ['tls-cert-manager-values.yaml']]) {
      const objects = await renderChart(4, { values });
      expect(
        ofKind(objects, 'Secret')
          .map((s) => s.metadata.name)
          .filter((n) => n.startsWith('shoal-cockroachdb')),
        values[0],
      ).toEqual([]);
    }
    const partial = await helmTemplate(4, { set: { 'cockroachdb.tls.nodeSecret': 'mine' } });
    expect(partial.ok).toBe(false);
    expect(partial.stderr).toMatch(
      /cockroachdb\.tls: give all of nodeSecret, rootClientSecret and userClientSecret/,
    );
  });

  it('on the GitOps path nothing is generated: the render fails naming the certificate Secrets', async () => {
    const r = await helmTemplate(4, {
      values: ['gitops-values.yaml'],
      set: {
        'cockroachdb.tls.nodeSecret': '',
        'cockroachdb.tls.rootClientSecret': '',
        'cockroachdb.tls.userClientSecret': '',
      },
    });
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(/gitops is true/);
    expect(r.stderr).toMatch(
      /cockroachdb\.tls\.nodeSecret, cockroachdb\.tls\.rootClientSecret and cockroachdb\.tls\.userClientSecret/,
    );
    // Given, the GitOps render has no generated certificate.
    const given = await renderChart(4, { values: ['gitops-values.yaml'] });
    expect(mountedSecrets(find(given, 'StatefulSet', 'shoal-cockroachdb'))).toContain(
      'shoal-crdb-node',
    );
    expect(ofKind(given, 'Secret').map((s) => s.metadata.name)).not.toContain(
      'shoal-cockroachdb-ca',
    );
  });
});

/** A Secret as the API server returns it (data as applied, Helm's ownership metadata). */
function asStored(s: Secret): Secret {
  return {
    ...s,
    metadata: {
      ...s.metadata,
      annotations: {
        ...s.metadata.annotations,
        'meta.helm.sh/release-name': 'shoal',
        'meta.helm.sh/release-namespace': 'tracker',
      },
    },
  };
}

describe.each(HELM_MAJORS)(
  'certificates across upgrades, lookup against a fake API (Helm %i)',
  (major) => {
    it('keeps every certificate the cluster holds; a plain render issues new ones', async () => {
      const first = await renderChart(major);
      const stored = ['shoal-cockroachdb-ca', ...CERT_SECRETS].map((n) =>
        asStored(secret(first, n)),
      );
      const { objects, requests } = await renderAgainstCluster(major, stored);
      for (const s of stored)
        expect(secret(objects, s.metadata.name).data, s.metadata.name).toEqual(s.data);
      expect(requests).toContain('GET /api/v1/namespaces/tracker/secrets/shoal-cockroachdb-ca');
      // Without the cluster (helm template), the same values give a new CA.
      const again = await renderChart(major);
      expect(secret(again, 'shoal-cockroachdb-ca').data).not.toEqual(
        secret(first, 'shoal-cockroachdb-ca').data,
      );
    });

    it('issues a missing or renamed certificate from the kept CA', async () => {
      const first = await renderChart(major);
      const ca = asStored(secret(first, 'shoal-cockroachdb-ca'));
      const root = asStored(secret(first, 'shoal-cockroachdb-root-tls'));
      const user = asStored(secret(first, 'shoal-cockroachdb-user-tls'));
      // The node certificate is gone; the user certificate names a user the values no longer do.
      const { objects } = await renderAgainstCluster(major, [ca, root, user], {
        set: { 'cockroachdb.user': 'tracker' },
      });
      expect(secret(objects, 'shoal-cockroachdb-ca').data).toEqual(ca.data);
      expect(secret(objects, 'shoal-cockroachdb-root-tls').data).toEqual(root.data);
      const caCert = new X509Certificate(pem(ca, 'ca.crt'));
      for (const [name, cn] of [
        ['shoal-cockroachdb-node-tls', 'CN=node'],
        ['shoal-cockroachdb-user-tls', 'CN=tracker'],
      ] as const) {
        const s = secret(objects, name);
        const cert = new X509Certificate(pem(s, 'tls.crt'));
        expect(cert.subject, name).toBe(cn);
        expect(cert.verify(caCert.publicKey), `${name} signed by the kept CA`).toBe(true);
      }
    });
  },
);

describe('join list', () => {
  it('names the first three pods, so scaling replicas leaves the pod template alone', async () => {
    const templates = await Promise.all(
      [3, 5, 9].map(async (n) => {
        const objects = await renderChart(4, { set: { 'cockroachdb.replicas': String(n) } });
        const sts = find(objects, 'StatefulSet', 'shoal-cockroachdb');
        expect((sts.spec as { replicas: number }).replicas).toBe(n);
        return (sts.spec as { template: unknown }).template;
      }),
    );
    expect(templates[1]).toEqual(templates[0]);
    expect(templates[2]).toEqual(templates[0]);
    const join = /--join=(\S+)/.exec(script(find(defaults, 'StatefulSet', 'shoal-cockroachdb')));
    expect(join?.[1]?.split(',')).toEqual(
      [0, 1, 2].map((i) => `shoal-cockroachdb-${i}.shoal-cockroachdb-headless.tracker.svc:26257`),
    );
  });
});
