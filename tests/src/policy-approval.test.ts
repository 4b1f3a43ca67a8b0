// Approval lists, as processes (docs/policy.md "Where the
// data lives and how gateways converge"): the local topology (storage-api on
// Redis Sentinel + PostgreSQL, two gateways on the remote driver with
// TORRENT_APPROVAL=deny and CLIENT_APPROVAL=deny). One admin call on
// storage-api changes what both replicas answer, over HTTP and UDP, within
// POLICY_REFRESH_SECONDS, with no restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalTopology, type LocalTopology } from '@shoal/testing/topology';
import {
  adminOk,
  httpAnnounceOutcome,
  timeUntil,
  udpAnnounceOutcome,
  verdict,
  waitReady,
  type AnnounceOutcome,
  type Probe,
} from './harness/policy.ts';
import {
  httpScrape,
  randomInfoHash,
  randomPeerId,
  UdpTrackerClient,
  type AnnounceParams,
} from '@shoal/testing/tracker-client';

const REFRESH_SECONDS = 2;
/** docs/policy.md: every replica enforces a change within POLICY_REFRESH_SECONDS; 1 s slack for the poll and the request. */
const BOUND_MS = REFRESH_SECONDS * 1000 + 1000;

let topo: LocalTopology;
const udp: Array<{ client: UdpTrackerClient; connectionId: Buffer }> = [];

beforeAll(async () => {
  topo = await startLocalTopology({
    gatewayEnv: {
      TORRENT_APPROVAL: 'deny',
      CLIENT_APPROVAL: 'deny',
      POLICY_REFRESH_SECONDS: String(REFRESH_SECONDS),
    },
  });
  // Ready only after the first policy load (docs/policy.md).
  await Promise.all(topo.gateways.map((g) => waitReady(`${g.admin}/readyz`, 20_000)));
  for (const g of topo.gateways) {
    const client = await UdpTrackerClient.open(Number(new URL(g.udpAnnounce).port));
    udp.push({ client, connectionId: await client.connect() });
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(udp.map((u) => u.client.close()));
  await topo?.stop();
}, 60_000);

const admin = (
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<unknown> => adminOk(topo.storageApi.url, topo.storageApi.adminToken, method, path, body);

/** One probe per gateway and protocol, announcing `params` (a fresh announce each time, same peer). */
function probes(params: AnnounceParams): Probe[] {
  return topo.gateways.flatMap((g, i) => [
    { name: `${g.name} http`, run: () => httpAnnounceOutcome(g.httpAnnounce, params) },
    {
      name: `${g.name} udp`,
      run: () => udpAnnounceOutcome(udp[i]!.client, udp[i]!.connectionId, params),
    },
  ]);
}

async function answers(params: AnnounceParams): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of probes(params)) out[p.name] = verdict(await p.run());
  return out;
}

const allServed = (): Record<string, string> =>
  Object.fromEntries(
    topo.gateways.flatMap((g) => [
      [`${g.name} http`, 'served'],
      [`${g.name} udp`, 'served'],
    ]),
  );

const refusedWith =
  (code: string) =>
  (o: AnnounceOutcome): boolean =>
    !o.ok && o.code === code;

function report(what: string, times: Array<{ name: string; ms: number }>): void {
  console.info(
    `${what}: ${times.map((t) => `${t.name} ${t.ms.toFixed(0)} ms`).join(', ')} (bound ${BOUND_MS} ms)`,
  );
}

