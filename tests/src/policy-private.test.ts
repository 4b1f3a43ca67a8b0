// Private trackers, as processes (docs/policy.md
// "private mode: passkey"): the local topology with PASSKEY_REQUIRED=true on
// both gateways. Passkeys made through storage-api's admin API work at
// /announce/<passkey> over HTTP and in BEP 41 URL data over UDP, stop at
// their expiry even between refreshes, and are refused everywhere within
// POLICY_REFRESH_SECONDS of their removal. Unmodified aria2 clients swarm
// through passkey URLs; a wrong passkey gets nobody.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tail } from './harness/aria2.ts';
import { Aria2Swarm } from './harness/aria2-transfer.ts';
import { HarnessError } from '@shoal/testing/errors';
import {
  adminCall,
  adminOk,
  createPasskey,
  httpAnnounceOutcome,
  PolicyTopology,
  refusalsCounted,
  seeder,
  timeUntil,
  udpAnnounceOutcome,
  verdict,
} from './harness/policy.ts';
import { sleep, waitFor } from '@shoal/testing/processes';
import { httpScrape, type AnnounceParams } from '@shoal/testing/tracker-client';

// 1 s (policy-approval.test.ts runs 2 s): a 3 s passkey must reach both
// replicas with time to spare before it expires, even on a loaded machine.
const REFRESH_SECONDS = 1;
const BOUND_MS = REFRESH_SECONDS * 1000 + 1000;

let policy: PolicyTopology;
let topo: PolicyTopology['topo'];
let workRoot = '';

beforeAll(async () => {
  workRoot = await mkdtemp(join(tmpdir(), 'shoal-policy-private-'));
  policy = await PolicyTopology.start({
    PASSKEY_REQUIRED: 'true',
    POLICY_REFRESH_SECONDS: String(REFRESH_SECONDS),
  });
  topo = policy.topo;
}, 120_000);

afterAll(async () => {
  await policy?.stop();
  if (workRoot !== '') await rm(workRoot, { recursive: true, force: true });
}, 60_000);

/** Waits until every replica serves `passkey` (a new passkey arrives with the next refresh). */
async function untilServed(passkey: string, params: AnnounceParams): Promise<number> {
  const t0 = performance.now();
  const served = await timeUntil(policy.probes(params, passkey), (o) => o.ok, t0, BOUND_MS + 5_000);
  return Math.max(...served.map((s) => s.ms));
}

describe('private tracker: passkeys', () => {
  it('refuses announces without a passkey or with an unknown one, over HTTP and UDP, on both replicas', async () => {
    const p = seeder(45_001);
    expect(await policy.answers(p)).toEqual(policy.everywhere('POLICY_ERR_PASSKEY_MISSING'));
    expect(await policy.answers(p, randomBytes(16).toString('hex'))).toEqual(
      policy.everywhere('POLICY_ERR_PASSKEY_UNKNOWN'),
    );
    // A UDP announce whose URL data is the bare route has no passkey either.
    const g = topo.gateways[0]!;
    const { client, connectionId } = policy.udp[0]!;
    const bare = await udpAnnounceOutcome(client, connectionId, p, '/announce');
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
    const p = seeder(45_101);
    const ms = await untilServed(created.passkey, p);
    const servedAt = Date.now();
    console.info(`ttl passkey served everywhere ${ms.toFixed(0)} ms after its creation`);
    // Served everywhere before it expired, then nothing served past the expiry.
    expect(servedAt).toBeLessThan(expiresAt);
    expect(await policy.answers(p, created.passkey)).toEqual(policy.everywhere('served'));
    await sleep(Math.max(0, expiresAt - Date.now()) + 100);
    // Expiry is checked against the cached expiresAt: no refresh needed.
    const expired = policy.everywhere('POLICY_ERR_PASSKEY_EXPIRED');
    expect(await policy.answers(p, created.passkey)).toEqual(expired);
    const http = await policy.probes(p, created.passkey)[0]!.run();
    expect(http.ok ? '' : http.reason).toBe('passkey expired [POLICY_ERR_PASSKEY_EXPIRED]');
    // And it stays refused after the gateways have reloaded their lists.
    await sleep(BOUND_MS);
    expect(await policy.answers(seeder(45_102), created.passkey)).toEqual(expired);
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
    expect(await policy.answers(seeder(45_150), passkey)).toEqual(
      policy.everywhere('POLICY_ERR_PASSKEY_UNKNOWN'),
    );
  });

  it('refuses a removed passkey on both replicas, HTTP and UDP, within the refresh bound', async () => {
    const created = await createPasskey(topo.storageApi.url, topo.storageApi.adminToken, {
      user: 'e2e-remove',
    });
    expect(created.expiresAt).toBeNull();
    const p = seeder(45_201);
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
      policy.probes(p, created.passkey),
      (o) => !o.ok && o.code === 'POLICY_ERR_PASSKEY_UNKNOWN',
      removedAt,
      BOUND_MS + 5_000,
    );
    console.info(
      `passkey removal reached: ${refused.map((r) => `${r.name} ${r.ms.toFixed(0)} ms`).join(', ')} (bound ${BOUND_MS} ms)`,
    );
    for (const r of refused) expect(r.ms, r.name).toBeLessThanOrEqual(BOUND_MS);
    expect(await policy.answers(p, created.passkey)).toEqual(
      policy.everywhere('POLICY_ERR_PASSKEY_UNKNOWN'),
    );
  }, 30_000);
});

