// The environment the chart gives each service (literal values, its Secrets,
// the named existing Secrets) is what that service's own config validator
// accepts at boot: a typo in a variable name or a bad value fails here, not
// in a CrashLoopBackOff.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayConfigSchema, loadGatewayConfig } from '@shoal/announce-gateway';
import { loadConfig } from '@shoal/config';
import { configSchema as gcWorkerSchema, loadGcWorkerConfig } from '@shoal/gc-worker';
import { PostgresStoreConfigSchema, checkPostgresStoreConfig } from '@shoal/storage/postgres';
import { configSchema as storageApiSchema, loadStorageApiConfig } from '@shoal/storage-api';
import {
  HELM_MAJORS,
  containerEnv,
  ensureHelm,
  find,
  helmTemplate,
  renderChart,
  type K8sObject,
  type RenderOptions,
} from './harness/helm.ts';

/** What the named existing Secrets of the ci values files hold on a real cluster. */
const EXTERNAL_SECRETS = {
  'my-redis/redis-password': 'external-redis-password',
  'my-redis/redis-sentinel-password': 'external-sentinel-password',
  'my-postgres/database-url': 'postgres://shoal:pw@pg.db.svc:5432/shoal?sslmode=verify-full',
  'my-shoal-token/storage-api-token': 'an-existing-token-of-32-characters',
  'my-shoal-token/storage-api-admin-token': 'an-existing-admin-token-of-32-chars',
  'my-udp-secret/secret': 'ab'.repeat(32),
};
/** The downward API values and what the kubelet injects into every pod. */
const FIELD_REFS = {
  'metadata.name': 'shoal-gc-worker-5d9c7-abcde',
  'metadata.namespace': 'tracker',
};
const KUBELET_ENV = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

const SETS = [
  { name: 'defaults', values: [] },
  { name: 'external stores', values: ['external-stores-values.yaml'] },
  { name: 'external ring', values: ['external-ring-values.yaml'] },
  { name: 'external Redis Cluster', values: ['external-cluster-values.yaml'] },
  { name: 'HPA on', values: ['hpa-values.yaml'] },
  { name: 'CockroachDB TLS', values: ['tls-values.yaml'] },
  { name: 'dev profile', values: ['dev-values.yaml'] },
  { name: 'policy on', values: ['policy-values.yaml'] },
  { name: 'gateway HTTPS only', values: ['gateway-tls-values.yaml'] },
];

beforeAll(async () => {
  await ensureHelm();
}, 300_000);

/**
 * The loaders ignore variables they do not know (a pod's environment holds
 * plenty), so a misspelt name would pass silently: every name the chart sets
 * must be a setting of that service.
 */
function unknownNames(
  env: Record<string, string>,
  schema: { properties: Record<string, unknown> },
): string[] {
  return Object.keys(env).filter((k) => !(k in schema.properties) && !(k in KUBELET_ENV));
}