describe('approval lists across replicas', () => {
  it('refuses a torrent on both replicas, HTTP and UDP, within the refresh bound of one admin call, and lets it back in the same way', async () => {
    const banned = randomInfoHash();
    const other = randomInfoHash();
    const hex = banned.toString('hex');
    const peer: AnnounceParams = {
      infoHash: banned,
      peerId: randomPeerId(),
      port: 43_001,
      left: 0n,
    };
    const control: AnnounceParams = {
      infoHash: other,
      peerId: randomPeerId(),
      port: 43_002,
      left: 0n,
    };
    expect(await answers(peer)).toEqual(allServed());
    expect(await answers(control)).toEqual(allServed());
    const [before] = await httpScrape(topo.gateways[0]!.scrape, [banned]);
    expect(before?.complete).toBe(1);

    expect(
      await admin('PUT', `/v1/admin/approval/torrents/deny/${hex}`, { note: 'e2e ban' }),
    ).toEqual({ added: true });
    const bannedAt = performance.now();
    const refused = await timeUntil(
      probes(peer),
      refusedWith('POLICY_ERR_TORRENT_DENIED'),
      bannedAt,
      BOUND_MS + 5_000,
    );
    report('torrent deny reached', refused);
    for (const r of refused) {
      expect(r.ms, r.name).toBeLessThanOrEqual(BOUND_MS);
      // The text a client shows its user, ending with the code like every refusal.
      expect(r.outcome.ok ? '' : r.outcome.reason).toBe(
        'torrent is banned on this tracker [POLICY_ERR_TORRENT_DENIED]',
      );
    }
    // Refused from then on, everywhere; the other torrent is untouched.
    const deniedEverywhere = Object.fromEntries(
      Object.keys(allServed()).map((k) => [k, 'POLICY_ERR_TORRENT_DENIED']),
    );
    expect(await answers(peer)).toEqual(deniedEverywhere);
    expect(await answers({ ...peer, peerId: randomPeerId(), left: 10n })).toEqual(deniedEverywhere);
    expect(await answers(control)).toEqual(allServed());
    // A scrape of a refused torrent answers zeros rather than failing the whole scrape.
    const [deniedScrape, otherScrape] = await httpScrape(topo.gateways[1]!.scrape, [banned, other]);
    expect(deniedScrape).toEqual({ complete: 0, incomplete: 0, downloaded: 0 });
    expect(otherScrape?.complete).toBe(1);
    expect(await admin('GET', '/v1/admin/approval/torrents/deny')).toMatchObject({
      entries: [{ value: hex, note: 'e2e ban' }],
    });

    expect(await admin('DELETE', `/v1/admin/approval/torrents/deny/${hex}`)).toEqual({
      existed: true,
    });
    const liftedAt = performance.now();
    const served = await timeUntil(probes(peer), (o) => o.ok, liftedAt, BOUND_MS + 5_000);
    report('torrent deny lifted', served);
    for (const r of served) expect(r.ms, r.name).toBeLessThanOrEqual(BOUND_MS);
    expect(await answers(peer)).toEqual(allServed());
    expect(await admin('GET', '/v1/admin/approval/torrents/deny')).toEqual({ entries: [] });
  }, 40_000);

  it('refuses a denied client prefix (-XX) on both replicas, HTTP and UDP, and serves other clients', async () => {
    const infoHash = randomInfoHash();
    const xx: AnnounceParams = {
      infoHash,
      peerId: randomPeerId('-XX0001-'),
      port: 43_101,
      left: 5n,
    };
    const tr: AnnounceParams = {
      infoHash,
      peerId: randomPeerId('-TR4050-'),
      port: 43_102,
      left: 5n,
    };
    // Shorter than the prefix, and the prefix past its start: neither matches.
    const near: AnnounceParams = {
      infoHash,
      peerId: randomPeerId('-X-XX01-'),
      port: 43_103,
      left: 5n,
    };
    expect(await answers(xx)).toEqual(allServed());

    expect(
      await admin('PUT', `/v1/admin/approval/clients/deny/${encodeURIComponent('-XX')}`, {}),
    ).toEqual({ added: true });
    const deniedAt = performance.now();
    const refused = await timeUntil(
      probes({ ...xx, peerId: randomPeerId('-XX0002-') }),
      refusedWith('POLICY_ERR_CLIENT_DENIED'),
      deniedAt,
      BOUND_MS + 5_000,
    );
    report('client deny reached', refused);
    for (const r of refused) {
      expect(r.ms, r.name).toBeLessThanOrEqual(BOUND_MS);
      expect(r.outcome.ok ? '' : r.outcome.reason).toBe(
        'client banned on this tracker [POLICY_ERR_CLIENT_DENIED]',
      );
    }
    const deniedEverywhere = Object.fromEntries(
      Object.keys(allServed()).map((k) => [k, 'POLICY_ERR_CLIENT_DENIED']),
    );
    expect(await answers(xx)).toEqual(deniedEverywhere);
    expect(await answers(tr)).toEqual(allServed());
    expect(await answers(near)).toEqual(allServed());
    expect(await admin('GET', '/v1/admin/approval/clients/deny')).toMatchObject({
      entries: [{ value: '-XX' }],
    });
  }, 30_000);
});
