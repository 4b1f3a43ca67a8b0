// Private trackers, as processes (docs/policy.md
// "private mode: passkey"): the local topology with PASSKEY_REQUIRED=true on
// both gateways. Passkeys made through storage-api's admin API work at
// /announce/<passkey> over HTTP and in BEP 41 URL data over UDP, stop at
// their expiry even between refreshes, and are refused everywhere within
// POLICY_REFRESH_SECONDS of their removal. Unmodified aria2 clients swarm
// through passkey URLs; a wrong passkey gets nobody.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bdecode, bencode, type BencodeDict } from '@shoal/protocol';
import { freeTcpPort } from '@shoal/testing/ports';
import { startLocalTopology, type LocalTopology } from '@shoal/testing/topology';
import {
  makeTorrent,
  readAria2Log,
  sha256File,
  startAria2,
  tail,
  torrentInfoHash,
  writeRandomFile,
  type Torrent,
} from './harness/aria2.ts';
import { HarnessError } from '@shoal/testing/errors';
import {
  adminCall,
  adminOk,
  createPasskey,
  httpAnnounceOutcome,
  refusalsCounted,
  timeUntil,
  udpAnnounceOutcome,
  verdict,
  waitReady,
  type Probe,
} from './harness/policy.ts';
import { sleep, waitFor, type ManagedProcess } from '@shoal/testing/processes';
import {
  httpScrape,
  randomInfoHash,
  randomPeerId,
  UdpTrackerClient,
  type AnnounceParams,
} from '@shoal/testing/tracker-client';

// 1 s (policy-approval.test.ts runs 2 s): a 3 s passkey must reach both
// replicas with time to spare before it expires, even on a loaded machine.
const REFRESH_SECONDS = 1;
const BOUND_MS = REFRESH_SECONDS * 1000 + 1000;

let topo: LocalTopology;
let workRoot = '';
const udp: Array<{ client: UdpTrackerClient; connectionId: Buffer }> = [];

beforeAll(async () => {
  workRoot = await mkdtemp(join(tmpdir(), 'shoal-policy-private-'));
  topo = await startLocalTopology({
    gatewayEnv: { PASSKEY_REQUIRED: 'true', POLICY_REFRESH_SECONDS: String(REFRESH_SECONDS) },
  });
  await Promise.all(topo.gateways.map((g) => waitReady(`${g.admin}/readyz`, 20_000)));
  for (const g of topo.gateways) {
    const client = await UdpTrackerClient.open(Number(new URL(g.udpAnnounce).port));
    udp.push({ client, connectionId: await client.connect() });
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(udp.map((u) => u.client.close()));
  await topo?.stop();
  if (workRoot !== '') await rm(workRoot, { recursive: true, force: true });
}, 60_000);

/**
 * One probe per gateway and protocol: HTTP at /announce[/<passkey>], UDP with
 * BEP 41 URL data "/announce[/<passkey>]" (none at all when `passkey` is null).
 */
function probes(params: AnnounceParams, passkey: string | null): Probe[] {
  return topo.gateways.flatMap((g, i) => [
    {
      name: `${g.name} http`,
      run: () =>
        httpAnnounceOutcome(
          passkey === null ? g.httpAnnounce : `${g.httpAnnounce}/${passkey}`,
          params,
        ),
    },
    {
      name: `${g.name} udp`,
      run: () =>
        udpAnnounceOutcome(
          udp[i]!.client,
          udp[i]!.connectionId,
          params,
          passkey === null ? undefined : `/announce/${passkey}`,
        ),
    },
  ]);
}

async function answers(
  params: AnnounceParams,
  passkey: string | null,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of probes(params, passkey)) out[p.name] = verdict(await p.run());
  return out;
}

const everywhere = (v: string): Record<string, string> =>
  Object.fromEntries(
    topo.gateways.flatMap((g) => [
      [`${g.name} http`, v],
      [`${g.name} udp`, v],
    ]),
  );

