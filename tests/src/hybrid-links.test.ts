// Hybrid torrents (docs/policy.md "Hybrid torrents"), as processes on every
// store: a link imported with shoalctl puts a BEP 52 hybrid's v1 and v2 hashes
// in one swarm (peers on either hash see each other over HTTP and UDP, and a
// scrape of either counts each peer once); it is KV data, so it survives in
// the store and `links remove` splits the swarms again; and a gateway with
// HYBRID_LINKS_LEARN learns a link from a client announcing two hashes with
// one peer_id and key. Last, a real libtorrent seeding a hybrid torrent it made
// announces both hashes, and the gateway learns exactly that pair.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '@shoal/cli';
import {
  startGateway,
  startService,
  storageApiEnv,
  type GatewayProcess,
} from '@shoal/testing/launcher';
import { startPostgres } from '@shoal/testing/postgres';
import { waitFor } from '@shoal/testing/processes';
import { startRedis } from '@shoal/testing/redis';
import {
  httpAnnounce,
  httpScrape,
  randomInfoHash,
  randomPeerId,
  UdpTrackerClient,
  type AnnounceParams,
} from '@shoal/testing/tracker-client';
import { adminOk } from './harness/policy.ts';

const LEARN_ENV = {
  HYBRID_LINKS: 'true',
  HYBRID_LINKS_LEARN: 'true',
  POLICY_REFRESH_SECONDS: '1',
};
/** A refresh (1 s) plus a loaded machine's slack. */
const CONVERGE_MS = 15_000;

interface Deployment {
  gateway: GatewayProcess;
  /** Where the admin API is: the gateway's admin port (embedded) or storage-api. */
  adminUrl: string;
  adminToken: string;
  stop(): Promise<void>;
}

async function embedded(
  env: Record<string, string>,
  stop: () => Promise<void>,
): Promise<Deployment> {
  const adminToken = randomBytes(16).toString('hex');
  const gateway = await startGateway({ ...env, ...LEARN_ENV, ADMIN_API_TOKEN: adminToken });
  return {
    gateway,
    adminUrl: `http://127.0.0.1:${gateway.adminPort}`,
    adminToken,
    async stop() {
      await gateway.stop();
      await stop();
    },
  };
}

const STORES: ReadonlyArray<{ name: string; start: () => Promise<Deployment> }> = [
  { name: 'embedded memory', start: () => embedded({ STORAGE_DRIVER: 'memory' }, async () => {}) },
  {
    name: 'embedded redis',
    async start() {
      const redis = await startRedis();
      return embedded(
        {
          STORAGE_DRIVER: 'redis',
          REDIS_ADDRESSES: redis.address,
          REDIS_PASSWORD: redis.password ?? '',
        },
        () => redis.close(),
      );
    },
  },
  {
    name: 'embedded postgres',
    async start() {
      const pg = await startPostgres();
      return embedded({ STORAGE_DRIVER: 'postgres', DATABASE_URL: await pg.createDatabase() }, () =>
        pg.stop(),
      );
    },
  },
  {
    name: 'remote, storage-api memory',
    async start() {
      const token = randomBytes(24).toString('hex');
      const adminToken = randomBytes(24).toString('hex');
      const api = await startService({
        service: 'storage-api',
        env: storageApiEnv(token, 'memory', { STORAGE_API_ADMIN_TOKEN: adminToken }),
      });
      const url = `http://127.0.0.1:${Number(api.listening.port)}`;
      const gateway = await startGateway({
        ...LEARN_ENV,
        STORAGE_DRIVER: 'remote',
        STORAGE_API_URL: url,
        STORAGE_API_TOKEN: token,
      });
      return {
        gateway,
        adminUrl: url,
        adminToken,
        async stop() {
          await gateway.stop();
          await api.stop();
        },
      };
    },
  },
];

/** shoalctl in-process; resolves to its output, throws on a non-zero exit. */
async function shoalctl(d: Deployment, ...args: string[]): Promise<string> {
  let out = '';
  let err = '';
  const status = await run([...args, '--url', d.adminUrl, '--token', d.adminToken], {
    env: {},
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
  });
  if (status !== 0) throw new Error(`shoalctl ${args.join(' ')}: exit ${status}: ${err}`);
  return out;
}

interface LinkRow {
  first: string;
  second: string;
  learned: boolean;
}

async function links(d: Deployment): Promise<LinkRow[]> {
  return (JSON.parse(await shoalctl(d, 'links', 'list', '--json')) as { links: LinkRow[] }).links;
}

