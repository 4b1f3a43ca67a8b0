// The local topology (deploy/local) starts, serves through both gateways
// from one storage, elects a gc-worker, and stops leaving no process.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  isAlive,
  readTopology,
  startLocalTopology,
  type LocalTopology,
} from './topology.ts';

let topo: LocalTopology | undefined;

beforeAll(async () => {
  topo = await startLocalTopology();
}, 90_000);
afterAll(async () => {
  await topo?.stop();
});

const infoHash = '%aa%bb%cc%dd%ee%ff%00%11%22%33%44%55%66%77%88%99%aa%bb%cc%dd';
const announce = (url: string, peer: string, port: number, left: number): Promise<string> =>
  fetch(
    `${url}?info_hash=${infoHash}&peer_id=-SH0001-${peer}&port=${port}&uploaded=0&downloaded=0&left=${left}&compact=1`,
  ).then((r) => r.text());

describe('startLocalTopology', () => {
  it('reports every service ready and writes the endpoints', async () => {
    const t = topo!;
    expect(t.gateways).toHaveLength(2);
    expect(t.redis.sentinels).toHaveLength(3);
    expect(t.redis.servers).toHaveLength(3);
    for (const admin of [...t.gateways.map((g) => g.admin), t.storageApi.admin, t.gcWorker.admin]) {
      expect((await fetch(`${admin}/readyz`)).status, admin).toBe(200);
    }
    const storage = (await (await fetch(`${t.storageApi.admin}/readyz`)).json()) as {
      checks?: Record<string, { driver: string }>;
    };
    expect(storage.checks?.peers?.driver).toBe('redis');
    expect(storage.checks?.data?.driver).toBe('postgres');
    // The policy admin API is on, behind topology.json's adminToken only.
    const passkeys = `${t.storageApi.url}/v1/admin/passkeys`;
    const admin = await fetch(passkeys, {
      headers: { authorization: `Bearer ${t.storageApi.adminToken}` },
    });
    expect(admin.status).toBe(200);
    expect(await admin.json()).toEqual({ passkeys: [] });
    const gateway = await fetch(passkeys, {
      headers: { authorization: `Bearer ${t.secrets.storageApiToken}` },
    });
    expect(gateway.status).toBe(401);
  });

  it('shares one swarm across both gateways', async () => {
    const [a, b] = topo!.gateways;
    await announce(a!.httpAnnounce, '000000000001', 7001, 0);
    const fromB = await announce(b!.httpAnnounce, '000000000002', 7002, 100);
    // The seeder announced on A is counted and returned on B.
    expect(fromB).toContain('8:completei1e');
    expect(fromB).toContain('10:incompletei1e');
    expect(fromB).toMatch(/5:peers6:/);
  });

  it('runs one gc-worker that leads and collects through storage-api', async () => {
    const metrics = await (await fetch(topo!.gcWorker.metrics)).text();
    expect(metrics).toMatch(/^shoal_gc_leader 1$/m);
    expect(metrics).toMatch(/^shoal_gc_runs_total\{outcome="ok"\} [1-9]/m);
  });

  it('restarts storage-api on the same port, and the gateways answer again', async () => {
    const a = topo!.gateways[0]!;
    await topo!.storageApiProcess.kill();
    const started = Date.now();
    const down = await announce(a.httpAnnounce, '000000000003', 7003, 100);
    expect(down).toContain('failure reason');
    // Not a hang: the gateway's storage client gives up by its 2 s
    // REMOTE_TIMEOUT_MS at the latest; the margin is a loaded machine's.
    expect(Date.now() - started).toBeLessThan(20_000);
    await topo!.storageApiProcess.restart();
    const deadline = Date.now() + 15_000;
    let answer = '';
    while (Date.now() < deadline) {
      answer = await announce(a.httpAnnounce, '000000000003', 7003, 100);
      if (!answer.includes('failure reason')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(answer).toContain('8:intervali');
  }, 30_000);

  it('stops every process', async () => {
    const pids = topo!.processes.map((p) => p.pid);
    await topo!.stop();
    topo = undefined;
    expect(pids.filter(isAlive)).toEqual([]);
  }, 60_000);
});

const run = (script: string, stateDir: string): Promise<{ code: number; out: string }> =>
  new Promise((resolve) => {
    execFile(
      join(REPO_ROOT, 'deploy/local', script),
      ['--state-dir', stateDir],
      { timeout: 120_000 },
      (err, stdout, stderr) => {
        resolve({
          code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1,
          out: stdout + stderr,
        });
      },
    );
  });

describe('deploy/local/up.sh and down.sh', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'shoal-local-cli-'));
  afterAll(async () => {
    await run('down.sh', stateDir);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('starts the topology with one command, refuses a second, and stops it leaving no process', async () => {
    const up = await run('up.sh', stateDir);
    expect(up.code, up.out).toBe(0);
    const t = readTopology(stateDir)!;
    expect(up.out).toContain(t.gateways[0]!.httpAnnounce);
    expect(up.out).toContain(t.gateways[1]!.udpAnnounce);
    expect(up.out).toContain(t.gcWorker.metrics);
    for (const admin of [...t.gateways.map((g) => g.admin), t.storageApi.admin, t.gcWorker.admin]) {
      expect((await fetch(`${admin}/readyz`)).status, admin).toBe(200);
    }
    expect((await run('up.sh', stateDir)).code).toBe(1);
    const down = await run('down.sh', stateDir);
    expect(down.code, down.out).toBe(0);
    expect(t.processes.filter((p) => isAlive(p.pid))).toEqual([]);
    expect(readTopology(stateDir)).toBeUndefined();
  }, 120_000);
});
