// A gateway with two worker threads on the memory store (docs/workers.md
// "Stores"): the main thread makes one shared-memory store and both workers
// attach to it, through real sockets. A peer announced through one worker is
// returned through the other; counts stay exact while both write; scrape,
// full scrape, top swarms, stats, the swarm gauges and shoalctl agree from
// every worker and from the admin port; approval data set on the admin port
// reaches both workers; a worker killed while it writes is replaced, its
// peers stay and every shard answers; SIGTERM drains both; and the main
// thread alone sweeps expired peers, each once. Which worker answered is read
// from shoal_gateway_worker_requests_total{worker} (harness/workers.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '@shoal/cli';
import { sharedStoreMovesPeers } from '@shoal/announce-gateway';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import { waitFor } from '@shoal/testing/processes';
import {
  decodeBencodeDict,
  httpScrape,
  randomInfoHash,
  type UdpTrackerClient,
} from '@shoal/testing/tracker-client';
import { MAX_CLIENTS, peer, sample, workersProbe } from './harness/workers.ts';

const TOKEN = 'workers-memory-admin-token-0123456789';
const WORKERS = 2;
/** Peers of the sweep gateway: 6 per swarm, in 5 swarms, through both workers. */
const SWEPT_SWARMS = 5;
const SWEPT_PER_SWARM = 6;

let gateway: GatewayProcess;
let sweeping: GatewayProcess;
const probe = workersProbe(() => gateway, WORKERS, TOKEN);
const sweepProbe = workersProbe(() => sweeping, WORKERS, TOKEN);
const { metricsText, perWorker, workerOf, udpClient, udpClientPerWorker, announce, scrape } = probe;

interface Stats {
  torrents: number;
  seeders: { v4: number; v6: number };
  leechers: { v4: number; v6: number };
}

async function adminJson<T>(path: string, method = 'GET'): Promise<T> {
  const res = await probe.admin(path, method);
  expect(res.status, `${method} ${path}`).toBeLessThan(300);
  return (await res.json()) as T;
}

/** The full scrape (docs/full-scrape.md) on a connection of its own: info hash (hex) to counts. */
async function fullScrape(): Promise<Map<string, { complete: number; incomplete: number }>> {
  const dict = decodeBencodeDict(await probe.freshHttpGet('/scrape'));
  const files = dict.files as Record<string, Record<string, unknown>>;
  return new Map(
    Object.entries(files).map(([raw, entry]) => [
      Buffer.from(raw, 'latin1').toString('hex'),
      { complete: Number(entry.complete), incomplete: Number(entry.incomplete) },
    ]),
  );
}

/** shoalctl against the gateway's admin port, as an operator runs it. */
async function shoalctl(args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const out = {
    write: (s: string) => {
      stdout += s;
      return true;
    },
  };
  const code = await run(args, {
    env: { SHOAL_URL: gateway.adminUrl(''), SHOAL_ADMIN_TOKEN: TOKEN },
    stdout: out,
    stderr: out,
  });
  return { code, stdout };
}

function sweepLines(): Array<{ peersRemoved: number; swarmsRemoved: number; worker?: number }> {
  return sweeping.stdout
    .filter((l) => l.includes('"msg":"expired peers removed"'))
    .map((l) => JSON.parse(l) as { peersRemoved: number; swarmsRemoved: number; worker?: number });
}

beforeAll(async () => {
  const common = {
    GATEWAY_WORKERS: String(WORKERS),
    STORAGE_DRIVER: 'memory',
    ADMIN_API_TOKEN: TOKEN,
    STATS_INTERVAL_SECONDS: '1',
    SHUTDOWN_GRACE_SECONDS: '300',
  };
  [gateway, sweeping] = await Promise.all([
    startGateway(
      {
        ...common,
        TORRENT_APPROVAL: 'deny',
        FULL_SCRAPE_ENABLED: 'true',
        FULL_SCRAPE_REFRESH_SECONDS: '1',
        FULL_SCRAPE_PER_MINUTE: '60000',
        FULL_SCRAPE_BURST: '1000',
      },
      { timeoutMs: 180_000 },
    ),
    // The shortest lifetime the config allows, an interval that never grows,
    // and the sweep's debug lines.
    startGateway(
      {
        ...common,
        PEER_LIFETIME_SECONDS: '61',
        ANNOUNCE_INTERVAL_SECONDS: '60',
        ANNOUNCE_INTERVAL_MAX_SECONDS: '60',
        MIN_INTERVAL_SECONDS: '0',
        LOG_LEVEL: 'debug',
        // stats() also removes expired peers: only the sweep may, here.
        STATS_INTERVAL_SECONDS: '86400',
      },
      { timeoutMs: 180_000 },
    ),
  ]);
  // The sweep gateway's peers are announced now, so that they expire while
  // the other tests run; the last test waits for the sweep.
  const byWorker = await sweepProbe.udpClientPerWorker();
  expect(byWorker.size).toBe(WORKERS);
  let port = 45_000;
  for (let s = 0; s < SWEPT_SWARMS; s++) {
    const swarm = randomInfoHash();
    for (let p = 0; p < SWEPT_PER_SWARM; p++)
      await sweepProbe.announce(byWorker.get(p % WORKERS)!, peer(port++, 100n, swarm));
  }
}, 400_000);