function peer(infoHash: Buffer, port: number, left: bigint, extra: Partial<AnnounceParams> = {}) {
  return { infoHash, peerId: randomPeerId(), port, left, event: 'started' as const, ...extra };
}

for (const store of STORES) {
  describe(store.name, () => {
    let d: Deployment | undefined;
    let udp: UdpTrackerClient | undefined;
    beforeAll(async () => {
      d = await store.start();
      udp = await UdpTrackerClient.open(d.gateway.udpPort);
    }, 120_000);
    afterAll(async () => {
      await udp?.close();
      await d?.stop();
    }, 60_000);
    const up = (): { d: Deployment; udp: UdpTrackerClient } => {
      if (d === undefined || udp === undefined) throw new Error(`${store.name} did not start`);
      return { d, udp };
    };

    it('an imported link puts both hashes in one swarm; scrapes count each peer once', async () => {
      const { d, udp } = up();
      const v1 = randomInfoHash();
      const v2 = randomInfoHash();
      const added = await shoalctl(d, 'links', 'add', v1.toString('hex'), v2.toString('hex'));
      expect(added).toContain('linked');
      const seeder = peer(v1, 41_001, 0n);
      await httpAnnounce(d.gateway.announceUrl('http'), seeder);
      // The link reaches the gateway with its next policy refresh.
      let peers: string[] = [];
      const leecher = peer(v2, 41_002, 100n);
      await waitFor(
        'a v2 announce to see the v1 seeder',
        async () => {
          peers = (await udp.announce(leecher)).peers;
          return peers.length > 0;
        },
        CONVERGE_MS,
      );
      expect(peers).toEqual(['127.0.0.1:41001']);
      const back = await httpAnnounce(d.gateway.announceUrl('http'), {
        ...seeder,
        event: 'none',
      });
      expect(back.peers).toEqual(['127.0.0.1:41002']);
      // One seeder, one leecher, whichever hash is asked, over HTTP and UDP.
      const http = await httpScrape(d.gateway.scrapeUrl(), [v1, v2]);
      const viaUdp = await udp.scrape([v2, v1]);
      for (const e of [...http, ...viaUdp]) {
        expect(e.complete).toBe(1);
        expect(e.incomplete).toBe(1);
      }
      const listed = await links(d);
      expect(listed).toContainEqual(
        expect.objectContaining({
          first: v1.toString('hex'),
          second: v2.toString('hex'),
          learned: false,
        }),
      );

      // Removed (by either hash): a new v2 peer is alone in v2's own swarm again.
      expect(await shoalctl(d, 'links', 'remove', v2.toString('hex'))).toContain('removed');
      expect((await links(d)).some((l) => l.first === v1.toString('hex'))).toBe(false);
      // Peers already announced stay where they are until they announce again;
      // the v1 seeder is no longer among a v2 peer's peers nor in v2's counts.
      const late = peer(v2, 41_003, 100n);
      await waitFor(
        'the v2 swarm to be apart again',
        async () =>
          !(await httpAnnounce(d.gateway.announceUrl('http'), late)).peers.includes(
            '127.0.0.1:41001',
          ),
        CONVERGE_MS,
      );
      const [split] = await httpScrape(d.gateway.scrapeUrl(), [v2]);
      expect(split!.complete).toBe(0);
    });

    it('a hash may be in one link only (POLICY_ERR_LINK_CONFLICT)', async () => {
      const { d } = up();
      const [a, b, c] = [randomInfoHash(), randomInfoHash(), randomInfoHash()].map((h) =>
        h.toString('hex'),
      ) as [string, string, string];
      await shoalctl(d, 'links', 'add', a, b);
      const answer = await fetch(`${d.adminUrl}/v1/admin/links/${c}/${b}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${d.adminToken}` },
      });
      expect(answer.status).toBe(409);
      expect(((await answer.json()) as { code: string }).code).toBe('POLICY_ERR_LINK_CONFLICT');
      const imported = (await adminOk(d.adminUrl, d.adminToken, 'POST', '/v1/admin/links/import', {
        links: [{ first: c, second: randomInfoHash().toString('hex'), note: 'from a file' }],
      })) as { added: number };
      expect(imported.added).toBe(1);
    });

    it('HYBRID_LINKS_LEARN learns a link from one client announcing two hashes with one peer_id and key', async () => {
      const { d, udp } = up();
      const h1 = randomInfoHash();
      const h2 = randomInfoHash();
      const client = { peerId: randomPeerId(), port: 41_010, key: 0x5eed, left: 0n };
      await httpAnnounce(d.gateway.announceUrl('http'), {
        ...client,
        infoHash: h1,
        event: 'started',
      });
      await udp.announce({ ...client, infoHash: h2, event: 'started' });
      const [first, second] = [h1.toString('hex'), h2.toString('hex')].sort() as [string, string];
      await waitFor(
        'the learned link to be stored',
        async () =>
          (await links(d)).some((l) => l.first === first && l.second === second && l.learned),
        CONVERGE_MS,
      );
      // Then a peer on either hash sees the other's peers (peers merge as they
      // re-announce once the gateway has the link, so both keep announcing).
      const other = peer(h1, 41_011, 10n);
      const onH2 = peer(h2, 41_012, 10n);
      await waitFor(
        'a peer on h2 to see the peer on h1',
        async () => {
          await httpAnnounce(d.gateway.announceUrl('http'), other);
          return (await udp.announce(onH2)).peers.includes('127.0.0.1:41011');
        },
        CONVERGE_MS,
      );
      // A client that shares peer_id and key between three torrents teaches nothing.
      const shared = { peerId: randomPeerId(), port: 41_020, key: 7, left: 0n };
      const three = [randomInfoHash(), randomInfoHash(), randomInfoHash()];
      for (const infoHash of three)
        await httpAnnounce(d.gateway.announceUrl('http'), {
          ...shared,
          infoHash,
          event: 'started',
        });
      const hex = three.map((h) => h.toString('hex'));
      const learned = (await links(d)).filter(
        (l) => hex.includes(l.first) || hex.includes(l.second),
      );
      // The first two arrive before the third: at most that pair, never one with the third.
      expect(learned.every((l) => l.first !== hex[2] && l.second !== hex[2])).toBe(true);
    });
  });
}

