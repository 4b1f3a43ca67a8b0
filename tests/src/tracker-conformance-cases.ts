// The cases of the tracker conformance suite (tracker-conformance.test.ts):
// what a BitTorrent client notices of the pinned tracker semantics
// (docs/decisions.md "Tracker semantics", docs/decisions.md "Swarm semantics"),
// through real HTTP and UDP sockets, written against a `Deployment` so every
// topology runs the same cases. Requests are built by the harness's own
// client (harness/tracker-client.ts), never by @shoal/protocol.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { expect } from 'vitest';
import { type BDict } from '@shoal/testing/bencode';
import type { Deployment, TopologySpec, TrackerEndpoint } from './harness/topologies.ts';
import {
  announcePacket,
  connectPacket,
  decodeCompactPeers,
  decodeCompactPeers6,
  decodeDictPeers,
  httpAnnounce,
  httpAnnounceDict,
  httpGetDict,
  httpScrape,
  percentEncodeBytes,
  randomInfoHash,
  randomPeerId,
  scrapePacket,
  UDP_ACTION,
  UdpTrackerClient,
  type AnnounceParams,
  type EventName,
} from '@shoal/testing/tracker-client';

/** What a case needs that not every topology has; without it the case is "n/a" there. */
export type Requirement = 'sharedSwarm' | 'ipv6';

export interface ConformanceCase {
  /** Row title in the results table and the `it` name. */
  readonly name: string;
  readonly needs?: readonly Requirement[];
  run(d: Deployment, spec: TopologySpec): Promise<void>;
}

export interface RequirementCheck {
  holds(spec: TopologySpec, d: { ipv6Loopback: boolean }): boolean;
  /** Why the case is n/a, for the table's notes and the `it` name. */
  reason: string;
  /**
   * Run instead of the case where the requirement does not hold: asserts the
   * reason is true (an "n/a" is a checked fact, never a silent skip).
   */
  premise(d: Deployment): Promise<void>;
}

// --- helpers ----------------------------------------------------------------

function peer(
  infoHash: Buffer,
  port: number,
  left: bigint,
  event: EventName = 'started',
  extra: Partial<AnnounceParams> = {},
): AnnounceParams {
  return { infoHash, peerId: randomPeerId(), port, left, event, ...extra };
}

/** The same peer announcing again (same peer_id and port). */
function again(p: AnnounceParams, event: EventName, extra: Partial<AnnounceParams> = {}) {
  return { ...p, event, ...extra };
}

