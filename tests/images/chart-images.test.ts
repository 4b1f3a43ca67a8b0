// The chart and the images agree: each workload the chart renders that runs
// one of our images is started from that image exactly as rendered (env,
// command, ports, user, read-only root, emptyDirs as tmpfs, mounted
// ConfigMaps and Secrets; harness/chart-pod.ts) and must pass the probes the
// chart gives it. Stores: a Redis and a PostgreSQL from the test images,
// named by the values as an operator's external stores would be. The chart's
// default keeps durable data in CockroachDB, which no image here provides;
// its env is checked against the config loaders in tests/src/helm-env.test.ts.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '@shoal/testing/processes';
import { httpAnnounce, randomInfoHash, randomPeerId } from '@shoal/testing/tracker-client';
import {
  containerEnv,
  ensureHelm,
  find,
  renderChart,
  type K8sObject,
} from '../src/harness/helm.ts';
import {
  podContainer,
  podSpecOf,
  probePort,
  runAs,
  runChartContainer,
  type ChartContainer,
  type PodContainer,
  type PodSpec,
} from './harness/chart-pod.ts';
import { ContainerRun, podman, type Container } from './harness/podman.ts';

const images = inject('images');
const run = new ContainerRun();
const NAMESPACE = 'tracker';
const REDIS_HOST = 'redis.stores.svc';
const POSTGRES_HOST = 'postgres.stores.svc';
const redisPassword = 'a-redis-password-for-the-test';
const pgPassword = 'a-postgres-password-for-the-test';
/** What the kubelet adds to every container's environment. */
const KUBELET_ENV = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '1' };
const FIELD_REFS = {
  'metadata.name': 'shoal-gc-worker-5d9c7-abcde',
  'metadata.namespace': NAMESPACE,
};

let dir = '';
let objects: K8sObject[] = [];
/** Store and service addresses on the bridge network, by the names the env uses. */
const hosts: Record<string, string> = {};
const started = new Map<string, ChartContainer>();

/** A Service's names as cluster DNS answers them inside the namespace. */
function serviceHosts(service: string, ip: string): void {
  for (const name of [
    service,
    `${service}.${NAMESPACE}.svc`,
    `${service}.${NAMESPACE}.svc.cluster.local`,
  ])
    hosts[name] = ip;
}

/** The test image for a rendered image reference (repository shoal-<service>). */
function imageFor(rendered: string): string {
  const repo = rendered.split('@')[0]!.split(':')[0]!.split('/').pop();
  const byRepo: Record<string, string> = {
    'shoal-announce-gateway': images.gateway,
    'shoal-storage-api': images.storageApi,
    'shoal-gc-worker': images.gcWorker,
  };
  const image = repo === undefined ? undefined : byRepo[repo];
  if (image === undefined) throw new Error(`rendered image ${rendered} is none of ours`);
  return image;
}

async function logsOnFailure<T>(c: Container, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new Error(`${String(err)}\n--- ${c.spec.name} logs\n${await c.logs(60)}`, { cause: err });
  }
}

/** Starts the rendered container `name` of `kind`/`workload` from our image. */
async function start(
  kind: string,
  workload: string,
  name: string,
  extra: { serviceAccount?: Record<string, string> } = {},
): Promise<{ pod: PodSpec; c: PodContainer; cc: ChartContainer }> {
  const obj = find(objects, kind, workload);
  const pod = podSpecOf(obj);
  const c = podContainer(pod, name);
  const env = {
    ...KUBELET_ENV,
    ...containerEnv(objects, obj, name, { fieldRefs: FIELD_REFS }),
  };
  const cc = await runChartContainer({
    run,
    name: `${workload}-${name}`,
    objects,
    pod,
    container: c,
    image: imageFor(c.image),
    env,
    hosts,
    dir,
    ...extra,
  });
  started.set(workload, cc);
  return { pod, c, cc };
}

/** Polls the probe the chart sets (readiness, else startup) through its published port. */
async function probeReady(c: PodContainer, cc: ChartContainer): Promise<Response> {
  const probe = c.readinessProbe?.httpGet;
  if (probe === undefined) throw new Error(`${c.name} has no HTTP readiness probe`);
  const port = await cc.hostPort(probePort(c, probe.port));
  let last: Response | undefined;
  await logsOnFailure(cc.container, () =>
    waitFor(
      `${c.name} ${probe.path} on ${String(probe.port)}`,
      async () => {
        if (!(await cc.container.state()).running) throw new Error(`${c.name} exited`);
        try {
          last = await fetch(`http://127.0.0.1:${port}${probe.path}`, {
            signal: AbortSignal.timeout(2_000),
          });
          return last.ok;
        } catch {
          return false;
        }
      },
      60_000,
      250,
    ),
  );
  return last!;
}

