// The whole split topology as processes (startLocalTopology):
// two gateways sharing a UDP secret in front of storage-api (Redis Sentinel
// + PostgreSQL). Tests that kill a process run last, the storage-api one
// before the gateway one, since both need the survivors of the previous.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalTopology, type LocalTopology } from '@shoal/testing/topology';
import { expectTransferAcross } from './harness/aria2-transfer.ts';
import { httpAnnounceOutcome, udpAnnounceOutcome } from './harness/policy.ts';
import { HarnessError } from '@shoal/testing/errors';
import { waitFor } from '@shoal/testing/processes';
import {
  httpAnnounce,
  httpScrape,
  randomInfoHash,
  randomPeerId,
  UdpTrackerClient,
  type AnnounceParams,
} from '@shoal/testing/tracker-client';

let topo: LocalTopology;
let workRoot = '';

beforeAll(async () => {
  workRoot = await mkdtemp(join(tmpdir(), 'shoal-topology-test-'));
  topo = await startLocalTopology();
}, 120_000);

afterAll(async () => {
  await topo?.stop();
  if (workRoot !== '') await rm(workRoot, { recursive: true, force: true });
}, 60_000);

function gateway(i: 0 | 1): LocalTopology['gateways'][number] {
  const g = topo.gateways[i];
  if (g === undefined) throw new HarnessError('HARNESS_ERR_FAILED', `no gateway ${i}`);
  return g;
}

function udpPort(g: LocalTopology['gateways'][number]): number {
  return Number(new URL(g.udpAnnounce).port);
}

async function scrapeTotal(scrapeUrl: string, infoHash: Buffer): Promise<number> {
  const [e] = await httpScrape(scrapeUrl, [infoHash]);
  return (e?.complete ?? 0) + (e?.incomplete ?? 0);
}