describe.each(SETS)('rendered env, $name', ({ values }) => {
  let objects: K8sObject[];
  const env = (kind: string, name: string, container: string): Record<string, string> => ({
    ...KUBELET_ENV,
    ...containerEnv(objects, find(objects, kind, name), container, {
      externalSecrets: EXTERNAL_SECRETS,
      fieldRefs: FIELD_REFS,
    }),
  });
  beforeAll(async () => {
    objects = await renderChart(4, { values });
  });

  it('is accepted by the gateway: remote storage-api, shared UDP secret', () => {
    const gwEnv = env('Deployment', 'shoal-gateway', 'gateway');
    expect(unknownNames(gwEnv, gatewayConfigSchema)).toEqual([]);
    const config = loadGatewayConfig({ env: gwEnv, argv: [] });
    expect(config.STORAGE_DRIVER).toBe('remote');
    expect(config.STORAGE_API_URL).toBe('http://shoal-storage-api:8080');
    expect(config.UDP_CONNECTION_ID_SECRET).toMatch(/^[0-9a-f]{64}$/);
    expect(config.PORT).toBe(6969);
  });

  it('is accepted by storage-api, with the stores the values chose', () => {
    const apiEnv = env('Deployment', 'shoal-storage-api', 'storage-api');
    expect(unknownNames(apiEnv, storageApiSchema)).toEqual([]);
    const config = loadStorageApiConfig({ env: apiEnv, argv: [] });
    expect(config.PORT).toBe(8080);
    expect(config.PEER_STORE_DRIVER).toBe('redis');
    expect(config.DATA_STORE_DRIVER).toBe(
      values.includes('external-cluster-values.yaml') ? 'redis' : 'postgres',
    );
    // The policy admin API is on, with its own token (docs/policy.md).
    expect(config.STORAGE_API_ADMIN_TOKEN).toMatch(/^.{16,}$/);
    expect(config.STORAGE_API_ADMIN_TOKEN).not.toBe(config.STORAGE_API_TOKEN);
  });

  it('is accepted by gc-worker, electing its leader with the Lease the Role allows', () => {
    const gcEnv = env('Deployment', 'shoal-gc-worker', 'gc-worker');
    expect(unknownNames(gcEnv, gcWorkerSchema)).toEqual([]);
    const config = loadGcWorkerConfig({ env: gcEnv, argv: [] });
    const role = objects.find((o) => o.kind === 'Role' && o.metadata.name === 'shoal-gc-worker') as
      (K8sObject & { rules: Array<{ resourceNames?: string[] }> }) | undefined;
    expect(config.LEADER_ELECTION).toBe('kubernetes');
    expect(role?.rules[0]?.resourceNames).toEqual([config.LEASE_NAME]);
    expect(config.STORAGE_API_TOKEN).toBe(
      loadGatewayConfig({ env: env('Deployment', 'shoal-gateway', 'gateway'), argv: [] })
        .STORAGE_API_TOKEN,
    );
  });

  it("is accepted by the migration Job's migrate-cli where there is one", () => {
    const job = objects.find((o) => o.kind === 'Job' && o.metadata.name === 'shoal-migrations');
    if (!job) {
      const storageEnv = env('Deployment', 'shoal-storage-api', 'storage-api');
      // No SQL store at all, or storage-api migrates at start.
      expect(storageEnv.PG_MIGRATE_ON_START).toBe(
        storageEnv.DATABASE_URL === undefined ? undefined : 'true',
      );
      return;
    }
    const jobEnv = env('Job', 'shoal-migrations', 'migrate');
    expect(unknownNames(jobEnv, PostgresStoreConfigSchema)).toEqual([]);
    const config = loadConfig(PostgresStoreConfigSchema, {
      env: jobEnv,
      argv: [],
      check: checkPostgresStoreConfig,
    });
    expect(config.DATABASE_URL).toMatch(/^postgres(ql)?:\/\//);
    expect(env('Deployment', 'shoal-storage-api', 'storage-api').PG_MIGRATE_ON_START).toBe('false');
  });
});

describe('rendered env, store details', () => {
  it("lists every sentinel of the chart's Redis and reaches CockroachDB through its public Service", async () => {
    const objects = await renderChart(4);
    const env = containerEnv(
      objects,
      find(objects, 'Deployment', 'shoal-storage-api'),
      'storage-api',
    );
    const config = loadStorageApiConfig({ env, argv: [] });
    expect(config.REDIS_MODE).toBe('sentinel');
    expect(config.REDIS_SENTINELS).toEqual(
      [0, 1, 2].map((i) => `shoal-redis-${i}.shoal-redis-headless.tracker.svc:26379`),
    );
    expect(config.DATABASE_DIALECT).toBe('cockroach');
    expect(config.DATABASE_URL).toBe(
      'postgresql://shoal@shoal-cockroachdb-public.tracker.svc:26257/shoal?sslmode=verify-full',
    );
    // The chart's CA and the Shoal user's client certificate (helm-cockroach-tls.test.ts).
    expect(config.PG_TLS_CA_FILE).toBe('/etc/shoal/db-tls/ca.crt');
    expect(config.PG_TLS_CERT_FILE).toBe('/etc/shoal/db-tls/tls.crt');
    expect(config.PG_TLS_REJECT_UNAUTHORIZED).toBe(true);
  });
});

/** The variables of policyConfigSchema the chart sets; ADMIN_API_TOKEN is storage-api's job here. */
const POLICY_ENV = [
  'TORRENT_APPROVAL',
  'CLIENT_APPROVAL',
  'PASSKEY_REQUIRED',
  'JWT_REQUIRED',
  'JWT_ISSUER',
  'JWT_AUDIENCE',
  'JWT_JWKS_URL',
  'JWT_JWKS',
  'JWT_ALGORITHMS',
  'JWT_CACHE_SIZE',
  'JWT_CLOCK_TOLERANCE_SECONDS',
  'ANNOUNCE_INTERVAL_JITTER_SECONDS',
  'RATE_LIMIT_ANNOUNCES_PER_SECOND',
  'RATE_LIMIT_ANNOUNCE_BURST',
  'RATE_LIMIT_CONNECTS_PER_SECOND',
  'RATE_LIMIT_CONNECT_BURST',
  'RATE_LIMIT_MAX_ADDRESSES',
  'POLICY_REFRESH_SECONDS',
];

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'shoal-helm-policy-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe.each(HELM_MAJORS)('rendered env, tracker policy, Helm %i', (major) => {
  const gatewayEnv = async (opts: RenderOptions): Promise<Record<string, string>> => {
    const objects = await renderChart(major, opts);
    return containerEnv(objects, find(objects, 'Deployment', 'shoal-gateway'), 'gateway', {
      externalSecrets: EXTERNAL_SECRETS,
    });
  };
  const policyOf = (env: Record<string, string>): Record<string, string> =>
    Object.fromEntries(Object.entries(env).filter(([k]) => POLICY_ENV.includes(k)));

  it("defaults: every step off, the gateway's own defaults, no optional JWT variable", async () => {
    const env = await gatewayEnv({});
    expect(Object.keys(env)).not.toContain('ADMIN_API_TOKEN');
    const config = loadGatewayConfig({ env, argv: [] });
    const schemaDefaults = loadGatewayConfig({
      env: { STORAGE_DRIVER: 'memory' },
      argv: [],
    });
    for (const key of POLICY_ENV) {
      expect([key, config[key as keyof typeof config]]).toEqual([
        key,
        schemaDefaults[key as keyof typeof schemaDefaults],
      ]);
    }
    expect(policyOf(env)).toEqual({
      TORRENT_APPROVAL: 'off',
      CLIENT_APPROVAL: 'off',
      PASSKEY_REQUIRED: 'false',
      JWT_REQUIRED: 'false',
      JWT_ALGORITHMS: 'RS256,ES256,EdDSA',
      JWT_CACHE_SIZE: '10000',
      JWT_CLOCK_TOLERANCE_SECONDS: '0',
      ANNOUNCE_INTERVAL_JITTER_SECONDS: '0',
      RATE_LIMIT_ANNOUNCES_PER_SECOND: '0',
      RATE_LIMIT_ANNOUNCE_BURST: '20',
      RATE_LIMIT_CONNECTS_PER_SECOND: '0',
      RATE_LIMIT_CONNECT_BURST: '20',
      RATE_LIMIT_MAX_ADDRESSES: '100000',
      POLICY_REFRESH_SECONDS: '10',
    });
  });

  it('ci/policy-values.yaml turns every step on and the gateway accepts it', async () => {
    const env = await gatewayEnv({ values: ['policy-values.yaml'] });
    const config = loadGatewayConfig({ env, argv: [] });
    expect({
      torrents: config.TORRENT_APPROVAL,
      clients: config.CLIENT_APPROVAL,
      passkey: config.PASSKEY_REQUIRED,
      jwt: config.JWT_REQUIRED,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      jwksUrl: config.JWT_JWKS_URL,
      algorithms: config.JWT_ALGORITHMS,
      cacheSize: config.JWT_CACHE_SIZE,
      clockTolerance: config.JWT_CLOCK_TOLERANCE_SECONDS,
      jitter: config.ANNOUNCE_INTERVAL_JITTER_SECONDS,
      announces: [config.RATE_LIMIT_ANNOUNCES_PER_SECOND, config.RATE_LIMIT_ANNOUNCE_BURST],
      connects: [config.RATE_LIMIT_CONNECTS_PER_SECOND, config.RATE_LIMIT_CONNECT_BURST],
      maxAddresses: config.RATE_LIMIT_MAX_ADDRESSES,
      refresh: config.POLICY_REFRESH_SECONDS,
    }).toEqual({
      torrents: 'allow',
      clients: 'deny',
      passkey: true,
      jwt: true,
      issuer: 'https://auth.tracker.example',
      audience: 'shoal',
      jwksUrl: undefined,
      algorithms: ['EdDSA', 'ES256'],
      cacheSize: 50_000,
      clockTolerance: 30,
      jitter: 120,
      announces: [0.5, 10],
      connects: [2, 5],
      maxAddresses: 2_000_000,
      refresh: 2.5,
    });
    // The inline JWKS arrives as the JSON text the gateway parses (one Ed25519 key).
    expect((JSON.parse(config.JWT_JWKS ?? '{}') as { keys?: unknown }).keys).toEqual([
      expect.objectContaining({ kty: 'OKP', crv: 'Ed25519', kid: 'tracker-2025' }),
    ]);
  });

  it('a JWKS URL instead of an inline JWKS, and a bare YAML off for an approval step', async () => {
    const env = await gatewayEnv({
      values: ['policy-values.yaml'],
      set: {
        'gateway.policy.jwt.jwks': '',
        'gateway.policy.jwt.jwksUrl': 'https://auth.tracker.example/.well-known/jwks.json',
        'gateway.policy.jwt.audience': '',
        'gateway.policy.torrentApproval': 'false',
      },
    });
    expect(env).not.toHaveProperty('JWT_JWKS');
    expect(env).not.toHaveProperty('JWT_AUDIENCE');
    const config = loadGatewayConfig({ env, argv: [] });
    expect(config.JWT_JWKS_URL).toBe('https://auth.tracker.example/.well-known/jwks.json');
    expect(config.TORRENT_APPROVAL).toBe('off');
  });

  it('refuses a JWT step the gateway could not start with, naming the values to set', async () => {
    // A values file: --set would split the JWKS JSON at its commas.
    let n = 0;
    const render = async (jwt: Record<string, string>) => {
      const file = join(tmp, `jwt-${major}-${n++}.json`);
      await writeFile(
        file,
        JSON.stringify({ gateway: { policy: { jwt: { required: true, ...jwt } } } }),
      );
      return helmTemplate(major, { values: [file] });
    };
    const url = { jwksUrl: 'https://auth.example/jwks.json' };
    const issuer = { issuer: 'https://auth.example' };
    const noIssuer = await render(url);
    expect(noIssuer.ok).toBe(false);
    expect(noIssuer.stderr).toMatch(
      /gateway\.policy\.jwt\.required needs gateway\.policy\.jwt\.issuer/,
    );
    const exactlyOne =
      /exactly one of gateway\.policy\.jwt\.jwksUrl and gateway\.policy\.jwt\.jwks/;
    const noKeys = await render(issuer);
    expect(noKeys.ok).toBe(false);
    expect(noKeys.stderr).toMatch(exactlyOne);
    const both = await render({ ...issuer, ...url, jwks: '{"keys":[]}' });
    expect(both.ok).toBe(false);
    expect(both.stderr).toMatch(exactlyOne);
    for (const jwks of ['{"kty":"OKP","crv":"Ed25519"}', '{"keys":{}}', 'not json']) {
      const notJwks = await render({ ...issuer, jwks });
      expect(notJwks.ok, jwks).toBe(false);
      expect(notJwks.stderr).toMatch(/gateway\.policy\.jwt\.jwks must be a JWKS document/);
    }
    expect((await render({ ...issuer, ...url })).ok).toBe(true);
    expect((await render({ ...issuer, jwks: '{"keys":[]}' })).ok).toBe(true);
  });

  it('values.schema.json holds the policy values to the bounds of the gateway schema', async () => {
    const refused = async (set: Record<string, string>, path: RegExp) => {
      const r = await helmTemplate(major, { set });
      expect(r.ok, `${JSON.stringify(set)} rendered`).toBe(false);
      expect(r.stderr).toMatch(path);
    };
    await refused({ 'gateway.policy.torrentApproval': 'allowlist' }, /torrentApproval/);
    await refused({ 'gateway.policy.rateLimit.announceBurst': '0' }, /announceBurst/);
    await refused({ 'gateway.policy.refreshSeconds': '0.5' }, /refreshSeconds/);
    await refused({ 'gateway.policy.jwt.clockToleranceSeconds': '3601' }, /clockToleranceSeconds/);
    await refused({ 'gateway.policy.jwt.jwksUrl': 'ftp://keys.example' }, /jwksUrl/);
    await refused({ 'gateway.policy.jwt.algorithms': '{}' }, /algorithms/);
    await refused({ 'gateway.policy.rateLimit.burst': '5' }, /burst/);
  });
});