async function withUdp<T>(
  endpoint: TrackerEndpoint,
  fn: (client: UdpTrackerClient) => Promise<T>,
): Promise<T> {
  const client = await UdpTrackerClient.open(endpoint.udpPort, endpoint.host);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** The [::1] replica of a deployment started with IPv6 (cases that need 'ipv6' run only there). */
function v6Of(d: Deployment): TrackerEndpoint {
  expect(d.ipv6, 'the deployment has a [::1] replica').toBeDefined();
  return d.ipv6!;
}

/** The answer dictionary, after checking it is not a refusal (whose text is then the message). */
function answer(dict: BDict): BDict {
  const reason = dict['failure reason'];
  expect(Buffer.isBuffer(reason) ? reason.toString('utf8') : undefined, 'failure reason').toBe(
    undefined,
  );
  return dict;
}

function int(dict: BDict, key: string): number {
  const v = dict[key];
  expect(typeof v, `"${key}" is an integer`).toBe('number');
  return v as number;
}

function bytes(dict: BDict, key: string): Buffer {
  const v = dict[key];
  expect(Buffer.isBuffer(v), `"${key}" is a byte string`).toBe(true);
  return v as Buffer;
}

/** The "[CODE]" a refusal's text ends with (docs/decisions.md "Errors carry their code"). */
function codeOf(text: string): string | undefined {
  return /\[([A-Z0-9_]+)\]\s*$/.exec(text)?.[1];
}

async function failureCode(url: string): Promise<string | undefined> {
  const dict = await httpGetDict(url);
  const reason = dict['failure reason'];
  expect(Buffer.isBuffer(reason), `a "failure reason" for ${url}`).toBe(true);
  return codeOf((reason as Buffer).toString('utf8'));
}

/** Announces many peers over UDP, a bounded window at a time (the kernel drops big bursts). */
async function fillSwarm(
  endpoint: TrackerEndpoint,
  infoHash: Buffer,
  count: number,
  firstPort: number,
  left: bigint,
): Promise<void> {
  await withUdp(endpoint, async (client) => {
    const id = await client.connect();
    for (let start = 0; start < count; start += 20) {
      const window = Array.from({ length: Math.min(20, count - start) }, (_, i) =>
        client.announce(peer(infoHash, firstPort + start + i, left), id),
      );
      await Promise.all(window);
    }
  });
}

function expectDistinct(peers: readonly string[]): void {
  expect(new Set(peers).size).toBe(peers.length);
}

// --- cases --------------------------------------------------------------------

export const CASES: readonly ConformanceCase[] = [
  {
    name: 'HTTP compact announce: counts include the announcer, interval and min interval',
    async run({ replicas: [a] }) {
      const h = randomInfoHash();
      const first = answer(await httpAnnounceDict(a.announceUrl('http'), peer(h, 40_001, 0n)));
      expect(int(first, 'interval')).toBeGreaterThan(0);
      expect(int(first, 'min interval')).toBeGreaterThan(0);
      expect(int(first, 'min interval')).toBeLessThanOrEqual(int(first, 'interval'));
      expect({ complete: int(first, 'complete'), incomplete: int(first, 'incomplete') }).toEqual({
        complete: 1,
        incomplete: 0,
      });
      const second = await httpAnnounce(a.announceUrl('http'), peer(h, 40_002, 5n));
      expect(second).toMatchObject({ seeders: 1, leechers: 1, peers: ['127.0.0.1:40001'] });
    },
  },
  {
    name: 'HTTP `peers` is always present, empty for the first peer, numwant=0 and stopped',
    async run({ replicas: [a] }) {
      const h = randomInfoHash();
      const url = a.announceUrl('http');
      const lone = peer(h, 40_011, 5n);
      const first = answer(await httpAnnounceDict(url, lone));
      expect(bytes(first, 'peers')).toHaveLength(0);
      await httpAnnounce(url, peer(h, 40_012, 0n));
      const none = answer(await httpAnnounceDict(url, again(lone, 'none', { numWant: 0 })));
      expect(bytes(none, 'peers')).toHaveLength(0);
      expect(int(none, 'complete')).toBe(1);
      const stopped = answer(await httpAnnounceDict(url, again(lone, 'stopped')));
      expect(bytes(stopped, 'peers')).toHaveLength(0);
    },
  },
  {
    name: 'HTTP compact=0: a list of dictionaries with ip, port and peer id',
    async run({ replicas: [a] }, spec) {
      const h = randomInfoHash();
      const seeder = peer(h, 40_021, 0n);
      await httpAnnounce(a.announceUrl('http'), seeder);
      const dict = answer(
        await httpAnnounceDict(a.announceUrl('http'), peer(h, 40_022, 5n), { compact: false }),
      );
      expect({ complete: int(dict, 'complete'), incomplete: int(dict, 'incomplete') }).toEqual({
        complete: 1,
        incomplete: 1,
      });
      const peers = decodeDictPeers(dict.peers);
      // docs/decisions.md: a Redis store keeps no peer_ids by default, so its answers have none.
      expect(peers).toEqual([
        {
          ip: '127.0.0.1',
          port: 40_021,
          ...(spec.keepsPeerIds ? { peerId: seeder.peerId } : {}),
        },
      ]);
    },
  },
  {
    name: 'HTTP no_peer_id=1: dictionaries without peer id; compact answers unchanged',
    async run({ replicas: [a] }) {
      const h = randomInfoHash();
      await httpAnnounce(a.announceUrl('http'), peer(h, 40_031, 0n));
      const leecher = peer(h, 40_032, 5n);
      const dicts = answer(
        await httpAnnounceDict(a.announceUrl('http'), leecher, { compact: false, noPeerId: true }),
      );
      expect(decodeDictPeers(dicts.peers)).toEqual([{ ip: '127.0.0.1', port: 40_031 }]);
      const compact = answer(
        await httpAnnounceDict(a.announceUrl('http'), again(leecher, 'none'), { noPeerId: true }),
      );
      expect(decodeCompactPeers(bytes(compact, 'peers'))).toEqual(['127.0.0.1:40031']);
    },
  },
  {
    name: 'numwant: default 50, explicit, capped at 200, 0 (HTTP and UDP)',
    async run({ replicas: [a] }) {
      const h = randomInfoHash();
      await fillSwarm(a, h, 210, 42_000, 0n);
      const url = a.announceUrl('http');
      const viaHttp = peer(h, 41_001, 5n);
      const byDefault = await httpAnnounce(url, viaHttp);
      expect(byDefault).toMatchObject({ seeders: 210, leechers: 1 });
      expect(byDefault.peers).toHaveLength(50);
      expectDistinct(byDefault.peers);
      expect((await httpAnnounce(url, again(viaHttp, 'none', { numWant: 7 }))).peers).toHaveLength(
        7,
      );
      const capped = await httpAnnounce(url, again(viaHttp, 'none', { numWant: 1000 }));
      expect(capped.peers).toHaveLength(200);
      expectDistinct(capped.peers);
      expect(capped.peers).not.toContain('127.0.0.1:41001');
      const zero = await httpAnnounce(url, again(viaHttp, 'none', { numWant: 0 }));
      expect(zero).toMatchObject({ seeders: 210, leechers: 1, peers: [] });

      await withUdp(a, async (udp) => {
        const id = await udp.connect();
        const viaUdp = peer(h, 41_002, 5n, 'started', { numWant: -1 });
        const udpDefault = await udp.announce(viaUdp, id);
        expect(udpDefault).toMatchObject({ seeders: 210, leechers: 2 });
        expect(udpDefault.peers).toHaveLength(50);
        expect((await udp.announce(again(viaUdp, 'none', { numWant: 9 }), id)).peers).toHaveLength(
          9,
        );
        const udpCapped = await udp.announce(again(viaUdp, 'none', { numWant: 500 }), id);
        expect(udpCapped.peers).toHaveLength(200);
        expectDistinct(udpCapped.peers);
        expect((await udp.announce(again(viaUdp, 'none', { numWant: 0 }), id)).peers).toEqual([]);
      });
    },
  },
  {
    name: 'a peer never receives itself (HTTP and UDP)',
    async run({ replicas: [a] }) {
      const h = randomInfoHash();
      const url = a.announceUrl('http');
      const viaHttp = [40_041, 40_042, 40_043].map((p) => peer(h, p, 5n));
      for (const p of viaHttp) await httpAnnounce(url, p);
      for (const p of viaHttp) {
        const reply = await httpAnnounce(url, again(p, 'none'));
        expect(reply.peers.sort()).toEqual(
          viaHttp.filter((q) => q !== p).map((q) => `127.0.0.1:${q.port}`),
        );
      }
      await withUdp(a, async (udp) => {
        const id = await udp.connect();
        const viaUdp = peer(h, 40_044, 5n);
        const reply = await udp.announce(viaUdp, id);
        expect(reply.peers).toHaveLength(3);
        expect(reply.peers).not.toContain('127.0.0.1:40044');
        expect((await udp.announce(again(viaUdp, 'none'), id)).peers).not.toContain(
          '127.0.0.1:40044',
        );
      });
    },
  },
  {
    name: 'seeders receive leechers only; leechers receive seeders and leechers',
    async run({ replicas: [a] }) {
      const h = randomInfoHash();
      const url = a.announceUrl('http');
      const [s1, s2] = [40_051, 40_052].map((p) => peer(h, p, 0n)) as [
        AnnounceParams,
        AnnounceParams,
      ];
      const [l1, l2] = [40_053, 40_054].map((p) => peer(h, p, 5n)) as [
        AnnounceParams,
        AnnounceParams,
      ];
      for (const p of [s1, s2, l1, l2]) await httpAnnounce(url, p);
      const seederView = await httpAnnounce(url, again(s1, 'none'));
      expect(seederView).toMatchObject({ seeders: 2, leechers: 2 });
      expect(seederView.peers.sort()).toEqual(['127.0.0.1:40053', '127.0.0.1:40054']);
      const leecherView = await httpAnnounce(url, again(l1, 'none'));
      expect(leecherView.peers.sort()).toEqual([
        '127.0.0.1:40051',
        '127.0.0.1:40052',
        '127.0.0.1:40054',
      ]);
      await withUdp(a, async (udp) => {
        const id = await udp.connect();
        expect((await udp.announce(again(s2, 'none'), id)).peers.sort()).toEqual([
          '127.0.0.1:40053',
          '127.0.0.1:40054',
        ]);
      });
    },
  },
  {
    name: 'HTTP scrape of several hashes: complete, incomplete, downloaded per hash',
    async run({ replicas: [a] }) {
      const url = a.announceUrl('http');
      const [h1, h2, unknown] = [randomInfoHash(), randomInfoHash(), randomInfoHash()];
      await httpAnnounce(url, peer(h1, 40_061, 0n));
      await httpAnnounce(url, peer(h1, 40_062, 0n));
      await httpAnnounce(url, peer(h1, 40_063, 5n));
      const finisher = peer(h2, 40_064, 5n);
      await httpAnnounce(url, finisher);
      await httpAnnounce(url, again(finisher, 'completed', { left: 0n }));
      await httpAnnounce(url, peer(h2, 40_065, 5n));
      expect(await httpScrape(a.scrapeUrl(), [h1, h2, unknown])).toEqual([
        { complete: 2, incomplete: 1, downloaded: 0 },
        { complete: 1, incomplete: 1, downloaded: 1 },
        { complete: 0, incomplete: 0, downloaded: 0 },
      ]);
      // The answer is keyed by the raw 20-byte hashes asked for (BEP 48).
      const raw = await httpGetDict(
        `${a.scrapeUrl()}?info_hash=${percentEncodeBytes(h1)}&info_hash=${percentEncodeBytes(h2)}`,
      );
      const files = raw.files as BDict;
      expect(Object.keys(files).sort()).toEqual(
        [h1.toString('latin1'), h2.toString('latin1')].sort(),
      );
    },
  },
  {
    name: 'UDP scrape of several hashes: complete, incomplete, downloaded per hash, in order',
    async run({ replicas: [a] }) {
      const [h1, h2, unknown] = [randomInfoHash(), randomInfoHash(), randomInfoHash()];
      await withUdp(a, async (udp) => {
        const id = await udp.connect();
        await udp.announce(peer(h1, 40_071, 5n), id);
        await udp.announce(peer(h1, 40_072, 5n), id);
        await udp.announce(peer(h2, 40_073, 0n), id);
        const finisher = peer(h2, 40_074, 5n);
        await udp.announce(finisher, id);
        await udp.announce(again(finisher, 'completed', { left: 0n }), id);
        expect(await udp.scrape([unknown, h2, h1], id)).toEqual([
          { complete: 0, incomplete: 0, downloaded: 0 },
          { complete: 2, incomplete: 0, downloaded: 1 },
          { complete: 0, incomplete: 2, downloaded: 0 },
        ]);
      });
    },
  },
  {
    name: 'stopped removes the peer: no peers in its answer, gone from counts and peer lists',
    async run({ replicas: [a] }) {
      const h = randomInfoHash();
      const url = a.announceUrl('http');
      const seeder = peer(h, 40_081, 0n);
      const leecher = peer(h, 40_082, 5n);
      await httpAnnounce(url, seeder);
      await httpAnnounce(url, leecher);
      const stopped = await httpAnnounce(url, again(leecher, 'stopped'));
      expect(stopped).toMatchObject({ seeders: 1, leechers: 0, peers: [] });
      expect(await httpScrape(a.scrapeUrl(), [h])).toEqual([
        { complete: 1, incomplete: 0, downloaded: 0 },
      ]);
      const newcomer = peer(h, 40_083, 5n);
      expect(await httpAnnounce(url, newcomer)).toMatchObject({
        seeders: 1,
        leechers: 1,
        peers: ['127.0.0.1:40081'],
      });
      await withUdp(a, async (udp) => {
        const id = await udp.connect();
        expect(await udp.announce(again(seeder, 'stopped'), id)).toMatchObject({
          seeders: 0,
          leechers: 1,
          peers: [],
        });
        expect((await udp.announce(again(newcomer, 'none'), id)).peers).toEqual([]);
      });
    },
  },
  {
    name: 'completed counts one download once; announcing completed again does not count twice',
    async run({ replicas: [a] }) {
      const h = randomInfoHash();
      const url = a.announceUrl('http');
      const first = peer(h, 40_091, 5n);
      await httpAnnounce(url, first);
      const done = await httpAnnounce(url, again(first, 'completed', { left: 0n }));
      expect(done).toMatchObject({ seeders: 1, leechers: 0 });
      await httpAnnounce(url, again(first, 'completed', { left: 0n }));
      await httpAnnounce(url, again(first, 'none', { left: 0n }));
      expect(await httpScrape(a.scrapeUrl(), [h])).toEqual([
        { complete: 1, incomplete: 0, downloaded: 1 },
      ]);
      await withUdp(a, async (udp) => {
        const id = await udp.connect();
        const second = peer(h, 40_092, 5n);
        await udp.announce(second, id);
        await udp.announce(again(second, 'completed', { left: 0n }), id);
        await udp.announce(again(second, 'completed', { left: 0n }), id);
        expect(await udp.scrape([h], id)).toEqual([{ complete: 2, incomplete: 0, downloaded: 2 }]);
      });
    },
  },
  {
    name: 'UDP connect, announce and scrape: BEP 15 answers echo the transaction id',
    async run({ replicas: [a] }) {
      await withUdp(a, async (udp) => {
        const tid = udp.transactionId();
        const connected = await udp.exchange(connectPacket(tid), tid);
        expect(connected?.action).toBe(UDP_ACTION.connect);
        expect(connected?.packet).toHaveLength(16);
        const id = Buffer.from(connected!.packet.subarray(8, 16));
        const h = randomInfoHash();
        const atid = udp.transactionId();
        const announced = await udp.exchange(announcePacket(id, atid, peer(h, 40_101, 0n)), atid);
        expect(announced?.action).toBe(UDP_ACTION.announce);
        // interval, leechers, seeders, then no peers: the announcer alone.
        expect(announced?.packet).toHaveLength(20);
        expect(announced!.packet.readUInt32BE(8)).toBeGreaterThan(0);
        expect(announced!.packet.readUInt32BE(12)).toBe(0);
        expect(announced!.packet.readUInt32BE(16)).toBe(1);
        const stid = udp.transactionId();
        const scraped = await udp.exchange(scrapePacket(id, stid, [h]), stid);
        expect(scraped?.action).toBe(UDP_ACTION.scrape);
        expect(scraped?.packet).toHaveLength(20);
        expect(udp.unmatched).toEqual([]);
      });
    },
  },
  {
    name: 'a UDP connection id from replica A is accepted by replica B',
    async run({ replicas: [a, b] }) {
      const id = await withUdp(a, (udp) => udp.connect());
      const h = randomInfoHash();
      await withUdp(b, async (udp) => {
        expect(await udp.announce(peer(h, 40_111, 0n), id)).toMatchObject({
          seeders: 1,
          leechers: 0,
          peers: [],
        });
        expect(await udp.scrape([h], id)).toEqual([{ complete: 1, incomplete: 0, downloaded: 0 }]);
      });
    },
  },
  {
    name: 'a bad UDP connection id is refused with an error action, then valid ones are served',
    async run({ replicas: [a] }) {
      await withUdp(a, async (udp) => {
        const forged = randomBytes(8);
        const h = randomInfoHash();
        const atid = udp.transactionId();
        const refused = await udp.exchange(announcePacket(forged, atid, peer(h, 40_121, 0n)), atid);
        expect(refused?.action).toBe(UDP_ACTION.error);
        expect(codeOf(refused!.packet.subarray(8).toString('utf8'))).toBe(
          'PROTO_ERR_BAD_CONNECTION_ID',
        );
        const stid = udp.transactionId();
        const forgedScrape = scrapePacket(forged, stid, [h]);
        const scrapeRefused = await udp.exchange(forgedScrape, stid);
        expect(scrapeRefused?.action).toBe(UDP_ACTION.error);
        // No larger than what the unproven sender sent (docs/limits.md "UDP answers").
        expect(scrapeRefused!.packet.length).toBeLessThanOrEqual(forgedScrape.length);
        expect(await udp.announce(peer(h, 40_122, 0n))).toMatchObject({ seeders: 1 });
      });
    },
  },
  {
    name: 'peers announced on replica A are returned by replica B',
    needs: ['sharedSwarm'],
    async run({ replicas: [a, b] }) {
      const h = randomInfoHash();
      await httpAnnounce(a.announceUrl('http'), peer(h, 40_131, 0n));
      await withUdp(a, (udp) => udp.announce(peer(h, 40_132, 0n)));
      const viaB = await httpAnnounce(b.announceUrl('http'), peer(h, 40_133, 5n));
      expect(viaB.seeders).toBe(2);
      expect(viaB.peers.sort()).toEqual(['127.0.0.1:40131', '127.0.0.1:40132']);
      await withUdp(b, async (udp) => {
        const reply = await udp.announce(peer(h, 40_134, 5n));
        expect(reply).toMatchObject({ seeders: 2, leechers: 2 });
        expect(reply.peers).toHaveLength(3);
      });
      expect(await httpScrape(b.scrapeUrl(), [h])).toEqual([
        { complete: 2, incomplete: 2, downloaded: 0 },
      ]);
    },
  },
  {
    name: 'IPv6 over HTTP: IPv6 peers in `peers6`, `peers` present and empty',
    needs: ['ipv6'],
    async run(d) {
      const h = randomInfoHash();
      const url = v6Of(d).announceUrl('http');
      await httpAnnounce(url, peer(h, 40_141, 0n));
      const dict = answer(await httpAnnounceDict(url, peer(h, 40_142, 5n)));
      expect(bytes(dict, 'peers')).toHaveLength(0);
      expect(decodeCompactPeers6(bytes(dict, 'peers6'))).toEqual(['[::1]:40141']);
      expect(int(dict, 'complete')).toBe(1);
      expect(int(dict, 'incomplete')).toBe(1);
    },
  },
  {
    name: 'IPv6 over UDP: 18-byte peers (16-byte address, port)',
    needs: ['ipv6'],
    async run(d) {
      const h = randomInfoHash();
      await withUdp(v6Of(d), async (udp) => {
        const id = await udp.connect();
        await udp.announce(peer(h, 40_151, 0n), id);
        await udp.announce(peer(h, 40_152, 0n), id);
        const tid = udp.transactionId();
        const reply = await udp.exchange(announcePacket(id, tid, peer(h, 40_153, 5n)), tid);
        expect(reply?.action).toBe(UDP_ACTION.announce);
        expect(reply?.packet).toHaveLength(20 + 2 * 18);
        expect(decodeCompactPeers6(reply!.packet.subarray(20)).sort()).toEqual([
          '[::1]:40151',
          '[::1]:40152',
        ]);
      });
    },
  },
  {
    name: 'IPv4 and IPv6 peers of one swarm: counted together, answered apart',
    needs: ['sharedSwarm', 'ipv6'],
    async run(d) {
      const [a] = d.replicas;
      const ipv6 = v6Of(d);
      const h = randomInfoHash();
      await httpAnnounce(a.announceUrl('http'), peer(h, 40_161, 0n));
      await httpAnnounce(ipv6.announceUrl('http'), peer(h, 40_162, 0n));
      const v4 = await httpAnnounce(a.announceUrl('http'), peer(h, 40_163, 5n));
      expect(v4).toMatchObject({ seeders: 2, leechers: 1, peers: ['127.0.0.1:40161'], peers6: [] });
      const v6 = await httpAnnounce(ipv6.announceUrl('http'), peer(h, 40_164, 5n));
      expect(v6).toMatchObject({ seeders: 2, leechers: 2, peers: [], peers6: ['[::1]:40162'] });
      await withUdp(a, async (udp) => {
        const reply = await udp.announce(peer(h, 40_165, 5n));
        expect(reply).toMatchObject({ seeders: 2, leechers: 3 });
        // 4-byte families only: the IPv4 seeder and leecher, none of the IPv6 peers.
        expect(reply.peers.sort()).toEqual(['127.0.0.1:40161', '127.0.0.1:40163']);
      });
      await withUdp(ipv6, async (udp) => {
        const reply = await udp.announce(peer(h, 40_166, 0n));
        expect(reply).toMatchObject({ seeders: 3, leechers: 3 });
        // A seeder gets leechers only, and over IPv6 only the IPv6 ones.
        expect(reply.peers).toEqual(['[::1]:40164']);
      });
    },
  },
  {
    name: 'malformed UDP packets get coded error actions; the socket keeps answering',
    async run({ replicas: [a] }) {
      await withUdp(a, async (udp) => {
        const id = await udp.connect();
        const h = randomInfoHash();
        const refusal = async (packet: Buffer, tid: number): Promise<string | undefined> => {
          const reply = await udp.exchange(packet, tid);
          expect(reply?.action, `error action for a ${packet.length}-byte packet`).toBe(
            UDP_ACTION.error,
          );
          return codeOf(reply!.packet.subarray(8).toString('utf8'));
        };
        let tid = udp.transactionId();
        expect(
          await refusal(announcePacket(id, tid, peer(h, 40_171, 0n)).subarray(0, 50), tid),
        ).toBe('PROTO_ERR_SHORT_PACKET');
        tid = udp.transactionId();
        const unknownAction = Buffer.from(announcePacket(id, tid, peer(h, 40_171, 0n)));
        unknownAction.writeUInt32BE(9, 8);
        expect(await refusal(unknownAction, tid)).toBe('PROTO_ERR_BAD_ACTION');
        tid = udp.transactionId();
        const cutHash = scrapePacket(id, tid, [h, h]).subarray(0, 16 + 25);
        expect(await refusal(cutHash, tid)).toBe('PROTO_ERR_BAD_PACKET_LENGTH');
        tid = udp.transactionId();
        const noProtocolId = connectPacket(tid);
        noProtocolId.writeBigUInt64BE(0x1234n, 0);
        // Its sender has proven no address, so the error is cut to the
        // packet's size and loses its code (docs/limits.md "UDP answers").
        const badConnect = await udp.exchange(noProtocolId, tid);
        expect(badConnect?.action).toBe(UDP_ACTION.error);
        expect(badConnect!.packet.length).toBeLessThanOrEqual(noProtocolId.length);
        // Too short to carry a transaction id: nothing to answer, nothing must break.
        for (const junk of [Buffer.alloc(0), randomBytes(3), randomBytes(15)]) udp.send(junk);
        expect(await udp.announce(peer(h, 40_172, 0n), id)).toMatchObject({ seeders: 1 });
        expect(await udp.scrape([h], id)).toEqual([{ complete: 1, incomplete: 0, downloaded: 0 }]);
      });
      expect(a.alive()).toBe(true);
    },
  },
  {
    name: 'bad HTTP queries get coded failure reasons; the gateway keeps answering',
    async run({ replicas: [a] }) {
      const h = randomInfoHash();
      const good = peer(h, 40_181, 0n);
      const base = `${a.announceUrl('http')}?peer_id=${percentEncodeBytes(good.peerId)}&uploaded=0&downloaded=0&left=0`;
      const hash = `info_hash=${percentEncodeBytes(h)}`;
      expect(await failureCode(`${base}&port=1&info_hash=%01%02%03`)).toBe(
        'PROTO_ERR_BAD_INFO_HASH',
      );
      expect(await failureCode(`${base}&${hash}`)).toBe('PROTO_ERR_MISSING_PARAM');
      expect(await failureCode(`${base}&${hash}&port=70000`)).toBe('PROTO_ERR_BAD_PORT');
      expect(await failureCode(`${base}&${hash}&port=1&event=bogus`)).toBe('PROTO_ERR_BAD_EVENT');
      expect(await failureCode(`${base}&${hash}&port=1&numwant=%zz`)).toBe(
        'PROTO_ERR_BAD_ENCODING',
      );
      expect(await failureCode(`${a.scrapeUrl()}`)).toBe('PROTO_ERR_NO_HASHES');
      expect(await httpAnnounce(a.announceUrl('http'), good)).toMatchObject({
        seeders: 1,
        peers: [],
      });
      expect(a.alive()).toBe(true);
    },
  },
];

// --- requirements ---------------------------------------------------------------

async function loneSeederCount(announceOn: TrackerEndpoint, scrapeOn: TrackerEndpoint) {
  const h = randomInfoHash();
  await httpAnnounce(announceOn.announceUrl('http'), peer(h, 40_191, 0n));
  return (await httpScrape(scrapeOn.scrapeUrl(), [h]))[0];
}

export const REQUIREMENTS: Readonly<Record<Requirement, RequirementCheck>> = {
  sharedSwarm: {
    holds: (spec) => spec.sharedSwarm,
    reason: 'each replica keeps its own in-process store, so replicas share no swarm',
    async premise({ replicas: [a, b], ipv6 }) {
      expect(await loneSeederCount(a, a)).toMatchObject({ complete: 1 });
      expect(await loneSeederCount(a, b)).toMatchObject({ complete: 0 });
      if (ipv6 !== undefined) expect(await loneSeederCount(a, ipv6)).toMatchObject({ complete: 0 });
    },
  },
  ipv6: {
    holds: (_spec, env) => env.ipv6Loopback,
    reason: 'no IPv6 loopback ([::1]) on this machine',
    async premise() {
      expect(await ipv6LoopbackAvailable()).toBe(false);
    },
  },
};

/** Whether a UDP socket can bind [::1] here (containers without IPv6 cannot). */
export function ipv6LoopbackAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp6');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(0, '::1', () => socket.close(() => resolve(true)));
  });
}
