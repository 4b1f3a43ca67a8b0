// BEP 7 `ipv4=` / `ipv6=` (docs/decisions.md "BEP 7 addresses"), through real
// HTTP sockets against gateways bound to '::' on each store: with
// ALLOW_IPV4_IPV6_PARAMS an IPv4 client that names an IPv6 address is also an
// IPv6 peer, its answer carries `peers` and `peers6`, and `stopped` removes
// both entries; junk is a coded refusal that writes nothing and harms no
// other request; off, the parameters change nothing. On the stores the
// replicas share, the IPv6 client asks the other replica.
//
// No real client here: libtorrent sends ipv4=/ipv6= only for private
// torrents from listen addresses that are neither loopback nor local, and
// these tests run on loopback; the queries are written as libtorrent writes
// them (address only, percent-escaped) and in BEP 7's [address]:port form.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import {
  decodeDictPeers,
  httpAnnounce,
  httpAnnounceDict,
  httpScrape,
  randomInfoHash,
  randomPeerId,
  type AnnounceParams,
} from '@shoal/testing/tracker-client';
import { describeOnEveryStore } from './harness/topologies.ts';

const v4Url = (g: { httpPort: number }): string => `http://127.0.0.1:${g.httpPort}/announce`;
const v6Url = (g: { httpPort: number }): string => `http://[::1]:${g.httpPort}/announce`;
const scrapeUrl = (g: { httpPort: number }): string => `http://127.0.0.1:${g.httpPort}/scrape`;

function failureOf(dict: Record<string, unknown>): string | undefined {
  const reason = dict['failure reason'];
  return Buffer.isBuffer(reason) ? reason.toString('utf8') : undefined;
}

