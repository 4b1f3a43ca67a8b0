// One gateway on '::' serves IPv4 and IPv6 clients (docs/decisions.md "Tracker semantics"): a
// swarm counts both families, but every answer carries peers of the asker's
// family only: UDP one family per packet [torrust#1366], HTTP `peers` for
// IPv4 (always present [aquatic#82]) and `peers6` for IPv6 (BEP 7).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import {
  httpAnnounce,
  randomInfoHash,
  randomPeerId,
  UdpTrackerClient,
} from '@shoal/testing/tracker-client';

let gateway: GatewayProcess;

/** A new peer of swarm `infoHash` starting on `port` with `left` bytes to go (0: a seeder). */
const peerOf = (infoHash: Buffer) => (port: number, left: bigint) => ({
  infoHash,
  peerId: randomPeerId(),
  port,
  left,
  event: 'started' as const,
});

beforeAll(async () => {
  gateway = await startGateway({ HOST: '::', STORAGE_DRIVER: 'memory' });
});

afterAll(async () => {
  await gateway?.stop();
});

describe('a dual-stack gateway', () => {
  it('over UDP, counts both families and answers each client with peers of its own family', async () => {
    const v4 = await UdpTrackerClient.open(gateway.udpPort, '127.0.0.1');
    const v6 = await UdpTrackerClient.open(gateway.udpPort, '::1');
    try {
      const infoHash = randomInfoHash();
      const peer = peerOf(infoHash);
      await v4.announce(peer(51_001, 0n));
      await v6.announce(peer(51_002, 0n));
      const leecher4 = await v4.announce(peer(51_003, 10n));
      expect(leecher4).toMatchObject({ seeders: 2, leechers: 1, peers: ['127.0.0.1:51001'] });
      const leecher6 = await v6.announce(peer(51_004, 10n));
      expect(leecher6.seeders).toBe(2);
      expect(leecher6.leechers).toBe(2);
      expect(leecher6.peers.sort()).toEqual(['[::1]:51002']);
      expect(await v6.scrape([infoHash])).toEqual([{ complete: 2, incomplete: 2, downloaded: 0 }]);
    } finally {
      await v4.close();
      await v6.close();
    }
  });

  it('over HTTP, sends IPv4 peers in `peers` and IPv6 peers in `peers6`, with `peers` always present', async () => {
    const url4 = `http://127.0.0.1:${gateway.httpPort}/announce`;
    const url6 = `http://[::1]:${gateway.httpPort}/announce`;
    const peer = peerOf(randomInfoHash());
    await httpAnnounce(url4, peer(52_001, 0n));
    await httpAnnounce(url6, peer(52_002, 0n));
    const leecher4 = await httpAnnounce(url4, peer(52_003, 10n));
    expect(leecher4).toMatchObject({
      seeders: 2,
      leechers: 1,
      peers: ['127.0.0.1:52001'],
      peers6: [],
    });
    // httpAnnounce fails unless `peers` is there: an IPv6-only answer still carries it, empty.
    const leecher6 = await httpAnnounce(url6, peer(52_004, 10n));
    expect(leecher6).toMatchObject({
      seeders: 2,
      leechers: 2,
      peers: [],
      peers6: ['[::1]:52002'],
    });
  });
});
