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
import { mkdtemp, rm, stat } from 'node:fs/promises';
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
import { waitFor } from './harness/processes.ts';
import {
  httpScrape,
  randomInfoHash,
  randomPeerId,
  type AnnounceParams,
} from './harness/tracker-client.ts';

const run = promisify(execFile);
const SCRIPT = join(REPO_ROOT, 'deploy/backup/postgres.sh');
// Gateways re-read lists and passkeys every second; changes are waited for with margin.
const REFRESH_SECONDS = 1;
const CONVERGE_MS = 20_000;

let topo: LocalTopology;
let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'shoal-backup-'));
  topo = await startLocalTopology({
    gatewayEnv: {
      PASSKEY_REQUIRED: 'true',
      TORRENT_APPROVAL: 'deny',
      POLICY_REFRESH_SECONDS: String(REFRESH_SECONDS),
    },
  });
  await Promise.all(topo.gateways.map((g) => waitReady(`${g.admin}/readyz`, 20_000)));
}, 120_000);

afterAll(async () => {
  await topo?.stop();
  if (work !== '') await rm(work, { recursive: true, force: true });
}, 60_000);

const admin = (
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<unknown> => adminOk(topo.storageApi.url, topo.storageApi.adminToken, method, path, body);

/** What each gateway answers an HTTP announce at /announce/<passkey>. */
async function answers(params: AnnounceParams, passkey: string): Promise<string[]> {
  const out: string[] = [];
  for (const g of topo.gateways)
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
  for (const g of topo.gateways) {
    const [entry] = await httpScrape(`${g.scrape}/${passkey}`, [infoHash]);
    out.push(entry?.downloaded ?? -1);
  }
  return out;
}

async function script(action: 'backup' | 'restore', file: string): Promise<void> {
  const bin = postgresBinDir();
  await run(SCRIPT, [action, topo.postgres.url, file], {
    env: { ...process.env, ...(bin === undefined ? {} : { PG_BIN: bin }) },
    timeout: 60_000,
  });
}

/** Drops the Shoal database and creates it empty (every durable byte gone). */
async function wipeDatabase(): Promise<void> {
  const url = new URL(topo.postgres.url);
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
  await topo.storageApiProcess.restart();
  await waitReady(`${topo.storageApi.admin}/readyz`, 30_000);
}

describe('backup and restore of the durable data (PostgreSQL)', () => {
  it('download counts, the deny list and passkeys survive a wipe through the backup script', async () => {
    const popular = randomInfoHash();
    const banned = randomInfoHash();
    const { passkey } = await createPasskey(topo.storageApi.url, topo.storageApi.adminToken, {
      user: 'alice',
    });
    await admin('PUT', `/v1/admin/approval/torrents/deny/${banned.toString('hex')}`, {
      note: 'backup drill',
    });
    const seeder = (infoHash: Buffer): AnnounceParams => ({
      infoHash,
      peerId: randomPeerId(),
      port: 44_001,
      left: 0n,
    });
    await until('the passkey to work', seeder(popular), passkey, 'served');
    await until('the deny list to apply', seeder(banned), passkey, 'POLICY_ERR_TORRENT_DENIED');
    // Three completed downloads of the popular torrent.
    for (let i = 0; i < 3; i++) {
      const peer = { ...seeder(popular), port: 44_010 + i, left: 100n };
      expect(
        verdict(await httpAnnounceOutcome(`${topo.gateways[0]!.httpAnnounce}/${passkey}`, peer)),
      ).toBe('served');
      expect(
        verdict(
          await httpAnnounceOutcome(`${topo.gateways[1]!.httpAnnounce}/${passkey}`, {
            ...peer,
            left: 0n,
            event: 'completed',
          }),
        ),
      ).toBe('served');
    }
    await waitFor(
      'the downloads on every gateway',
      async () => (await downloaded(passkey, popular)).every((n) => n === 3),
      CONVERGE_MS,
    );

    const file = join(work, 'shoal.dump');
    await script('backup', file);
    expect((await stat(file)).size).toBeGreaterThan(0);

    // Wiped: storage-api comes back on an empty database (its migrations
    // make empty tables); the gateways then refuse the passkey and stop
    // enforcing the deny list.
    await topo.storageApiProcess.stop();
    await wipeDatabase();
    await restartStorageApi();
    expect(await admin('GET', '/v1/admin/passkeys')).toEqual({ passkeys: [] });
    expect(await admin('GET', '/v1/admin/approval/torrents/deny')).toEqual({ entries: [] });
    await until('the passkey to be gone', seeder(popular), passkey, 'POLICY_ERR_PASSKEY_UNKNOWN');
    // A passkey made on the wiped database: the restore replaces it too.
    const { passkey: interim } = await createPasskey(
      topo.storageApi.url,
      topo.storageApi.adminToken,
      { user: 'interim' },
    );
    await until('the interim passkey to work', seeder(banned), interim, 'served');
    expect(await downloaded(interim, popular)).toEqual([0, 0]);

    // Restored: the same data is served again.
    await topo.storageApiProcess.stop();
    await script('restore', file);
    await restartStorageApi();
    await until('the passkey to work again', seeder(popular), passkey, 'served');
    await until(
      'the deny list to apply again',
      seeder(banned),
      passkey,
      'POLICY_ERR_TORRENT_DENIED',
    );
    await until(
      'the interim passkey to be gone',
      seeder(popular),
      interim,
      'POLICY_ERR_PASSKEY_UNKNOWN',
    );
    expect(await downloaded(passkey, popular)).toEqual([3, 3]);
    expect(await admin('GET', '/v1/admin/approval/torrents/deny')).toMatchObject({
      entries: [{ value: banned.toString('hex'), note: 'backup drill' }],
    });
    expect(await admin('GET', '/v1/admin/passkeys')).toMatchObject({
      passkeys: [{ passkey, user: 'alice' }],
    });
  });

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
