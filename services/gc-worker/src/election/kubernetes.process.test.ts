// The gc-worker process with LEADER_ELECTION=kubernetes, configured the way
// client-node finds a cluster (a kubeconfig via KUBECONFIG; in a pod, the
// service account), against the fake Lease API: it takes the Lease, collects,
// and clears the holder on SIGTERM.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startService, type ServiceProcess } from '@shoal/testing/launcher';
import { startFakeKubeApi, type FakeKubeApi } from '@shoal/testing/fake-kube-api';

const TOKEN = 'kube-process-test-token-0123456789';
let kube: FakeKubeApi;
let gcApi: Server;
let gcCalls = 0;
let dir: string;
let worker: ServiceProcess | undefined;

beforeAll(async () => {
  kube = await startFakeKubeApi();
  // storage-api stand-in: only POST /v1/gc is called in kubernetes mode.
  gcApi = createServer((req, res) => {
    if (req.url === '/v1/gc' && req.headers.authorization === `Bearer ${TOKEN}`) gcCalls++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"peersRemoved":2,"swarmsRemoved":1,"durationMs":1}');
  });
  await new Promise<void>((r) => gcApi.listen(0, '127.0.0.1', r));
  dir = mkdtempSync(join(tmpdir(), 'shoal-gc-kube-'));
  writeFileSync(
    join(dir, 'kubeconfig'),
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // client-node refuses plain HTTP unless TLS verification is off.
      clusters: [{ name: 'fake', cluster: { server: kube.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'gc', user: { token: 'gc-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'gc' } }],
      'current-context': 'fake',
    }),
  );
});

afterAll(async () => {
  await worker?.kill();
  gcApi.closeAllConnections();
  await new Promise((r) => gcApi.close(r));
  await kube.close();
  rmSync(dir, { recursive: true, force: true });
});

it('takes the Lease, collects, and releases it on SIGTERM', async () => {
  worker = await startService({
    name: 'gc-worker-kube',
    service: 'gc-worker',
    logDir: dir,
    env: {
      ADMIN_HOST: '127.0.0.1',
      ADMIN_PORT: '0',
      STORAGE_API_URL: `http://127.0.0.1:${(gcApi.address() as AddressInfo).port}`,
      STORAGE_API_TOKEN: TOKEN,
      LEADER_ELECTION: 'auto',
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
      KUBECONFIG: join(dir, 'kubeconfig'),
      POD_NAME: 'shoal-gc-worker-abc',
      POD_NAMESPACE: 'tracker',
      LEASE_DURATION_SECONDS: '2',
      RENEW_DEADLINE_SECONDS: '1.2',
      RETRY_PERIOD_SECONDS: '0.2',
    },
  });
  expect(worker.listening.election).toBe('kubernetes');
  const deadline = Date.now() + 5000;
  while (gcCalls === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(gcCalls, worker.tail(5)).toBe(1);
  const held = kube.lease('tracker', 'shoal-gc-worker')!.spec;
  expect(held.holderIdentity).toMatch(/^shoal-gc-worker-abc_[0-9a-f]{8}$/);
  expect(held.renewTime).toMatch(/\.\d{6}Z$/);
  expect(held.leaseDurationSeconds).toBe(2);

  expect(await worker.stop(5000)).toBe(0);
  worker = undefined;
  const released = kube.lease('tracker', 'shoal-gc-worker')!.spec;
  expect(released.holderIdentity).toBeUndefined();
  expect(kube.rejectedTimes).toEqual([]);
}, 30_000);