describe('the split topology as local processes', () => {
  it('accepts on gateway B a UDP connection id issued by gateway A, and counts the announce', async () => {
    const a = gateway(0);
    const b = gateway(1);
    const toA = await UdpTrackerClient.open(udpPort(a));
    const toB = await UdpTrackerClient.open(udpPort(b));
    try {
      const connectionId = await toA.connect();
      const infoHash = randomInfoHash();
      const reply = await toB.announce(
        { infoHash, peerId: randomPeerId(), port: 41_001, left: 0n, event: 'started' },
        connectionId,
      );
      expect(reply).toMatchObject({ seeders: 1, leechers: 0 });
      // The swarm lives in storage-api: A sees the announce made on B.
      const [viaA] = await toA.scrape([infoHash], connectionId);
      expect(viaA).toMatchObject({ complete: 1, incomplete: 0 });
      expect(await httpScrape(a.scrape, [infoHash])).toEqual([
        { complete: 1, incomplete: 0, downloaded: 0 },
      ]);
    } finally {
      await toA.close();
      await toB.close();
    }
  });

  it('lets an aria2 leecher announcing only to B download, byte-identical, from a seeder announcing only to A', async () => {
    await expectTransferAcross(join(workRoot, 'aria2'), gateway(0), gateway(1));
  }, 150_000);

  it('answers "retry later" at once on both gateways while storage-api is down, and recovers by itself when it is back', async () => {
    const gws = [gateway(0), gateway(1)];
    const infoHash = randomInfoHash();
    const before: AnnounceParams[] = [];
    for (let i = 0; i < 6; i++) {
      const p: AnnounceParams = {
        infoHash,
        peerId: randomPeerId(),
        port: 42_000 + i,
        left: i % 2 === 0 ? 0n : 1000n,
        event: 'started',
      };
      await httpAnnounce(gws[i % 2]!.httpAnnounce, p);
      before.push(p);
    }
    expect(await scrapeTotal(gws[1]!.scrape, infoHash)).toBe(6);

    await topo.storageApiProcess.kill();
    const latencies: number[] = [];
    const probe: AnnounceParams = { infoHash, peerId: randomPeerId(), port: 42_100, left: 5n };
    let restartedAt: number;
    try {
      for (let round = 0; round < 5; round++) {
        for (const g of gws) {
          // HTTP: 200 (anything else throws) with a bencoded failure reason carrying the storage code.
          let t0 = performance.now();
          const http = await httpAnnounceOutcome(g.httpAnnounce, probe);
          latencies.push(performance.now() - t0);
          expect(http.ok ? '' : http.reason).toContain('STORE_ERR_UNAVAILABLE');

          // UDP: connect needs no storage; the announce gets an error action.
          const client = await UdpTrackerClient.open(udpPort(g));
          try {
            const conn = await client.connect();
            t0 = performance.now();
            const udp = await udpAnnounceOutcome(client, conn, probe);
            latencies.push(performance.now() - t0);
            expect(udp.ok ? '' : udp.reason).toContain('STORE_ERR_UNAVAILABLE');
          } finally {
            await client.close();
          }
        }
      }
    } finally {
      // Restart even when an expectation failed: the next test needs storage-api.
      restartedAt = performance.now();
      await topo.storageApiProcess.restart();
    }
    const listeningAt = performance.now();
    const maxLatency = Math.max(...latencies);
    console.info(
      `storage-api down: ${latencies.length} retry-later answers, max ${maxLatency.toFixed(1)} ms, ` +
        `median ${[...latencies].sort((x, y) => x - y)[latencies.length >> 1]!.toFixed(1)} ms`,
    );
    expect(maxLatency).toBeLessThan(500);

    // The gateways were not restarted: their storage clients find storage-api again.
    const recovered: number[] = [];
    for (const g of gws) {
      await waitFor(
        `${g.name} to serve announces again`,
        async () => {
          try {
            await httpAnnounce(g.httpAnnounce, { ...probe, peerId: randomPeerId() });
            return true;
          } catch {
            return false;
          }
        },
        20_000,
        100,
      );
      recovered.push(performance.now() - listeningAt);
    }
    console.info(
      `storage-api restarted in ${(listeningAt - restartedAt).toFixed(0)} ms; gateways serving ` +
        `${recovered.map((ms) => `${ms.toFixed(0)} ms`).join(', ')} after it listened`,
    );

    // The peers stored in Redis before the kill are still served.
    const check = await httpAnnounce(gws[1]!.httpAnnounce, {
      infoHash,
      peerId: randomPeerId(),
      port: 42_200,
      left: 1n,
      numWant: 200,
    });
    const ports = new Set(check.peers.map((p) => Number(p.split(':')[1])));
    for (const p of before) expect(ports.has(p.port), `peer on port ${p.port}`).toBe(true);
    expect(check.seeders).toBe(3);
  }, 60_000);

  it('keeps serving through gateway B when gateway A is killed under load, losing no peer announced through A', async () => {
    const gws = [gateway(0), gateway(1)];
    // Small swarms, so one announce with numwant 200 returns all of each.
    const hashes = Array.from({ length: 64 }, () => randomInfoHash());
    interface Sent {
      to: 0 | 1;
      params: AnnounceParams;
      ok: boolean;
      afterKill: boolean;
    }
    const sent: Sent[] = [];
    let killed = false;
    let stop = false;
    const firstPort = 20_000;
    // At most 150 peers a swarm, whatever the machine's speed, so numwant 200 sees them all.
    const lastPort = firstPort + hashes.length * 150;
    let nextPort = firstPort;
    const worker = async (to: 0 | 1): Promise<void> => {
      while (!stop && nextPort < lastPort) {
        const params: AnnounceParams = {
          infoHash: hashes[nextPort % hashes.length]!,
          peerId: randomPeerId(),
          port: nextPort++,
          left: 1000n,
          event: 'started',
          numWant: 0,
        };
        const afterKill = killed;
        let ok = true;
        try {
          await httpAnnounce(gws[to]!.httpAnnounce, params);
        } catch {
          ok = false;
          // A refused connection fails at once: do not spin on the dead gateway.
          await new Promise((r) => setTimeout(r, 20));
        }
        sent.push({ to, params, ok, afterKill: afterKill || killed });
      }
    };
    const workers = [worker(0), worker(0), worker(1), worker(1)];
    await new Promise((r) => setTimeout(r, 1_500));
    const killStart = performance.now();
    killed = true;
    await topo.gatewayProcesses[0]!.kill();
    const killMs = performance.now() - killStart;
    await new Promise((r) => setTimeout(r, 1_500));
    stop = true;
    await Promise.all(workers);

    const onA = sent.filter((s) => s.to === 0);
    const onB = sent.filter((s) => s.to === 1);
    const count = (xs: Sent[], pred: (s: Sent) => boolean): number => xs.filter(pred).length;
    console.info(
      `gateway kill under load (${killMs.toFixed(0)} ms to reap): ` +
        `A ${count(onA, (s) => s.ok)} ok / ${count(onA, (s) => !s.ok)} errors ` +
        `(${count(onA, (s) => !s.ok && !s.afterKill)} before the kill); ` +
        `B ${count(onB, (s) => s.ok)} ok / ${count(onB, (s) => !s.ok)} errors ` +
        `(${count(onB, (s) => s.ok && s.afterKill)} ok after the kill)`,
    );
    expect(topo.gatewayProcesses[0]!.alive()).toBe(false);
    expect(count(onB, (s) => !s.ok)).toBe(0);
    expect(count(onB, (s) => s.ok && s.afterKill)).toBeGreaterThan(0);
    expect(count(onA, (s) => s.ok && !s.afterKill)).toBeGreaterThan(0);
    // Requests sent to A before the kill all succeeded: errors come from the kill only.
    expect(count(onA, (s) => !s.ok && !s.afterKill)).toBe(0);

    // Every announce A acknowledged is in the swarm as B serves it.
    const b = gws[1]!;
    const acked = sent.filter((s) => s.ok);
    const scrape = await httpScrape(b.scrape, hashes);
    for (const [i, h] of hashes.entries()) {
      const ackedHere = acked.filter((s) => s.params.infoHash.equals(h)).length;
      const attemptedHere = sent.filter((s) => s.params.infoHash.equals(h)).length;
      const total = (scrape[i]?.complete ?? 0) + (scrape[i]?.incomplete ?? 0);
      // In-flight announces to A at the kill may or may not have been stored.
      expect(total).toBeGreaterThanOrEqual(ackedHere);
      expect(total).toBeLessThanOrEqual(attemptedHere);
      expect(total).toBeLessThanOrEqual(200);
      const reply = await httpAnnounce(b.httpAnnounce, {
        infoHash: h,
        peerId: randomPeerId(),
        port: 19_999,
        left: 0n,
        numWant: 200,
      });
      const ports = new Set(reply.peers.map((p) => Number(p.split(':')[1])));
      const missing = acked
        .filter((s) => s.to === 0 && s.params.infoHash.equals(h) && !ports.has(s.params.port))
        .map((s) => s.params.port);
      expect(missing).toEqual([]);
    }
  }, 30_000);
});
