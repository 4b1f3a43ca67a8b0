// The environment the chart gives each service (literal values, its Secrets,
// the named existing Secrets) is what that service's own config validator
// accepts at boot: a typo in a variable name or a bad value fails here, not
// in a CrashLoopBackOff (issue 7).
import { beforeAll, describe, expect, it } from 'vitest';
import { gatewayConfigSchema, loadGatewayConfig } from '@shoal/announce-gateway';
import { loadConfig } from '@shoal/config';
import { configSchema as gcWorkerSchema, loadGcWorkerConfig } from '@shoal/gc-worker';
import { PostgresStoreConfigSchema, checkPostgresStoreConfig } from '@shoal/storage/postgres';
import { configSchema as storageApiSchema, loadStorageApiConfig } from '@shoal/storage-api';
import { containerEnv, ensureHelm, find, renderChart, type K8sObject } from './harness/helm.ts';

/** What the named existing Secrets of the ci values files hold on a real cluster. */
const EXTERNAL_SECRETS = {
  'my-redis/redis-password': 'external-redis-password',
  'my-redis/redis-sentinel-password': 'external-sentinel-password',
  'my-postgres/database-url': 'postgres://shoal:pw@pg.db.svc:5432/shoal?sslmode=verify-full',
  'my-shoal-token/storage-api-token': 'an-existing-token-of-32-characters',
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
      'postgresql://shoal@shoal-cockroachdb-public.tracker.svc:26257/shoal?sslmode=disable',
    );
  });
});