describe('a real libtorrent seeding a hybrid torrent (embedded memory)', () => {
  let d: Deployment | undefined;
  beforeAll(async () => {
    d = await STORES[0]!.start();
  }, 120_000);
  afterAll(async () => {
    await d?.stop();
  }, 60_000);

  it('announces both hashes with one peer_id and key; the gateway learns that pair and counts it once', async () => {
    if (d === undefined) throw new Error('gateway did not start');
    const deployment = d;
    const script = fileURLToPath(new URL('./harness/libtorrent-hybrid.py', import.meta.url));
    const child = spawn('/usr/bin/python3', [script, deployment.gateway.announceUrl('http')], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`libtorrent did not announce: ${stderr}`)),
          60_000,
        );
        createInterface({ input: child.stdout }).once('line', (l) => {
          clearTimeout(timer);
          resolve(l);
        });
        child.once('exit', (code) => reject(new Error(`libtorrent exited ${code}: ${stderr}`)));
      });
      const lt = JSON.parse(line) as {
        v1: string;
        v2: string;
        v2Truncated: string;
        port: number;
        announced: number[];
      };
      expect(lt.v2).toHaveLength(64);
      expect(lt.v2Truncated).toBe(lt.v2.slice(0, 40));
      // Tracker replies came for both protocol versions (libtorrent's V1 = 0, V2 = 1).
      expect(lt.announced).toEqual([0, 1]);
      const [first, second] = [lt.v1, lt.v2Truncated].sort() as [string, string];
      await waitFor(
        'the link libtorrent taught',
        async () =>
          (await links(deployment)).some(
            (l) => l.first === first && l.second === second && l.learned,
          ),
        CONVERGE_MS,
      );
      // A v1-only leecher gets libtorrent; once the gateway has the link, both
      // hashes answer the same two peers (libtorrent counted once, not twice).
      // libtorrent may have first announced while checking its files (a
      // leecher then), so the total is what is compared.
      const v1 = Buffer.from(lt.v1, 'hex');
      const v2 = Buffer.from(lt.v2Truncated, 'hex');
      const leecher = peer(v1, 41_100, 1n);
      let last = '';
      await waitFor(
        'both hashes to answer libtorrent and the leecher, once each',
        async () => {
          const reply = await httpAnnounce(deployment.gateway.announceUrl('http'), leecher);
          const [a, b] = await httpScrape(deployment.gateway.scrapeUrl(), [v1, v2]);
          last = JSON.stringify({ peers: reply.peers, a, b });
          return (
            reply.peers.includes(`127.0.0.1:${lt.port}`) &&
            a!.complete === b!.complete &&
            a!.incomplete === b!.incomplete &&
            a!.complete + a!.incomplete === 2
          );
        },
        CONVERGE_MS,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}; last: ${last}`);
      });
    } finally {
      child.stdin.end();
      child.kill('SIGTERM');
    }
  });
});