/** The image runs as the chart's user, and the chart's preStop command exists in it. */
async function expectImageAgrees(pod: PodSpec, c: PodContainer, cc: ChartContainer) {
  const user = runAs(pod, c);
  const image = (
    await podman(['image', 'inspect', '--format', '{{.Config.User}}', imageFor(c.image)])
  ).trim();
  expect(image, `${c.name}: the image's USER`).toBe(`${user!.uid}:${user!.gid}`);
  const id = (await podman(['exec', cc.container.name, 'id', '-u'])).trim();
  expect(Number(id)).toBe(user!.uid);
  const preStop = c.lifecycle?.preStop?.exec?.command;
  if (preStop !== undefined) {
    // Resolved as the kubelet's exec would: on the image's PATH.
    await podman(['exec', cc.container.name, 'sh', '-c', 'command -v "$1"', 'sh', preStop[0]!]);
  }
  // The root is read-only; /tmp (an emptyDir) is writable.
  await expect(podman(['exec', cc.container.name, 'touch', '/app/x'])).rejects.toThrow(/Read-only/);
  await podman(['exec', cc.container.name, 'touch', '/tmp/x']);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-chart-images-'));
  await ensureHelm();
  const values = join(dir, 'values.yaml');
  // An operator's own stores (external), the migrations as a Job, as in ci/external-stores-values.yaml.
  await writeFile(
    values,
    [
      'redis: { enabled: false }',
      'externalRedis:',
      '  enabled: true',
      '  mode: standalone',
      `  addresses: ['${REDIS_HOST}:6379']`,
      `  password: ${redisPassword}`,
      'cockroachdb: { enabled: false }',
      'externalDatabase:',
      '  enabled: true',
      '  dialect: postgres',
      `  url: postgres://postgres:${pgPassword}@${POSTGRES_HOST}:5432/shoal?sslmode=disable`,
      'storageApi: { migrations: job }',
      '',
    ].join('\n'),
  );
  objects = await renderChart(4, { values: [values], namespace: NAMESPACE });

  const redis = await run.start({
    name: 'redis',
    image: images.redis,
    network: 'bridge',
    args: [
      'redis-server',
      '--port',
      '6379',
      '--requirepass',
      redisPassword,
      '--protected-mode',
      'no',
    ],
  });
  const postgres = await run.start({
    name: 'postgres',
    image: images.postgres,
    network: 'bridge',
    env: { POSTGRES_PASSWORD: pgPassword, PGHOST: '0.0.0.0', PGPORT: '5432' },
    flags: ['--tmpfs', '/var/lib/postgresql/data:rw,mode=0700,U'],
  });
  for (const [host, c] of [
    [REDIS_HOST, redis],
    [POSTGRES_HOST, postgres],
  ] as const) {
    hosts[host] = (
      await podman(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', c.name])
    ).trim();
  }
  await waitFor(
    'postgres to accept connections',
    async () => (await postgres.logs(5)).includes('ready to accept connections'),
    60_000,
    250,
  );
}, 300_000);

afterAll(async () => {
  const left = await run.removeAll();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
  expect(left, `podman ps -a --filter ${run.filter}`).toEqual([]);
}, 120_000);

describe('the chart and the images agree', () => {
  it('migrations Job: its command runs in the storage-api image and exits 0', async () => {
    const { cc } = await start('Job', 'shoal-migrations', 'migrate');
    const code = await logsOnFailure(cc.container, async () =>
      (await podman(['wait', cc.container.name], 120_000)).trim(),
    );
    expect(code, await cc.container.logs()).toBe('0');
  }, 150_000);

  it('storage-api: ready on the chart probe, as the chart runs it', async () => {
    const { pod, c, cc } = await start('Deployment', 'shoal-storage-api', 'storage-api');
    await probeReady(c, cc);
    await expectImageAgrees(pod, c, cc);
    serviceHosts('shoal-storage-api', await cc.address());
  }, 120_000);

  it('gateway: ready on the chart probe, and answers an announce on its published port', async () => {
    const { pod, c, cc } = await start('Deployment', 'shoal-gateway', 'gateway');
    await probeReady(c, cc);
    await expectImageAgrees(pod, c, cc);
    const http = c.ports!.find((p) => p.name === 'http')!;
    const reply = await httpAnnounce(
      `http://127.0.0.1:${await cc.hostPort(http.containerPort)}/announce`,
      { infoHash: randomInfoHash(), peerId: randomPeerId(), port: 41_000, left: 0n },
    );
    expect(reply.seeders).toBe(1);
    serviceHosts('shoal-gateway', await cc.address());
  }, 120_000);

  it('gc-worker: ready on the chart probe, electing through the Kubernetes Lease the chart asks for', async () => {
    const { pod, c, cc } = await start('Deployment', 'shoal-gc-worker', 'gc-worker', {
      // The kubelet's projected service account (no API server answers here).
      serviceAccount: { token: 'test-token', namespace: NAMESPACE, 'ca.crt': '' },
    });
    const ready = await probeReady(c, cc);
    expect(await ready.json()).toMatchObject({ info: { election: 'kubernetes' } });
    await expectImageAgrees(pod, c, cc);
  }, 120_000);

  it('helm test Pod: its self-test passes against the gateway from the gateway image', async () => {
    const { cc } = await start('Pod', 'shoal-selftest', 'selftest');
    const code = (await podman(['wait', cc.container.name], 120_000)).trim();
    expect(code, await cc.container.logs()).toBe('0');
  }, 150_000);
});
