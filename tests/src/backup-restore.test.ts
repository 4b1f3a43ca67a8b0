// The restore path, for real on local processes (docs/kubernetes.md "Back up
// and restore"): the local topology (two gateways requiring passkeys with a
// torrent deny list, storage-api on PostgreSQL, Redis Sentinel for peers)
// writes durable data (download counts, an approval list entry, a passkey)
// through storage-api; deploy/backup/postgres.sh backs the Shoal tables up
// (pg_dump, the PostgreSQL analogue of the chart's CockroachDB BACKUP); the
// database is dropped and storage-api comes back empty, which the gateways
// show; the backup is restored and the same data is served again: the scrape
// shows the downloads, the deny list is enforced, the passkey works.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresBinDir } from '@shoal/testing/postgres';
import { REPO_ROOT, startLocalTopology, type LocalTopology } from '@shoal/testing/topology';
import {
  adminOk,
  createPasskey,
  httpAnnounceOutcome,
  verdict,
  waitReady,
} from './harness/policy.ts';
import { containerEnv, ensureHelm, find, renderChart } from './harness/helm.ts';
import { waitFor } from '@shoal/testing/processes';
import {
  httpScrape,
  randomInfoHash,
  randomPeerId,
  type AnnounceParams,
} from '@shoal/testing/tracker-client';

const run = promisify(execFile);
const SCRIPT = join(REPO_ROOT, 'deploy/backup/postgres.sh');
const RESTORE = join(REPO_ROOT, 'deploy/backup/redis-restore.sh');
// Gateways re-read lists and passkeys every second; changes are waited for with margin.
const REFRESH_SECONDS = 1;
const CONVERGE_MS = 20_000;
/**
 * A whole backup-wipe-restore drill: dump and restore tools, process
 * restarts and convergence, each bounded on its own; the 30 s default ran out
 * in a fresh-clone run at load average 27.
 */
const WHOLE_DRILL_MS = 180_000;

