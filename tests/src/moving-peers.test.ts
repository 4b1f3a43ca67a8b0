// Peers that move (docs/decisions.md "Peers that move"), through real HTTP and
// UDP sockets against the gateway on each store: a client that re-announces
// with the same peer_id and key from a new address (127.0.0.2 is another
// client address on Linux loopback) or port replaces its entry; without a
// key, or with another key, nothing moves. On the stores the replicas share,
// the client moves from one gateway replica to the other.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import {
  httpAnnounce,
  httpScrape,
  randomInfoHash,
  randomPeerId,
  UdpTrackerClient,
  type AnnounceParams,
} from '@shoal/testing/tracker-client';
import { describeOnEveryStore } from './harness/topologies.ts';

const MOVED_FROM = { localAddress: '127.0.0.2' };

describeOnEveryStore('peers that move', {}, ({ first, second }) => {
  it('over HTTP, the same peer_id and key from a new address and port replace the entry; stopped from there removes it', async () => {
    const infoHash = randomInfoHash();
    const seeder: AnnounceParams = { infoHash, peerId: randomPeerId(), port: 60_001, left: 0n };
    const mover = { infoHash, peerId: randomPeerId(), left: 100n, key: 0xc0ffee };
    await httpAnnounce(first().announceUrl('http'), seeder);
    const before = await httpAnnounce(first().announceUrl('http'), {
      ...mover,
      port: 60_002,
      event: 'started',
    });
    expect(before).toMatchObject({ seeders: 1, leechers: 1, peers: ['127.0.0.1:60001'] });
    const moved = await httpAnnounce(
      second().announceUrl('http'),
      { ...mover, port: 60_003 },
      MOVED_FROM,
    );
    expect(moved).toMatchObject({ seeders: 1, leechers: 1, peers: ['127.0.0.1:60001'] });
    for (let i = 0; i < 3; i++) {
      const seen = await httpAnnounce(first().announceUrl('http'), seeder);
      expect(seen).toMatchObject({ seeders: 1, leechers: 1, peers: ['127.0.0.2:60003'] });
    }
    expect(await httpScrape(first().scrapeUrl(), [infoHash])).toEqual([
      { complete: 1, incomplete: 1, downloaded: 0 },
    ]);
    const stopped = await httpAnnounce(
      second().announceUrl('http'),
      { ...mover, port: 60_003, event: 'stopped' },
      MOVED_FROM,
    );
    expect(stopped).toMatchObject({ seeders: 1, leechers: 0, peers: [] });
    expect(await httpAnnounce(first().announceUrl('http'), seeder)).toMatchObject({
      seeders: 1,
      leechers: 0,
      peers: [],
    });
  });

  it('over UDP, the key field moves a client; no key or another key moves nothing', async () => {
    const infoHash = randomInfoHash();
    const home = await UdpTrackerClient.open(first().udpPort, '127.0.0.1');
    const away = await UdpTrackerClient.open(second().udpPort, '127.0.0.1', '127.0.0.2');
    try {
      const mover = { infoHash, peerId: randomPeerId(), left: 100n, key: 0x1234 };
      await home.announce({ ...mover, port: 61_001, event: 'started' });
      expect(await away.announce({ ...mover, port: 61_002 })).toMatchObject({
        leechers: 1,
        peers: [],
      });
      const keyless = { infoHash, peerId: randomPeerId(), left: 100n };
      await home.announce({ ...keyless, port: 61_003 });
      expect(await away.announce({ ...keyless, port: 61_004 })).toMatchObject({ leechers: 3 });
      const rekeyed = { infoHash, peerId: randomPeerId(), left: 100n };
      await home.announce({ ...rekeyed, port: 61_005, key: 5 });
      expect(await away.announce({ ...rekeyed, port: 61_006, key: 6 })).toMatchObject({
        leechers: 5,
      });
      const seeder = await home.announce({
        infoHash,
        peerId: randomPeerId(),
        port: 61_007,
        left: 0n,
        numWant: 50,
      });
      expect(seeder.peers.sort()).toEqual(
        [
          '127.0.0.2:61002',
          '127.0.0.1:61003',
          '127.0.0.2:61004',
          '127.0.0.1:61005',
          '127.0.0.2:61006',
        ].sort(),
      );
      expect(await home.scrape([infoHash])).toEqual([
        { complete: 1, incomplete: 5, downloaded: 0 },
      ]);
    } finally {
      await home.close();
      await away.close();
    }
  });
});

describe('peers that move, turned off', () => {
  let gateway: GatewayProcess;
  beforeAll(async () => {
    gateway = await startGateway({ STORAGE_DRIVER: 'memory', MOVE_PEERS_BY_KEY: 'false' });
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  it('with MOVE_PEERS_BY_KEY=false the same peer_id and key from a new address is a second peer', async () => {
    const infoHash = randomInfoHash();
    const mover = { infoHash, peerId: randomPeerId(), left: 100n, key: 0xc0ffee };
    await httpAnnounce(gateway.announceUrl('http'), { ...mover, port: 62_001 });
    const moved = await httpAnnounce(
      gateway.announceUrl('http'),
      { ...mover, port: 62_002 },
      MOVED_FROM,
    );
    expect(moved).toMatchObject({ leechers: 2, peers: ['127.0.0.1:62001'] });
  });
});
