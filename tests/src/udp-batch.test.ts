// The UDP tracker through the batching addon (docs/udp-batch.md), as a real
// gateway process: with two worker threads on the memory store a peer
// announced through one worker's addon socket is returned through the
// other's; bursts from many sockets, which the addon reads and answers many
// datagrams per system call, are all answered, each to its own sender and
// transaction, with exact counts; and the fallback: a gateway whose addon is
// absent serves UDP with node:dgram on `auto`, says why, and refuses to boot
// on `on`. Which worker answered is read from
// shoal_gateway_worker_requests_total{worker} (harness/workers.ts).
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadUdpBatch } from '@shoal/announce-gateway';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import { randomInfoHash } from '@shoal/testing/tracker-client';
import { peer, sample, workersProbe } from './harness/workers.ts';

const TOKEN = 'udp-batch-admin-token-0123456789abcdef';
const WORKERS = 2;
const gatewayDir = fileURLToPath(new URL('../../services/announce-gateway/', import.meta.url));

describe('the batching addon', () => {
  it('was built at install and loads', () => {
    // `make test` installs with the Debian compiler and node-api-headers: the addon must be there.
    const { addon, why } = loadUdpBatch();
    expect(why).toBeUndefined();
    expect(addon?.BATCH).toBe(64);
  });
});

describe('UDP through the addon, two workers on the memory store', () => {
  let gateway: GatewayProcess;
  const probe = workersProbe(() => gateway, WORKERS, TOKEN);

  beforeAll(async () => {
    gateway = await startGateway(
      {
        GATEWAY_WORKERS: String(WORKERS),
        STORAGE_DRIVER: 'memory',
        ADMIN_API_TOKEN: TOKEN,
        UDP_BATCH_SYSCALLS: 'on',
        SHUTDOWN_GRACE_SECONDS: '300',
      },
      { timeoutMs: 180_000 },
    );
  }, 200_000);
  afterAll(async () => {
    await probe.closeClients();
    await gateway?.stop();
  });

  it('says it batches', () => {
    expect(gateway.listening).toMatchObject({ udpSyscalls: 'batched', workers: WORKERS });
  });

  it('returns a peer announced through one worker from the other', async () => {
    const byWorker = await probe.udpClientPerWorker();
    expect(byWorker.size).toBe(WORKERS);
    const swarm = randomInfoHash();
    await probe.announce(byWorker.get(0)!, peer(51_001, 0n, swarm));
    const reply = await probe.announce(byWorker.get(1)!, peer(51_002, 10n, swarm));
    expect(reply).toEqual({ seeders: 1, leechers: 1, peers: ['127.0.0.1:51001'] });
    const back = await probe.announce(byWorker.get(0)!, peer(51_003, 10n, swarm));
    expect(back.peers.sort()).toEqual(['127.0.0.1:51001', '127.0.0.1:51002']);
  }, 240_000);

  it('answers a burst from many sockets, each datagram to its sender and transaction, counts exact', async () => {
    const swarms = [randomInfoHash(), randomInfoHash()];
    const clients = await Promise.all(Array.from({ length: 48 }, () => probe.udpClient()));
    const before = await probe.perWorker();
    // Every client's connect and announce at once: many datagrams wait in
    // each socket, and each recvmmsg takes as many as are there.
    const answers = await Promise.all(
      clients.map((c, i) =>
        probe.announce(c, peer(52_000 + i, i % 2 === 0 ? 0n : 5n, swarms[i % 2]!)),
      ),
    );
    // Each answer went to its own client and transaction: it names only
    // peers of that client's swarm, never the client itself.
    answers.forEach((a, i) => {
      for (const p of a.peers) {
        const other = Number(p.split(':')[1]) - 52_000;
        expect(other % 2, `answer ${i} names ${p}`).toBe(i % 2);
        expect(other).not.toBe(i);
      }
    });
    const after = await probe.perWorker();
    for (let w = 0; w < WORKERS; w++) expect(after[w]!).toBeGreaterThan(before[w]!);
    const counts = await probe.scrape(clients[0]!, swarms);
    expect(counts).toEqual([
      { complete: 24, incomplete: 0, downloaded: 0 },
      { complete: 0, incomplete: 24, downloaded: 0 },
    ]);
    const text = await probe.metricsText();
    expect(sample(text, 'shoal_udp_dropped_packets_total', { reason: 'send_failed' })).toBe(0);
  }, 240_000);

  it('SIGTERM drains both workers and the process exits 0', async () => {
    expect(await gateway.stop(120_000)).toBe(0);
    const drained = gateway.stdout.filter((l) => l.includes('"msg":"worker drained"'));
    expect(drained).toHaveLength(WORKERS);
  }, 200_000);
});

describe('a gateway whose addon is absent', () => {
  // A copy of the gateway's sources beside the package, without native/build:
  // imports resolve through the package's node_modules as before, the addon
  // path (../native/build from src/) names nothing.
  let copy: string;
  beforeAll(() => {
    mkdirSync(join(gatewayDir, '.tmp'), { recursive: true });
    copy = mkdtempSync(join(gatewayDir, '.tmp', 'no-addon-'));
    cpSync(join(gatewayDir, 'src'), join(copy, 'src'), { recursive: true });
  });
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  it('serves UDP with node:dgram on auto and logs why', async () => {
    const gateway = await startGateway(
      { UDP_BATCH_SYSCALLS: 'auto' },
      { main: join(copy, 'src/main.ts'), timeoutMs: 120_000 },
    );
    const probe = workersProbe(() => gateway, 1, TOKEN);
    try {
      expect(gateway.listening).toMatchObject({ udpSyscalls: 'dgram' });
      expect(
        gateway.stdout.some((l) =>
          l.includes('UDP batching addon not loaded: UDP uses node:dgram'),
        ),
      ).toBe(true);
      const client = await probe.udpClient();
      const swarm = randomInfoHash();
      await probe.announce(client, peer(53_001, 0n, swarm));
      expect(await probe.announce(client, peer(53_002, 3n, swarm))).toEqual({
        seeders: 1,
        leechers: 1,
        peers: ['127.0.0.1:53001'],
      });
    } finally {
      await probe.closeClients();
      await gateway.stop();
    }
  }, 200_000);

  it('refuses to boot on UDP_BATCH_SYSCALLS=on, naming the setting', async () => {
    await expect(
      startGateway(
        { UDP_BATCH_SYSCALLS: 'on' },
        { main: join(copy, 'src/main.ts'), timeoutMs: 120_000 },
      ),
    ).rejects.toThrow(/UDP_BATCH_SYSCALLS/);
  }, 200_000);
});