describeOnEveryStore(
  'BEP 7 addresses',
  { host: '::', env: { ALLOW_IPV4_IPV6_PARAMS: 'true' } },
  ({ first, second }) => {
    it('an IPv4 client with ipv6= is seen by IPv6 peers, gets peers and peers6 together, and stopped removes both entries', async () => {
      const infoHash = randomInfoHash();
      const seeder: AnnounceParams = {
        infoHash,
        peerId: randomPeerId(),
        port: 63_001,
        left: 0n,
        ipv6: '2001:db8::7',
      };
      const seeded = await httpAnnounce(v4Url(first()), { ...seeder, event: 'started' });
      expect(seeded).toMatchObject({ peers: [], peers6: [] });

      // An IPv6 client that names no other address sees the seeder's IPv6 entry only.
      const leecher6 = { infoHash, peerId: randomPeerId(), port: 63_002, left: 10n };
      const seen6 = await httpAnnounce(v6Url(second()), leecher6);
      expect(seen6).toMatchObject({ peers: [], peers6: ['[2001:db8::7]:63001'] });

      // BEP 7's endpoint form: the entry takes the port it names.
      const dual = {
        infoHash,
        peerId: randomPeerId(),
        port: 63_003,
        left: 10n,
        ipv6: '[2001:db8::8]:63333',
      };
      const both = await httpAnnounce(v4Url(first()), { ...dual, numWant: 50 });
      expect(both.peers).toEqual(['127.0.0.1:63001']);
      expect(both.peers6.sort()).toEqual(['[2001:db8::7]:63001', '[::1]:63002'].sort());
      // docs/decisions.md "BEP 7 addresses": one entry per family, counted in each.
      expect(both).toMatchObject({ seeders: 2, leechers: 3 });
      expect(await httpScrape(scrapeUrl(second()), [infoHash])).toEqual([
        { complete: 2, incomplete: 3, downloaded: 0 },
      ]);
      const again6 = await httpAnnounce(v6Url(second()), { ...leecher6, numWant: 50 });
      expect(again6.peers6.sort()).toEqual(['[2001:db8::7]:63001', '[2001:db8::8]:63333'].sort());

      const stopped = await httpAnnounce(v4Url(first()), { ...dual, event: 'stopped' });
      expect(stopped).toMatchObject({ seeders: 2, leechers: 1 });
      expect(await httpScrape(scrapeUrl(second()), [infoHash])).toEqual([
        { complete: 2, incomplete: 1, downloaded: 0 },
      ]);
      const after6 = await httpAnnounce(v6Url(second()), { ...leecher6, numWant: 50 });
      expect(after6.peers6).toEqual(['[2001:db8::7]:63001']);
    });

    it('an IPv6 client with ipv4= is seen by IPv4 peers, in compact and non-compact answers', async () => {
      const infoHash = randomInfoHash();
      const seeder = { infoHash, peerId: randomPeerId(), port: 63_011, left: 0n };
      await httpAnnounce(v6Url(first()), { ...seeder, ipv4: '192.0.2.11' });
      const v4 = await httpAnnounce(v4Url(second()), {
        infoHash,
        peerId: randomPeerId(),
        port: 63_012,
        left: 10n,
      });
      expect(v4).toMatchObject({ peers: ['192.0.2.11:63011'], peers6: [] });
      // A dual-stack leecher asking for dictionaries gets both families in one `peers` list.
      const dict = await httpAnnounceDict(
        v6Url(first()),
        { infoHash, peerId: randomPeerId(), port: 63_013, left: 10n, ipv4: '192.0.2.13' },
        { compact: false },
      );
      expect(failureOf(dict)).toBeUndefined();
      const peers = decodeDictPeers(dict.peers).map((p) => `${p.ip}:${p.port}`);
      expect(peers.sort()).toEqual(['127.0.0.1:63012', '192.0.2.11:63011', '::1:63011'].sort());
      expect(dict.peers6).toBeUndefined();
    });

    it('refuses junk ipv4=/ipv6= with a coded failure that writes nothing, while other announces are answered', async () => {
      const infoHash = randomInfoHash();
      const good = { infoHash, peerId: randomPeerId(), port: 63_021, left: 0n };
      const junk = ['2001:db8::zz', '192.0.2.1', '::ffff:192.0.2.1', '[2001:db8::1]:0', '::'];
      const [answers, fine] = await Promise.all([
        Promise.all(
          junk.map((ipv6, i) =>
            httpAnnounceDict(v4Url(first()), {
              infoHash,
              peerId: randomPeerId(),
              port: 63_030 + i,
              left: 10n,
              ipv6,
            }),
          ),
        ),
        httpAnnounce(v4Url(second()), good),
      ]);
      for (const answer of answers)
        expect(failureOf(answer)).toBe(
          'invalid address parameter: ipv6 [PROTO_ERR_BAD_ADDRESS_PARAM]',
        );
      expect(fine).toMatchObject({ seeders: 1, leechers: 0 });
      const wrongFamily = await httpAnnounceDict(v6Url(first()), {
        infoHash,
        peerId: randomPeerId(),
        port: 63_040,
        left: 10n,
        ipv4: '2001:db8::1',
      });
      expect(failureOf(wrongFamily)).toBe(
        'invalid address parameter: ipv4 [PROTO_ERR_BAD_ADDRESS_PARAM]',
      );
      expect(await httpScrape(scrapeUrl(first()), [infoHash])).toEqual([
        { complete: 1, incomplete: 0, downloaded: 0 },
      ]);
    });
  },
);

describe('BEP 7 addresses, setting off (the default)', () => {
  let gateway: GatewayProcess;
  beforeAll(async () => {
    gateway = await startGateway({ HOST: '::', STORAGE_DRIVER: 'memory' });
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  it('ignores ipv4= and ipv6=, junk included, and counts them as ignored in /metrics', async () => {
    const infoHash = randomInfoHash();
    const seeder = { infoHash, peerId: randomPeerId(), port: 63_051, left: 0n };
    const answer = await httpAnnounceDict(v4Url(gateway), {
      ...seeder,
      ipv6: '2001:db8::51',
      ipv4: 'junk',
    });
    expect(failureOf(answer)).toBeUndefined();
    expect(answer.peers6).toBeUndefined();
    const v6 = await httpAnnounce(v6Url(gateway), {
      infoHash,
      peerId: randomPeerId(),
      port: 63_052,
      left: 10n,
    });
    expect(v6).toMatchObject({ seeders: 1, leechers: 1, peers: [], peers6: [] });
    const res = await fetch(gateway.adminUrl('/metrics'), { signal: AbortSignal.timeout(10_000) });
    expect(await res.text()).toMatch(
      /^shoal_bep7_address_announces_total\{outcome="ignored"\} 1$/m,
    );
  });
});
