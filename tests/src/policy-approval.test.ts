// Approval lists, as processes (docs/policy.md "Where the
// data lives and how gateways converge"): the local topology (storage-api on
// Redis Sentinel + PostgreSQL, two gateways on the remote driver with
// TORRENT_APPROVAL=deny and CLIENT_APPROVAL=deny). One admin call on
// storage-api changes what both replicas answer, over HTTP and UDP, within
// POLICY_REFRESH_SECONDS, with no restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminOk,
  PolicyTopology,
  seeder,
  timeUntil,
  type AnnounceOutcome,
  type Probe,
} from './harness/policy.ts';
import { httpScrape, randomInfoHash, randomPeerId } from '@shoal/testing/tracker-client';

const REFRESH_SECONDS = 2;
/** docs/policy.md: every replica enforces a change within POLICY_REFRESH_SECONDS; 1 s slack for the poll and the request. */
const BOUND_MS = REFRESH_SECONDS * 1000 + 1000;

let policy: PolicyTopology;

beforeAll(async () => {
  policy = await PolicyTopology.start({
    TORRENT_APPROVAL: 'deny',
    CLIENT_APPROVAL: 'deny',
    POLICY_REFRESH_SECONDS: String(REFRESH_SECONDS),
  });
}, 120_000);

afterAll(async () => {
  await policy?.stop();
}, 60_000);

const admin = (
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<unknown> =>
  adminOk(policy.topo.storageApi.url, policy.topo.storageApi.adminToken, method, path, body);

const refusedWith =
  (code: string) =>
  (o: AnnounceOutcome): boolean =>
    !o.ok && o.code === code;

function report(what: string, times: Array<{ name: string; ms: number }>): void {
  console.info(
    `${what}: ${times.map((t) => `${t.name} ${t.ms.toFixed(0)} ms`).join(', ')} (bound ${BOUND_MS} ms)`,
  );
}

/**
 * Waits until every probe is refused with `code`, then checks that each was
 * within BOUND_MS of `sinceMs` and that its text, the one a client shows its
 * user, is `reason` (ending with the code like every refusal).
 */
async function expectRefusedWithinBound(
  what: string,
  ps: Probe[],
  code: string,
  reason: string,
  sinceMs: number,
): Promise<void> {
  const refused = await timeUntil(ps, refusedWith(code), sinceMs, BOUND_MS + 5_000);
  report(what, refused);
  for (const r of refused) {
    expect(r.ms, r.name).toBeLessThanOrEqual(BOUND_MS);
    expect(r.outcome.ok ? '' : r.outcome.reason).toBe(reason);
  }
}

describe('approval lists across replicas', () => {
  it('refuses a torrent on both replicas, HTTP and UDP, within the refresh bound of one admin call, and lets it back in the same way', async () => {
    const banned = randomInfoHash();
    const other = randomInfoHash();
    const hex = banned.toString('hex');
    const peer = seeder(43_001, banned);
    const control = seeder(43_002, other);
    expect(await policy.answers(peer)).toEqual(policy.everywhere('served'));
    expect(await policy.answers(control)).toEqual(policy.everywhere('served'));
    const [before] = await httpScrape(policy.topo.gateways[0]!.scrape, [banned]);
    expect(before?.complete).toBe(1);

    expect(
      await admin('PUT', `/v1/admin/approval/torrents/deny/${hex}`, { note: 'e2e ban' }),
    ).toEqual({ added: true });
    await expectRefusedWithinBound(
      'torrent deny reached',
      policy.probes(peer),
      'POLICY_ERR_TORRENT_DENIED',
      'torrent is banned on this tracker [POLICY_ERR_TORRENT_DENIED]',
      performance.now(),
    );
    // Refused from then on, everywhere; the other torrent is untouched.
    const deniedEverywhere = policy.everywhere('POLICY_ERR_TORRENT_DENIED');
    expect(await policy.answers(peer)).toEqual(deniedEverywhere);
    expect(await policy.answers({ ...peer, peerId: randomPeerId(), left: 10n })).toEqual(
      deniedEverywhere,
    );
    expect(await policy.answers(control)).toEqual(policy.everywhere('served'));
    // A scrape of a refused torrent answers zeros rather than failing the whole scrape.
    const [deniedScrape, otherScrape] = await httpScrape(policy.topo.gateways[1]!.scrape, [
      banned,
      other,
    ]);
    expect(deniedScrape).toEqual({ complete: 0, incomplete: 0, downloaded: 0 });
    expect(otherScrape?.complete).toBe(1);
    expect(await admin('GET', '/v1/admin/approval/torrents/deny')).toMatchObject({
      entries: [{ value: hex, note: 'e2e ban' }],
    });

    expect(await admin('DELETE', `/v1/admin/approval/torrents/deny/${hex}`)).toEqual({
      existed: true,
    });
    const liftedAt = performance.now();
    const served = await timeUntil(policy.probes(peer), (o) => o.ok, liftedAt, BOUND_MS + 5_000);
    report('torrent deny lifted', served);
    for (const r of served) expect(r.ms, r.name).toBeLessThanOrEqual(BOUND_MS);
    expect(await policy.answers(peer)).toEqual(policy.everywhere('served'));
    expect(await admin('GET', '/v1/admin/approval/torrents/deny')).toEqual({ entries: [] });
  }, 40_000);

  it('refuses a denied client prefix (-XX) on both replicas, HTTP and UDP, and serves other clients', async () => {
    const infoHash = randomInfoHash();
    const xx = {
      infoHash,
      peerId: randomPeerId('-XX0001-'),
      port: 43_101,
      left: 5n,
    };
    const tr = {
      infoHash,
      peerId: randomPeerId('-TR4050-'),
      port: 43_102,
      left: 5n,
    };
    // Shorter than the prefix, and the prefix past its start: neither matches.
    const near = {
      infoHash,
      peerId: randomPeerId('-X-XX01-'),
      port: 43_103,
      left: 5n,
    };
    expect(await policy.answers(xx)).toEqual(policy.everywhere('served'));

    expect(
      await admin('PUT', `/v1/admin/approval/clients/deny/${encodeURIComponent('-XX')}`, {}),
    ).toEqual({ added: true });
    await expectRefusedWithinBound(
      'client deny reached',
      policy.probes({ ...xx, peerId: randomPeerId('-XX0002-') }),
      'POLICY_ERR_CLIENT_DENIED',
      'client banned on this tracker [POLICY_ERR_CLIENT_DENIED]',
      performance.now(),
    );
    const deniedEverywhere = policy.everywhere('POLICY_ERR_CLIENT_DENIED');
    expect(await policy.answers(xx)).toEqual(deniedEverywhere);
    expect(await policy.answers(tr)).toEqual(policy.everywhere('served'));
    expect(await policy.answers(near)).toEqual(policy.everywhere('served'));
    expect(await admin('GET', '/v1/admin/approval/clients/deny')).toMatchObject({
      entries: [{ value: '-XX' }],
    });
  }, 30_000);
});