const peer = (port: number): AnnounceParams => ({
  infoHash: randomInfoHash(),
  peerId: randomPeerId(),
  port,
  left: 0n,
});

/** Waits until every replica serves `passkey` (a new passkey arrives with the next refresh). */
async function untilServed(passkey: string, params: AnnounceParams): Promise<number> {
  const t0 = performance.now();
  const served = await timeUntil(probes(params, passkey), (o) => o.ok, t0, BOUND_MS + 5_000);
  return Math.max(...served.map((s) => s.ms));
}

describe('private tracker: passkeys', () => {
  it('refuses announces without a passkey or with an unknown one, over HTTP and UDP, on both replicas', async () => {
    const p = peer(45_001);
    expect(await answers(p, null)).toEqual(everywhere('POLICY_ERR_PASSKEY_MISSING'));
    expect(await answers(p, randomBytes(16).toString('hex'))).toEqual(
      everywhere('POLICY_ERR_PASSKEY_UNKNOWN'),
    );
    // A UDP announce whose URL data is the bare route has no passkey either.
    const g = topo.gateways[0]!;
    const bare = await udpAnnounceOutcome(udp[0]!.client, udp[0]!.connectionId, p, '/announce');
    expect(verdict(bare)).toBe('POLICY_ERR_PASSKEY_MISSING');
    const http = await httpAnnounceOutcome(g.httpAnnounce, p);
    expect(http.ok ? '' : http.reason).toBe(
      'passkey required: announce at /announce/<passkey> [POLICY_ERR_PASSKEY_MISSING]',
    );
  });

  it('serves a passkey made with ttlSeconds 3 over HTTP and UDP, then refuses it with POLICY_ERR_PASSKEY_EXPIRED', async () => {
    const created = await createPasskey(topo.storageApi.url, topo.storageApi.adminToken, {
      user: 'e2e-ttl',
      ttlSeconds: 3,
    });
    expect(created.expiresAt).not.toBeNull();
    const expiresAt = Date.parse(created.expiresAt!);
    expect(expiresAt - Date.now()).toBeGreaterThan(2_000);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(3_100);
    const p = peer(45_101);
    const ms = await untilServed(created.passkey, p);
    const servedAt = Date.now();
    console.info(`ttl passkey served everywhere ${ms.toFixed(0)} ms after its creation`);
    // Served everywhere before it expired, then nothing served past the expiry.
    expect(servedAt).toBeLessThan(expiresAt);
    expect(await answers(p, created.passkey)).toEqual(everywhere('served'));
    await sleep(Math.max(0, expiresAt - Date.now()) + 100);
    // Expiry is checked against the cached expiresAt: no refresh needed.
    const expired = everywhere('POLICY_ERR_PASSKEY_EXPIRED');
    expect(await answers(p, created.passkey)).toEqual(expired);
    const http = await probes(p, created.passkey)[0]!.run();
    expect(http.ok ? '' : http.reason).toBe('passkey expired [POLICY_ERR_PASSKEY_EXPIRED]');
    // And it stays refused after the gateways have reloaded their lists.
    await sleep(BOUND_MS);
    expect(await answers(peer(45_102), created.passkey)).toEqual(expired);
  }, 30_000);

  it("does not let the gateways' storage-api token make a passkey", async () => {
    const passkey = randomBytes(16).toString('hex');
    const answer = await adminCall(
      topo.storageApi.url,
      topo.secrets.storageApiToken,
      'POST',
      '/v1/admin/passkeys',
      { passkey },
    );
    expect(answer).toMatchObject({ status: 401, body: { code: 'RPC_ERR_UNAUTHORIZED' } });
    // Nothing was written: after a full refresh, the passkey is still unknown everywhere.
    await sleep(BOUND_MS);
    expect(await answers(peer(45_150), passkey)).toEqual(everywhere('POLICY_ERR_PASSKEY_UNKNOWN'));
  });

  it('refuses a removed passkey on both replicas, HTTP and UDP, within the refresh bound', async () => {
    const created = await createPasskey(topo.storageApi.url, topo.storageApi.adminToken, {
      user: 'e2e-remove',
    });
    expect(created.expiresAt).toBeNull();
    const p = peer(45_201);
    await untilServed(created.passkey, p);
    const listed = (await adminOk(
      topo.storageApi.url,
      topo.storageApi.adminToken,
      'GET',
      '/v1/admin/passkeys',
    )) as {
      passkeys: Array<{ passkey: string; user?: string }>;
    };
    expect(listed.passkeys).toContainEqual(
      expect.objectContaining({ passkey: created.passkey, user: 'e2e-remove' }),
    );

    expect(
      await adminOk(
        topo.storageApi.url,
        topo.storageApi.adminToken,
        'DELETE',
        `/v1/admin/passkeys/${created.passkey}`,
      ),
    ).toEqual({ existed: true });
    const removedAt = performance.now();
    const refused = await timeUntil(
      probes(p, created.passkey),
      (o) => !o.ok && o.code === 'POLICY_ERR_PASSKEY_UNKNOWN',
      removedAt,
      BOUND_MS + 5_000,
    );
    console.info(
      `passkey removal reached: ${refused.map((r) => `${r.name} ${r.ms.toFixed(0)} ms`).join(', ')} (bound ${BOUND_MS} ms)`,
    );
    for (const r of refused) expect(r.ms, r.name).toBeLessThanOrEqual(BOUND_MS);
    expect(await answers(p, created.passkey)).toEqual(everywhere('POLICY_ERR_PASSKEY_UNKNOWN'));
  }, 30_000);
});