afterAll(async () => {
  await probe.closeClients();
  await sweepProbe.closeClients();
  await gateway?.stop();
  await sweeping?.stop();
});

describe('a gateway with two workers on the memory store', () => {
  it('runs both workers on one shared-memory store, and says what it cannot do yet', () => {
    expect(gateway.listening).toMatchObject({ storage: 'shared-memory', workers: WORKERS });
    const warned = gateway.stdout.some((l) => l.includes('"msg":"MOVE_PEERS_BY_KEY: the shared'));
    expect(warned).toBe(!sharedStoreMovesPeers());
  });

  it('returns a peer announced through one worker from the other, over UDP and HTTP', async () => {
    const byWorker = await udpClientPerWorker();
    expect(byWorker.size).toBe(WORKERS);
    const swarm = randomInfoHash();
    await announce(byWorker.get(0)!, peer(41_001, 0n, swarm));
    const reply = await announce(byWorker.get(1)!, peer(41_002, 10n, swarm));
    expect(reply).toEqual({ seeders: 1, leechers: 1, peers: ['127.0.0.1:41001'] });
    const back = await announce(byWorker.get(0)!, peer(41_003, 10n, swarm));
    expect(back.peers.sort()).toEqual(['127.0.0.1:41001', '127.0.0.1:41002']);
    // And over HTTP, on connections the kernel spreads over both workers.
    const seen = new Set<number>();
    for (let i = 0; i < MAX_CLIENTS && seen.size < WORKERS; i++)
      seen.add(
        await workerOf(async () => {
          const http = await probe.freshHttpAnnounce(peer(41_100 + i, 10n, swarm));
          expect(http.complete).toBe(1);
          expect(http.peers).toContain('127.0.0.1:41001');
        }),
      );
    expect(seen.size).toBe(WORKERS);
  }, 240_000);

  it('keeps counts exact while both workers write the same swarms from many sockets', async () => {
    const swarms = [randomInfoHash(), randomInfoHash(), randomInfoHash()];
    const n = 60;
    const pool = await Promise.all(Array.from({ length: n }, () => udpClient()));
    const peers = pool.map((_, i) => peer(42_000 + i, i % 3 === 0 ? 0n : 100n, swarms[i % 3]!));
    const before = await perWorker();
    await Promise.all(pool.map((c, i) => announce(c, peers[i]!)));
    // The leechers of swarm 1 (i % 3 === 1) complete.
    await probe.completeTwice(
      [...pool.keys()].filter((i) => i % 3 === 1).map((i) => [pool[i]!, peers[i]!]),
    );
    const after = await perWorker();
    // Both workers took part (2^-59 that one got none of 60 clients).
    for (let w = 0; w < WORKERS; w++) expect(after[w]!).toBeGreaterThan(before[w]!);
    const expected = [
      { complete: 20, incomplete: 0, downloaded: 0 },
      { complete: 20, incomplete: 0, downloaded: 20 },
      { complete: 0, incomplete: 20, downloaded: 0 },
    ];
    // From each worker over UDP, and over HTTP (BEP 48).
    for (const client of (await udpClientPerWorker()).values())
      expect(await scrape(client, swarms)).toEqual(expected);
    expect(await httpScrape(gateway.scrapeUrl(), swarms)).toEqual(expected);
  }, 240_000);

  it('answers full scrape from every worker, and stats, top swarms, gauges and shoalctl on the admin port, all alike', async () => {
    const swarm = randomInfoHash();
    const client = await udpClient();
    for (let i = 0; i < 7; i++) await announce(client, peer(46_000 + i, i < 4 ? 0n : 9n, swarm));
    const hex = swarm.toString('hex');
    // Each worker keeps its own full-scrape cache (refreshed every second):
    // each must list the swarm with its counts, read from the one store.
    const listedBy = new Set<number>();
    for (let i = 0; i < 4 * MAX_CLIENTS && listedBy.size < WORKERS; i++) {
      let listed: { complete: number; incomplete: number } | undefined;
      const w = await workerOf(async () => (listed = (await fullScrape()).get(hex)));
      if (listed !== undefined) {
        expect(listed).toEqual({ complete: 4, incomplete: 3 });
        listedBy.add(w);
      }
    }
    expect(listedBy.size).toBe(WORKERS);

    const top = await adminJson<{ torrents: Array<{ infoHash: string }> }>(
      '/v1/admin/top?limit=1000',
    );
    expect(top.torrents.find((t) => t.infoHash === hex)).toEqual({
      infoHash: hex,
      seeders: 4,
      leechers: 3,
      downloaded: 0,
    });
    // Nothing writes now: the admin port's stats, every swarm of the full
    // scrape, and the gauges count the same peers.
    const stats = await adminJson<Stats>('/v1/admin/stats');
    await waitFor(
      'a full scrape with every swarm of the stats',
      async () => (await fullScrape()).size === stats.torrents,
      60_000,
      500,
    );
    const all = [...(await fullScrape()).values()];
    expect(all.reduce((sum, e) => sum + e.complete, 0)).toBe(stats.seeders.v4 + stats.seeders.v6);
    expect(all.reduce((sum, e) => sum + e.incomplete, 0)).toBe(
      stats.leechers.v4 + stats.leechers.v6,
    );
    await waitFor(
      'the swarm gauges to count what the stats count',
      async () => sample(await metricsText(), 'shoal_swarm_torrents') === stats.torrents,
      60_000,
      500,
    );
    // The doctor reads the config, not the store: it says what a memory store keeps.
    const doctor = await adminJson<{ checks: Array<{ name: string }> }>('/v1/admin/doctor');
    expect(doctor.checks.length).toBeGreaterThan(0);
    const ctlStats = await shoalctl(['--json', 'stats']);
    expect(ctlStats.code).toBe(0);
    expect(JSON.parse(ctlStats.stdout)).toMatchObject({ torrents: stats.torrents });
    const ctlTop = await shoalctl(['--json', 'top', '-n', '1000']);
    expect(ctlTop.code).toBe(0);
    expect(ctlTop.stdout).toContain(hex);
  }, 300_000);

  it('refuses a torrent denied on the admin port through every worker, and serves it again once lifted', async () => {
    const byWorker = await udpClientPerWorker();
    const swarm = randomInfoHash();
    const hex = swarm.toString('hex');
    // The admin API answers once the change is stored; each worker then
    // reloads its snapshot (docs/workers.md "What each worker keeps for
    // itself"), so an announce sent meanwhile may still be served, and its
    // peer joins the swarm. Those are counted, each on a port of its own.
    let servedBeforeRefused = 0;
    let port = 47_000;
    const refused = async (client: UdpTrackerClient): Promise<boolean> => {
      try {
        await announce(client, peer(port++, 5n, swarm));
        return false;
      } catch (err) {
        if (!String(err).includes('action 3')) throw err;
        return true;
      }
    };
    expect(
      await shoalctl(['torrents', 'deny', 'add', hex, '--note', 'workers test']),
    ).toMatchObject({ code: 0 });
    for (const [w, client] of byWorker)
      await waitFor(
        `worker ${w} to refuse the denied torrent`,
        async () => {
          if (await refused(client)) return true;
          servedBeforeRefused++;
          return false;
        },
        60_000,
        250,
      );
    expect((await probe.admin(`/v1/admin/approval/torrents/deny/${hex}`, 'DELETE')).status).toBe(
      200,
    );
    for (const [w, client] of byWorker)
      await waitFor(
        `worker ${w} to serve the torrent again`,
        async () => !(await refused(client)),
        60_000,
        250,
      );
    // One peer per worker served after the lift, and whatever was served before the deny reached a worker.
    expect((await scrape(byWorker.get(0)!, [swarm]))[0]).toMatchObject({
      incomplete: WORKERS + servedBeforeRefused,
    });
  }, 240_000);

  it('replaces a worker killed while it writes: its peers stay, every shard answers, the counts add up', async () => {
    const byWorker = await udpClientPerWorker();
    const victim = byWorker.get(1)!;
    const survivor = byWorker.get(0)!;
    // What the victim wrote and was answered for: 64 swarms, 3 peers each.
    const written = Array.from({ length: 64 }, () => randomInfoHash());
    let port = 48_000;
    for (const swarm of written)
      for (let p = 0; p < 3; p++) await announce(victim, peer(port++, p === 0 ? 0n : 50n, swarm));
    // Then it writes without pause, over sockets it serves, to 1024 swarms
    // (every shard, all but surely), and is terminated in the middle of it.
    const flood = Array.from({ length: 1024 }, () => randomInfoHash());
    const floodClients = [victim];
    for (let i = 0; i < MAX_CLIENTS && floodClients.length < 6; i++) {
      const client = await udpClient();
      if ((await workerOf(() => probe.connect(client))) === 1) floodClients.push(client);
    }
    const list = async (): Promise<Array<{ threadId?: number; state: string; restarts: number }>> =>
      (
        await adminJson<{ workers: Array<{ threadId?: number; state: string; restarts: number }> }>(
          '/v1/admin/workers',
        )
      ).workers;
    const oldThread = (await list())[1]?.threadId;
    let stop = false;
    const flooding = floodClients.map(async (client, c) => {
      for (let i = c; i < 100_000 && !stop; i += floodClients.length)
        await announce(
          client,
          peer(10_000 + (i % 50_000), 7n, flood[i % flood.length]!),
          2_000,
        ).catch(() => undefined);
    });
    const served = (await perWorker())[1]!;
    await waitFor(
      'the victim to be answering the flood',
      async () => (await perWorker())[1]! > served + 200,
      120_000,
      100,
    );
    expect((await probe.admin('/v1/admin/workers/1/terminate', 'POST')).status).toBe(202);
    await waitFor(
      'worker 1 to exit',
      async () => (await list())[1]?.threadId !== oldThread,
      60_000,
      200,
    );
    stop = true;
    await Promise.all(flooding);
    await waitFor(
      'the replacement to serve',
      async () => (await list())[1]?.state === 'serving',
      180_000,
      500,
    );
    expect(
      gateway.stdout.some((l) => l.includes('what the exited worker held is free to take over')),
      'the supervisor declared the dead worker gone',
    ).toBe(true);

    // Every peer the victim was answered for is there, read through the survivor.
    for (let i = 0; i < written.length; i += 32) {
      const counts = await scrape(survivor, written.slice(i, i + 32));
      for (const c of counts) expect(c).toEqual({ complete: 1, incomplete: 2, downloaded: 0 });
    }
    // Every swarm of the flood answers (a shard still locked would answer an
    // error), through both workers once the replacement serves.
    for (const client of (await udpClientPerWorker()).values())
      for (let i = 0; i < flood.length; i += 64) await scrape(client, flood.slice(i, i + 64));
    // The repaired shards' counts add up: the stats equal the full scrape's sums.
    await waitFor(
      'the stats and the full scrape to agree',
      async () => {
        const stats = await adminJson<Stats>('/v1/admin/stats');
        const all = [...(await fullScrape()).values()];
        return (
          all.length === stats.torrents &&
          all.reduce((s, e) => s + e.complete + e.incomplete, 0) ===
            stats.seeders.v4 + stats.seeders.v6 + stats.leechers.v4 + stats.leechers.v6
        );
      },
      60_000,
      1_000,
    );
    expect((await list())[1]?.restarts).toBe(1);
  }, 400_000);

  it('sweeps expired peers in the main thread only, each peer once', async () => {
    const total = SWEPT_SWARMS * SWEPT_PER_SWARM;
    // Lifetime 61 s, a sweep every 30 s: gone within about 90 s of their announce.
    await waitFor(
      'the sweep to remove the expired peers',
      () => sweepLines().reduce((s, l) => s + l.peersRemoved, 0) >= total,
      300_000,
      1_000,
    );
    const lines = sweepLines();
    expect(lines.reduce((s, l) => s + l.peersRemoved, 0)).toBe(total);
    expect(lines.reduce((s, l) => s + l.swarmsRemoved, 0)).toBe(SWEPT_SWARMS);
    // Workers log with their index: every sweep line is the main thread's.
    expect(lines.filter((l) => l.worker !== undefined)).toEqual([]);
    const res = await sweepProbe.admin('/v1/admin/stats');
    expect(await res.json()).toMatchObject({ torrents: 0 });
  }, 400_000);

  it('SIGTERM drains every worker, then the process exits 0', async () => {
    const byWorker = await udpClientPerWorker();
    const swarm = randomInfoHash();
    // Announces on both workers while the drain starts: each is answered or
    // dropped as the worker closes, never half done.
    const inFlight = [...byWorker.values()].map((client, w) =>
      announce(client, peer(49_000 + w, 0n, swarm), 30_000).catch(() => undefined),
    );
    expect(await gateway.stop(120_000)).toBe(0);
    await Promise.all(inFlight);
    const drained = gateway.stdout.filter((l) => l.includes('"msg":"worker drained"'));
    expect(drained.map((l) => (JSON.parse(l) as { worker: number }).worker).sort()).toEqual([0, 1]);
  }, 300_000);
});