describe('private tracker: aria2', () => {
  it('lets aria2 clients with passkey URLs on two replicas swarm, byte-identical, and gives a wrong passkey no peers', async () => {
    const [a, b] = [topo.gateways[0]!, topo.gateways[1]!];
    const seederKey = await createPasskey(topo.storageApi.url, topo.storageApi.adminToken, {
      user: 'alice',
    });
    const leecherKey = await createPasskey(topo.storageApi.url, topo.storageApi.adminToken, {
      user: 'bob',
    });
    await untilServed(seederKey.passkey, seeder(45_301));
    await untilServed(leecherKey.passkey, seeder(45_302));

    const swarm = await Aria2Swarm.create(join(workRoot, 'aria2'));
    try {
      const toA = await swarm.torrent('alice', `${a.httpAnnounce}/${seederKey.passkey}`);
      const toB = await swarm.torrent('bob', `${b.httpAnnounce}/${leecherKey.passkey}`);
      const wrongKey = randomBytes(16).toString('hex');
      const toWrong = await swarm.torrent('wrong', `${b.httpAnnounce}/${wrongKey}`);
      const scrapeB = `${b.scrape}/${leecherKey.passkey}`;

      await swarm.seed(toA, {
        what: 'the seeder, announced with its passkey to A, to be counted on B',
        counted: async () => {
          const [e] = await httpScrape(scrapeB, [toA.infoHash]);
          return (e?.complete ?? 0) >= 1;
        },
        diagnostics: () => `${a.name}:\n${topo.gatewayProcesses[0]!.tail()}`,
      });

      const { status, log } = await swarm.leech('leecher', toB);
      expect(status.code, tail(log)).toBe(0);
      expect(await swarm.payloadSha256('leecher')).toBe(swarm.seederSha256);

      // The same torrent with a wrong passkey: refused by B, so it never meets the seeder.
      const refusedBefore = await refusalsCounted(b.metrics, 'POLICY_ERR_PASSKEY_UNKNOWN');
      const stranger = await swarm.start('stranger', toWrong, 'leecher');
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
          `${String(err)}\n${tail(await swarm.log('stranger'))}`,
        );
      });
      expect(stranger.alive()).toBe(true);
      const [entry] = await httpScrape(scrapeB, [toA.infoHash]);
      expect(entry).toMatchObject({ complete: 1, incomplete: 0 });
      expect(await swarm.log('stranger')).toContain('POLICY_ERR_PASSKEY_UNKNOWN');
      await stranger.stop(5_000);
      expect(await swarm.payloadSha256('stranger')).not.toBe(swarm.seederSha256);
    } finally {
      await swarm.stop();
    }
  }, 150_000);
});