/** A copy of `torrent` announcing only to `announceUrl`; the info hash is untouched. */
async function withAnnounce(torrent: Torrent, announceUrl: string, out: string): Promise<Torrent> {
  const meta = bdecode(await readFile(torrent.path)) as BencodeDict;
  await writeFile(out, bencode({ ...meta, announce: announceUrl }));
  const infoHash = await torrentInfoHash(out);
  if (!infoHash.equals(torrent.infoHash))
    throw new HarnessError('HARNESS_ERR_FAILED', 'rewriting announce changed the info hash');
  return { path: out, infoHash };
}

async function fileSha(path: string): Promise<string | undefined> {
  return (await stat(path).catch(() => undefined)) === undefined ? undefined : sha256File(path);
}

describe('private tracker: aria2', () => {
  it('lets aria2 clients with passkey URLs on two replicas swarm, byte-identical, and gives a wrong passkey no peers', async () => {
    const [a, b] = [topo.gateways[0]!, topo.gateways[1]!];
    const seederKey = await createPasskey(topo.storageApi.url, topo.storageApi.adminToken, {
      user: 'alice',
    });
    const leecherKey = await createPasskey(topo.storageApi.url, topo.storageApi.adminToken, {
      user: 'bob',
    });
    await untilServed(seederKey.passkey, peer(45_301));
    await untilServed(leecherKey.passkey, peer(45_302));

    const dir = join(workRoot, 'aria2');
    const seedDir = join(dir, 'seed');
    const leechDir = join(dir, 'leech');
    const strangerDir = join(dir, 'stranger');
    for (const d of [seedDir, leechDir, strangerDir]) await mkdir(d, { recursive: true });
    const seedSha = await writeRandomFile(join(seedDir, 'payload.bin'), 4 * 1024 * 1024);
    const toA = await makeTorrent({
      source: join(seedDir, 'payload.bin'),
      announceUrl: `${a.httpAnnounce}/${seederKey.passkey}`,
      out: join(dir, 'alice.torrent'),
      pieceLengthLog2: 15,
    });
    const toB = await withAnnounce(
      toA,
      `${b.httpAnnounce}/${leecherKey.passkey}`,
      join(dir, 'bob.torrent'),
    );
    const wrongKey = randomBytes(16).toString('hex');
    const toWrong = await withAnnounce(
      toA,
      `${b.httpAnnounce}/${wrongKey}`,
      join(dir, 'wrong.torrent'),
    );
    const scrapeB = `${b.scrape}/${leecherKey.passkey}`;

    const procs: ManagedProcess[] = [];
    const logs = {
      seeder: join(dir, 'seeder.log'),
      leecher: join(dir, 'leecher.log'),
      stranger: join(dir, 'stranger.log'),
    };
    try {
      const seeder = startAria2({
        torrent: toA.path,
        dir: seedDir,
        role: 'seeder',
        kind: 'http',
        listenPort: await freeTcpPort(),
        logFile: logs.seeder,
      });
      procs.push(seeder);
      await waitFor(
        'the seeder, announced with its passkey to A, to be counted on B',
        async () => {
          if (!seeder.alive()) throw new HarnessError('HARNESS_ERR_EXITED', 'seeder exited');
          const [e] = await httpScrape(scrapeB, [toA.infoHash]);
          return (e?.complete ?? 0) >= 1;
        },
        30_000,
        250,
      ).catch(async (err: unknown) => {
        throw new HarnessError(
          'HARNESS_ERR_TIMEOUT',
          `${String(err)}\n${tail(await readAria2Log(logs.seeder))}\n${a.name}:\n${topo.gatewayProcesses[0]!.tail()}`,
        );
      });

      const leecher = startAria2({
        torrent: toB.path,
        dir: leechDir,
        role: 'leecher',
        kind: 'http',
        listenPort: await freeTcpPort(),
        logFile: logs.leecher,
      });
      procs.push(leecher);
      const status = await leecher.waitForExit(90_000).catch(async (err: unknown) => {
        throw new HarnessError(
          'HARNESS_ERR_TIMEOUT',
          `leecher never finished: ${String(err)}\n${tail(await readAria2Log(logs.leecher))}`,
        );
      });
      expect(status.code, tail(await readAria2Log(logs.leecher))).toBe(0);
      expect(await sha256File(join(leechDir, 'payload.bin'))).toBe(seedSha);

      // The same torrent with a wrong passkey: refused by B, so it never meets the seeder.
      const refusedBefore = await refusalsCounted(b.metrics, 'POLICY_ERR_PASSKEY_UNKNOWN');
      const stranger = startAria2({
        torrent: toWrong.path,
        dir: strangerDir,
        role: 'leecher',
        kind: 'http',
        listenPort: await freeTcpPort(),
        logFile: logs.stranger,
      });
      procs.push(stranger);
      // aria2 re-announces every 2 s (--bt-tracker-interval): wait for two refusals.
      await waitFor(
        'gateway B to refuse the wrong passkey twice',
        async () =>
          (await refusalsCounted(b.metrics, 'POLICY_ERR_PASSKEY_UNKNOWN')) >= refusedBefore + 2,
        20_000,
        200,
      ).catch(async (err: unknown) => {
        throw new HarnessError(
          'HARNESS_ERR_TIMEOUT',
          `${String(err)}\n${tail(await readAria2Log(logs.stranger))}`,
        );
      });
      expect(stranger.alive()).toBe(true);
      const [swarm] = await httpScrape(scrapeB, [toA.infoHash]);
      expect(swarm).toMatchObject({ complete: 1, incomplete: 0 });
      const strangerLog = await readAria2Log(logs.stranger);
      expect(strangerLog).toContain('POLICY_ERR_PASSKEY_UNKNOWN');
      await stranger.stop(5_000);
      expect(await fileSha(join(strangerDir, 'payload.bin'))).not.toBe(seedSha);
    } finally {
      await Promise.all(procs.map((p) => p.stop(5_000)));
    }
  }, 150_000);
});