describe.each(HELM_MAJORS)('rendered GATEWAY_WORKERS, Helm %i', (major) => {
  const workers = async (opts: RenderOptions): Promise<string | undefined> => {
    const objects = await renderChart(major, opts);
    return containerEnv(objects, find(objects, 'Deployment', 'shoal-gateway'), 'gateway', {
      externalSecrets: EXTERNAL_SECRETS,
    }).GATEWAY_WORKERS;
  };

  it('follows the pod CPU: gateway.workers, else the whole CPUs of the limit, else of the request rounded up (docs/workers.md)', async () => {
    // Defaults: 2 CPUs requested, no CPU limit.
    expect(await workers({})).toBe('2');
    expect(await workers({ values: ['dev-values.yaml'] })).toBe('1');
    expect(await workers({ set: { 'gateway.resources.limits.cpu': '4' } })).toBe('4');
    expect(await workers({ set: { 'gateway.resources.limits.cpu': '2500m' } })).toBe('2');
    expect(await workers({ set: { 'gateway.resources.limits.cpu': '500m' } })).toBe('1');
    expect(await workers({ set: { 'gateway.resources.requests.cpu': '1500m' } })).toBe('2');
    expect(await workers({ set: { 'gateway.resources.requests.cpu': '0.25' } })).toBe('1');
    expect(
      await workers({ set: { 'gateway.workers': '3', 'gateway.resources.limits.cpu': '8' } }),
    ).toBe('3');
    const refused = await helmTemplate(major, { set: { 'gateway.workers': '-1' } });
    expect(refused.ok).toBe(false);
    expect(refused.stderr).toMatch(/workers/);
  }, 300_000);
});
