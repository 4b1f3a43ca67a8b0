// Interop with the most used JavaScript tracker client (webtorrent's
// bittorrent-tracker): it announces and scrapes against Shoal over HTTP and
// UDP unchanged, and sees the swarm docs/decisions.md "Tracker semantics" pins down: counts that
// include the announcer, seeders given leechers only, nobody given itself,
// numwant honoured.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type ClientClass from 'bittorrent-tracker/client';
import {
  announceWith,
  destroyClient,
  loadTrackerClient,
  scrapeWith,
} from './harness/bittorrent-tracker.ts';
import { startGateway, type GatewayProcess, type TrackerKind } from '@shoal/testing/launcher';

type Client = InstanceType<typeof ClientClass>;

let Tracker: typeof ClientClass;
let gateway: GatewayProcess;
const clients: Client[] = [];
// Peers are never dialled: the port is only what the tracker hands out.
let nextPort = 40_000;

beforeAll(async () => {
  Tracker = await loadTrackerClient();
  gateway = await startGateway({ STORAGE_DRIVER: 'memory' });
});

afterAll(async () => {
  await Promise.all(clients.map(destroyClient));
  await gateway?.stop();
});

interface Peer {
  client: Client;
  addr: string;
}

function newPeer(kind: TrackerKind, infoHash: string): Peer {
  const port = nextPort++;
  const client = new Tracker({
    infoHash,
    peerId: randomBytes(20),
    announce: gateway.announceUrl(kind),
    port,
  });
  clients.push(client);
  return { client, addr: `127.0.0.1:${port}` };
}

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

describe.each(['http', 'udp'] as const)('bittorrent-tracker client over %s', (kind) => {
  it('sees counts that include itself and gets the other peers, never itself', async () => {
    const infoHash = randomBytes(20).toString('hex');
    const seeders = [newPeer(kind, infoHash), newPeer(kind, infoHash), newPeer(kind, infoHash)];
    const leechers = [
      newPeer(kind, infoHash),
      newPeer(kind, infoHash),
      newPeer(kind, infoHash),
      newPeer(kind, infoHash),
    ];
    const order: { peer: Peer; seeder: boolean }[] = [
      { peer: seeders[0]!, seeder: true },
      { peer: leechers[0]!, seeder: false },
      { peer: seeders[1]!, seeder: true },
      { peer: leechers[1]!, seeder: false },
      { peer: seeders[2]!, seeder: true },
      { peer: leechers[2]!, seeder: false },
      { peer: leechers[3]!, seeder: false },
    ];
    const inSwarm: { addr: string; seeder: boolean }[] = [];
    for (const { peer, seeder } of order) {
      const before = [...inSwarm];
      inSwarm.push({ addr: peer.addr, seeder });
      const got = await announceWith(peer.client, 'start', { left: seeder ? 0 : 1_000_000 });
      expect(got.update, `counts after ${peer.addr} joined`).toMatchObject({
        complete: inSwarm.filter((p) => p.seeder).length,
        incomplete: inSwarm.filter((p) => !p.seeder).length,
      });
      // Default numwant (50) exceeds the swarm: every eligible peer comes back.
      const eligible = before.filter((p) => !seeder || !p.seeder).map((p) => p.addr);
      expect(
        sorted(got.peers),
        `peers given to ${seeder ? 'seeder' : 'leecher'} ${peer.addr}`,
      ).toEqual(sorted(eligible));
      expect(got.peers).not.toContain(peer.addr);
    }

    // A re-announce changes no count and now sees everyone who came later.
    const again = await announceWith(seeders[0]!.client, 'update', { left: 0 });
    expect(again.update).toMatchObject({ complete: 3, incomplete: 4 });
    expect(sorted(again.peers)).toEqual(sorted(leechers.map((l) => l.addr)));

    const lastLeecher = await announceWith(leechers[0]!.client, 'update', { left: 1_000_000 });
    expect(lastLeecher.update).toMatchObject({ complete: 3, incomplete: 4 });
    expect(sorted(lastLeecher.peers)).toEqual(
      sorted([...seeders, ...leechers.slice(1)].map((p) => p.addr)),
    );

    const scrape = await scrapeWith(leechers[3]!.client);
    expect(scrape).toMatchObject({ complete: 3, incomplete: 4, downloaded: 0 });
  });

  it('counts a completed download once and forgets a stopped peer', async () => {
    const infoHash = randomBytes(20).toString('hex');
    const seeder = newPeer(kind, infoHash);
    const a = newPeer(kind, infoHash);
    const b = newPeer(kind, infoHash);
    await announceWith(seeder.client, 'start', { left: 0 });
    await announceWith(a.client, 'start', { left: 1_000_000 });
    await announceWith(b.client, 'start', { left: 1_000_000 });

    const completed = await announceWith(a.client, 'complete', { left: 0 });
    expect(completed.update).toMatchObject({ complete: 2, incomplete: 1 });
    // Now a seeder: it is given the one leecher only.
    expect(completed.peers).toEqual([b.addr]);
    // Re-announcing as a seeder does not count the download again (docs/decisions.md "Sources": MoChi's INCR bug).
    await announceWith(a.client, 'update', { left: 0 });
    expect(await scrapeWith(seeder.client)).toMatchObject({
      complete: 2,
      incomplete: 1,
      downloaded: 1,
    });

    const stopped = await announceWith(b.client, 'stop', { left: 1_000_000 });
    expect(stopped.peers).toEqual([]);
    expect(await scrapeWith(seeder.client)).toMatchObject({
      complete: 2,
      incomplete: 0,
      downloaded: 1,
    });
    const seederView = await announceWith(seeder.client, 'update', { left: 0 });
    expect(seederView.peers).toEqual([]);
  });

  it('honours numwant: 3 of 10 peers when 3 are asked for', async () => {
    const infoHash = randomBytes(20).toString('hex');
    const others = Array.from({ length: 10 }, () => newPeer(kind, infoHash));
    for (const p of others) await announceWith(p.client, 'start', { left: 1_000_000, numwant: 3 });
    const asker = newPeer(kind, infoHash);
    const got = await announceWith(asker.client, 'start', { left: 1_000_000, numwant: 3 });
    expect(got.update).toMatchObject({ complete: 0, incomplete: 11 });
    expect(got.peers).toHaveLength(3);
    expect(new Set(got.peers).size).toBe(3);
    const known = new Set(others.map((p) => p.addr));
    for (const addr of got.peers)
      expect(known.has(addr), `${addr} is one of the swarm's peers`).toBe(true);
  });
});

describe('bittorrent-tracker client over http: BEP 24', () => {
  it('gets the address the tracker saw it at as `external ip` beside its peers', async () => {
    const infoHash = randomBytes(20).toString('hex');
    const seeder = newPeer('http', infoHash);
    const leecher = newPeer('http', infoHash);
    await announceWith(seeder.client, 'start', { left: 0 });
    const got = await announceWith(leecher.client, 'start', { left: 1_000_000 });
    expect(Buffer.from(got.update['external ip'] as Uint8Array)).toEqual(
      Buffer.from([127, 0, 0, 1]),
    );
    expect(got.peers).toEqual([seeder.addr]);
  });
});