let topo: LocalTopology | undefined;
let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'shoal-backup-'));
});
afterAll(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

/** A local topology for one describe block; durable data in `dataStore`. */
function useTopology(dataStore: 'postgres' | 'redis'): void {
  beforeAll(async () => {
    topo = await startLocalTopology({
      gatewayEnv: {
        PASSKEY_REQUIRED: 'true',
        TORRENT_APPROVAL: 'deny',
        POLICY_REFRESH_SECONDS: String(REFRESH_SECONDS),
      },
      storageApiEnv: { DATA_STORE_DRIVER: dataStore },
    });
    await Promise.all(topo.gateways.map((g) => waitReady(`${g.admin}/readyz`, 20_000)));
  }, 120_000);
  afterAll(async () => {
    await topo?.stop();
    topo = undefined;
  }, 60_000);
}

function t(): LocalTopology {
  if (topo === undefined) throw new Error('no topology');
  return topo;
}

const admin = (
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<unknown> => adminOk(t().storageApi.url, t().storageApi.adminToken, method, path, body);

/** What each gateway answers an HTTP announce at /announce/<passkey>. */
async function answers(params: AnnounceParams, passkey: string): Promise<string[]> {
  const out: string[] = [];
  for (const g of t().gateways)
    out.push(verdict(await httpAnnounceOutcome(`${g.httpAnnounce}/${passkey}`, params)));
  return out;
}

async function until(what: string, params: AnnounceParams, passkey: string, want: string) {
  let last: string[] = [];
  await waitFor(
    `${what} (last: ${last.join(', ')})`,
    async () => (last = await answers(params, passkey)).every((v) => v === want),
    CONVERGE_MS,
  );
}

async function downloaded(passkey: string, infoHash: Buffer): Promise<number[]> {
  const out: number[] = [];
  for (const g of t().gateways) {
    const [entry] = await httpScrape(`${g.scrape}/${passkey}`, [infoHash]);
    out.push(entry?.downloaded ?? -1);
  }
  return out;
}

async function script(action: 'backup' | 'restore', file: string): Promise<void> {
  const bin = postgresBinDir();
  await run(SCRIPT, [action, t().postgres.url, file], {
    env: { ...process.env, ...(bin === undefined ? {} : { PG_BIN: bin }) },
    timeout: 60_000,
  });
}

/** Drops the Shoal database and creates it empty (every durable byte gone). */
async function wipeDatabase(): Promise<void> {
  const url = new URL(t().postgres.url);
  const database = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE "${database}" WITH (FORCE)`);
    await client.query(`CREATE DATABASE "${database}"`);
  } finally {
    await client.end();
  }
}

async function restartStorageApi(): Promise<void> {
  await t().storageApiProcess.restart();
  await waitReady(`${t().storageApi.admin}/readyz`, 30_000);
}

interface Durable {
  passkey: string;
  popular: Buffer;
  banned: Buffer;
}

const seeder = (infoHash: Buffer): AnnounceParams => ({
  infoHash,
  peerId: randomPeerId(),
  port: 44_001,
  left: 0n,
});

/** A passkey, a deny-list entry and three completed downloads, through storage-api and the gateways. */
async function writeDurableData(): Promise<Durable> {
  const popular = randomInfoHash();
  const banned = randomInfoHash();
  const { passkey } = await createPasskey(t().storageApi.url, t().storageApi.adminToken, {
    user: 'alice',
  });
  await admin('PUT', `/v1/admin/approval/torrents/deny/${banned.toString('hex')}`, {
    note: 'backup drill',
  });
  await until('the passkey to work', seeder(popular), passkey, 'served');
  await until('the deny list to apply', seeder(banned), passkey, 'POLICY_ERR_TORRENT_DENIED');
  const [a, b] = t().gateways;
  for (let i = 0; i < 3; i++) {
    const peer = { ...seeder(popular), port: 44_010 + i, left: 100n };
    expect(verdict(await httpAnnounceOutcome(`${a!.httpAnnounce}/${passkey}`, peer))).toBe(
      'served',
    );
    const done = { ...peer, left: 0n, event: 'completed' as const };
    expect(verdict(await httpAnnounceOutcome(`${b!.httpAnnounce}/${passkey}`, done))).toBe(
      'served',
    );
  }
  await waitFor(
    'the downloads on every gateway',
    async () => (await downloaded(passkey, popular)).every((n) => n === 3),
    CONVERGE_MS,
  );
  return { passkey, popular, banned };
}

/**
 * The store is empty: storage-api has no passkey and no list entry, the
 * gateways refuse the passkey and deny nothing. Returns a passkey made on
 * the empty store, which the restore must replace too.
 */
async function expectWiped(d: Durable): Promise<string> {
  expect(await admin('GET', '/v1/admin/passkeys')).toEqual({ passkeys: [] });
  expect(await admin('GET', '/v1/admin/approval/torrents/deny')).toEqual({ entries: [] });
  await until('the passkey to be gone', seeder(d.popular), d.passkey, 'POLICY_ERR_PASSKEY_UNKNOWN');
  const { passkey: interim } = await createPasskey(t().storageApi.url, t().storageApi.adminToken, {
    user: 'interim',
  });
  await until('the interim passkey to work', seeder(d.banned), interim, 'served');
  expect(await downloaded(interim, d.popular)).toEqual([0, 0]);
  return interim;
}

async function expectServedAgain(d: Durable, interim: string): Promise<void> {
  await until('the passkey to work again', seeder(d.popular), d.passkey, 'served');
  await until(
    'the deny list to apply again',
    seeder(d.banned),
    d.passkey,
    'POLICY_ERR_TORRENT_DENIED',
  );
  await until(
    'the interim passkey to be gone',
    seeder(d.popular),
    interim,
    'POLICY_ERR_PASSKEY_UNKNOWN',
  );
  expect(await downloaded(d.passkey, d.popular)).toEqual([3, 3]);
  expect(await admin('GET', '/v1/admin/approval/torrents/deny')).toMatchObject({
    entries: [{ value: d.banned.toString('hex'), note: 'backup drill' }],
  });
  expect(await admin('GET', '/v1/admin/passkeys')).toMatchObject({
    passkeys: [{ passkey: d.passkey, user: 'alice' }],
  });
}

/** The doctor's backup line, as `shoalctl doctor` shows it. */
async function backupCheck(): Promise<{ status: string; message: string } | undefined> {
  const { checks } = (await admin('GET', '/v1/admin/doctor')) as {
    checks: Array<{ name: string; status: string; message: string }>;
  };
  return checks.find((c) => c.name.endsWith(' backup'));
}

describe('backup and restore of the durable data (PostgreSQL)', () => {
  useTopology('postgres');

  it(
    'download counts, the deny list and passkeys survive a wipe through the backup script',
    async () => {
      const d = await writeDurableData();
      const file = join(work, 'shoal.dump');
      await script('backup', file);
      const backedUp = await stat(file);
      expect(backedUp.size).toBeGreaterThan(0);
      // shoalctl doctor (storage-api's /v1/admin/doctor) reports the backup's age.
      const recorded = await backupCheck();
      expect(recorded?.status).toBe('ok');
      expect(recorded?.message).toMatch(/ completed \d+ s ago, at /);

      // Wiped: storage-api comes back on an empty database (its migrations make empty tables).
      await t().storageApiProcess.stop();
      await wipeDatabase();
      await restartStorageApi();
      const interim = await expectWiped(d);
      expect((await backupCheck())?.message).toMatch(/records no backup/);

      await t().storageApiProcess.stop();
      await script('restore', file);
      await restartStorageApi();
      await expectServedAgain(d, interim);
      // The restored data is as old as the backup file.
      const at = new Date(Math.floor(backedUp.mtimeMs / 1000) * 1000).toISOString();
      expect((await backupCheck())?.message).toContain(`, at ${at}`);
    },
    WHOLE_DRILL_MS,
  );

  it('refuses to restore a missing file, and a failed backup leaves no file behind', async () => {
    const missing = join(work, 'nothing.dump');
    await expect(script('restore', missing)).rejects.toThrow(/missing or empty/);
    const bad = join(work, 'bad.dump');
    await expect(
      run(SCRIPT, ['backup', 'postgres://postgres@127.0.0.1:1/none', bad], { timeout: 30_000 }),
    ).rejects.toThrow();
    await expect(stat(bad)).rejects.toThrow(/ENOENT/);
  });
});

/** The Redis backup CronJob's script and environment, as the chart renders them. */
async function chartRedisBackup(): Promise<{ script: string; env: Record<string, string> }> {
  await ensureHelm();
  const objects = await renderChart(4, { values: ['redis-backup-values.yaml'] });
  const cron = find(objects, 'CronJob', 'shoal-rdb-backup');
  const pod = (cron.spec as { jobTemplate: { spec: { template: { spec: unknown } } } }).jobTemplate
    .spec.template.spec;
  const asPod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'backup' }, spec: pod };
  const env = containerEnv(objects, asPod, 'backup');
  const container = (pod as { containers: Array<{ command: string[] }> }).containers[0]!;
  expect(container.command.slice(0, 2)).toEqual(['/bin/sh', '-ec']);
  return { script: container.command[2]!, env };
}

describe('backup and restore of the durable data (Redis, storageApi.dataStore redis)', () => {
  useTopology('redis');

  it(
    "the chart's CronJob script copies the primary's data; restored on every node it is served again",
    async () => {
      const cron = await chartRedisBackup();
      expect(cron.env.MASTER_NAME).toBe(t().redis.masterName);
      const dir = join(work, 'redis-backups');
      await mkdir(dir);
      // Older copies: the newest KEEP are kept.
      const old = ['20250101T000000Z', '20250102T000000Z', '20250103T000000Z'].map((s) =>
        join(dir, `shoal-redis-${s}.rdb`),
      );
      for (const f of old) await writeFile(f, 'REDIS0011 older copy');
      const d = await writeDurableData();

      // The script as rendered; only the addresses and secrets are the local ones.
      await run('/bin/sh', ['-ec', cron.script], {
        env: {
          ...process.env,
          ...cron.env,
          SENTINELS: t().redis.sentinels.join(' '),
          REDIS_PASSWORD: t().secrets.redisPassword,
          REDIS_SENTINEL_PASSWORD: t().secrets.sentinelPassword,
          BACKUP_DIR: dir,
          KEEP: '2',
        },
        timeout: 60_000,
      });
      const files = (await readdir(dir)).sort();
      expect(files).toHaveLength(2);
      expect(files[0]).toBe('shoal-redis-20250103T000000Z.rdb');
      const backup = join(dir, files[1]!);
      expect(files[1]).toMatch(/^shoal-redis-\d{8}T\d{6}Z\.rdb$/);

      // Wiped from every node: FLUSHALL on the primary reaches the replicas.
      const primary = await t().redisPrimary();
      expect(primary).toBeDefined();
      await run('redis-cli', [
        '-p',
        String(primary!.port),
        '--no-auth-warning',
        '-a',
        t().secrets.redisPassword,
        'FLUSHALL',
      ]);
      const interim = await expectWiped(d);

      // Restored: every node stopped, its data directory prepared from the
      // backup (deploy/backup/redis-restore.sh), the primary started first.
      await t().storageApiProcess.stop();
      await Promise.all(t().redisProcesses.map((p) => p.stop()));
      for (let i = 0; i < t().redisProcesses.length; i++)
        await run(RESTORE, [backup, join(t().stateDir, `redis-${i}`)]);
      await primary!.restart();
      for (const p of t().redisProcesses) if (p !== primary) await p.restart();
      await restartStorageApi();
      await expectServedAgain(d, interim);
    },
    WHOLE_DRILL_MS,
  );

  it('redis-restore.sh refuses a file that is not an RDB snapshot', async () => {
    const bogus = join(work, 'bogus.rdb');
    await writeFile(bogus, 'not a snapshot');
    await expect(run(RESTORE, [bogus, work])).rejects.toThrow(/not an RDB file/);
  });
});
