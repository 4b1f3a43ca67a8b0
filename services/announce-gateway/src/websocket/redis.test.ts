// Two gateways on one real Redis of each topology (docs/webtorrent.md
// "Design"): standalone (also as the least-privileged ACL user docs/redis.md
// gives operators), a 3-master Cluster and a ring of 3 shards. A browser
// on gateway A gets the offers of a browser on gateway B and B gets A's
// answer, through the shared swarms and the relay (PUBLISH, or SPUBLISH on
// the Cluster); both gateways count one swarm; a gateway that vanishes
// without leaving loses its peers at the first offer routed to it. Then what
// only one topology has: a Cluster slot that moves to another master, and a
// ring shard that stops.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedisClients, ownerIndex } from '@shoal/storage/redis';
import {
  startCluster,
  startRedis,
  startRing,
  type RedisCluster,
  type RedisRing,
  type RedisServer,
} from '@shoal/testing/redis';
import { LOOPBACK_ENV } from '@shoal/testing/launcher';
import { loadGatewayConfig } from '../config.ts';
import { hashOf, makeGateway, metricSum, peerIdFor, type TestGateway } from '../../test/support.ts';
import {
  WsClient,
  announceFrame,
  offerAndAnswer,
  bin,
  isAnnounceAnswer,
  isFailure,
  isOffer,
  offers,
  type Frame,
} from '../../test/ws-client.ts';
import {
  decodeRelayMessage,
  encodeRelayMessage,
  redisWsPlace,
  type WsPlace,
} from '@shoal/storage/ws';

const RING = ['a', 'b', 'c'];

interface Topology {
  env: Record<string, string>;
  close(): Promise<void>;
}

const topologies: Record<string, () => Promise<Topology & Record<string, unknown>>> = {
  standalone: async () => {
    const redis: RedisServer = await startRedis();
    return {
      env: {
        REDIS_ADDRESSES: `127.0.0.1:${redis.port}`,
        ...(redis.password === undefined ? {} : { REDIS_PASSWORD: redis.password }),
      },
      close: () => redis.close(),
    };
  },
  // The least-privileged user docs/redis.md "Operations" tells operators to create.
  'standalone, as the ACL user of docs/redis.md': async () => {
    const line = /`(user shoal on >PASSWORD [^`]+)`/.exec(
      await readFile(new URL('../../../../docs/redis.md', import.meta.url), 'utf8'),
    )?.[1];
    if (line === undefined) throw new Error('docs/redis.md names no `user shoal` ACL line');
    const dir = await mkdtemp(join(tmpdir(), 'shoal-acl-'));
    const aclFile = join(dir, 'users.acl');
    await writeFile(
      aclFile,
      `user default on nopass ~* &* +@all\n${line.replace('>PASSWORD', '>acl-test-password')}\n`,
    );
    const redis: RedisServer = await startRedis({
      password: undefined,
      args: ['--aclfile', aclFile],
    });
    return {
      env: {
        REDIS_ADDRESSES: `127.0.0.1:${redis.port}`,
        REDIS_USERNAME: 'shoal',
        REDIS_PASSWORD: 'acl-test-password',
      },
      close: async () => {
        await redis.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  cluster: async () => {
    const cluster: RedisCluster = await startCluster({ masters: 3 });
    return {
      cluster,
      env: {
        REDIS_MODE: 'cluster',
        REDIS_ADDRESSES: cluster.addresses.map((a) => `${a.host}:${a.port}`).join(','),
        REDIS_PASSWORD: cluster.password,
      },
      close: () => cluster.close(),
    };
  },
  ring: async () => {
    const ring: RedisRing = await startRing(3);
    return {
      ring,
      env: {
        REDIS_MODE: 'ring',
        REDIS_RING_SHARDS: ring.shards.map((s, i) => `${RING[i]}=${s.address}`).join(','),
        REDIS_PASSWORD: ring.shards[0]!.password!,
      },
      close: () => ring.close(),
    };
  },
};

function place(env: Record<string, string>): WsPlace {
  const config = loadGatewayConfig({
    env: { ...LOOPBACK_ENV, STORAGE_DRIVER: 'redis', ...env },
    argv: [],
  });
  const p = redisWsPlace(config, openRedisClients, () => undefined);
  if (p === undefined) throw new Error('no Redis place for a Redis config');
  return p;
}

interface TestWsGateway {
  t: TestGateway;
  url: string;
  place: WsPlace;
  close(): Promise<void>;
}

async function gatewayOn(env: Record<string, string>, id: string): Promise<TestWsGateway> {
  const p = place(env);
  const t = makeGateway({}, { webSocket: { swarms: p.swarms, relay: p.relay, gateway: id } });
  const { httpPort } = await t.gateway.listen();
  return {
    t,
    place: p,
    url: `ws://127.0.0.1:${httpPort!}/announce`,
    close: async () => {
      await t.close();
      await p.close();
    },
  };
}

async function scrape(client: WsClient, hash: Buffer): Promise<Frame> {
  client.send({ action: 'scrape', info_hash: bin(hash) });
  const reply = await client.next((f) => f.action === 'scrape');
  if (reply.files === undefined)
    throw new Error(`scrape refused: ${String(reply['failure reason'])}`);
  return (reply.files as Frame)[bin(hash)] as Frame;
}

/**
 * Polls the swarm's scrape through `client` until `done` holds (bounded; no
 * wall-clock assertion), slower than WS_MESSAGES_PER_SECOND.
 */
async function scrapeUntil(
  client: WsClient,
  hash: Buffer,
  done: (counts: Frame) => boolean,
): Promise<Frame> {
  for (let i = 0; i < 300; i++) {
    const counts = await scrape(client, hash);
    if (done(counts)) return counts;
    await new Promise((r) => setTimeout(r, 200));
  }
  return scrape(client, hash);
}

/** The first `<prefix>-<n>` whose relay channel the ring puts on shard `index`. */
function idOnShard(prefix: string, index: number): string {
  for (let n = 0; n < 10_000; n++) {
    const id = `${prefix}-${n}`;
    if (ownerIndex(RING, Buffer.from(id, 'utf8')) === index) return id;
  }
  throw new Error('no such id');
}

/** The first hash `<label>-<n>` whose swarm the ring puts on shard `index`. */
function hashOnShard(label: string, index: number): Buffer {
  for (let n = 0; n < 10_000; n++) {
    const h = hashOf(`${label}-${n}`);
    if (ownerIndex(RING, h) === index) return h;
  }
  throw new Error('no such hash');
}

/** The id of the master serving `slot`, from CLUSTER NODES (`<id> <addr> <flags> ... <slot ranges>`). */
function ownerOfSlot(nodes: string, slot: number): string | undefined {
  for (const line of nodes.split('\n')) {
    const fields = line.trim().split(' ');
    for (const range of fields.slice(8)) {
      const [lo, hi = lo] = range.split('-').map(Number);
      if (lo !== undefined && hi !== undefined && slot >= lo && slot <= hi) return fields[0];
    }
  }
  return undefined;
}

describe('WebSocket relay messages', () => {
  it('carries a relay message through its binary form unchanged', () => {
    const m = {
      kind: 'answer' as const,
      infoHash: hashOf('x'),
      peerId: peerIdFor(1),
      frame: '{"a":"é\\u0000"}',
      sentAt: 1_700_000_000_123.25,
    };
    expect(decodeRelayMessage(encodeRelayMessage(m))).toEqual(m);
    expect(decodeRelayMessage(Buffer.alloc(10))).toBeUndefined();
  });
});

describe.each(Object.keys(topologies))('WebSocket swarms and relay on Redis %s', (kind) => {
  let topology: Topology & Record<string, unknown>;
  beforeAll(async () => {
    topology = await topologies[kind]!();
  }, 120_000);
  afterAll(async () => {
    await topology?.close();
  });

  it('relays between two gateways, both count one swarm, and a gateway that vanished loses its peers', async () => {
    // On the ring the two channels are on different shards, neither the swarm's.
    const [idA, idB] =
      kind === 'ring' ? [idOnShard('gw-a', 0), idOnShard('gw-b', 1)] : ['gw-a', 'gw-b'];
    const hash = kind === 'ring' ? hashOnShard('ws-redis', 2) : hashOf(`ws-redis-${kind}`);
    const a = await gatewayOn(topology.env, idA);
    const b = await gatewayOn(topology.env, idB);
    const clients: WsClient[] = [];
    try {
      const onA = await WsClient.open(a.url);
      const onB = await WsClient.open(b.url);
      const onB2 = await WsClient.open(b.url);
      clients.push(onA, onB, onB2);
      await offerAndAnswer(onA, onB, hash, peerIdFor);
      expect(
        await metricSum(a.t, 'shoal_ws_relayed_total', { kind: 'offer', scope: 'remote' }),
      ).toBe(1);
      expect(
        await metricSum(b.t, 'shoal_ws_relayed_total', { kind: 'answer', scope: 'remote' }),
      ).toBe(1);

      // Both gateways see one swarm.
      expect(await scrape(onA, hash)).toMatchObject({ complete: 1, incomplete: 1 });
      expect(await scrape(onB2, hash)).toMatchObject({ complete: 1, incomplete: 1 });

      // Gateway A's subscription dies with its process (here: its relay connection);
      // its peer is still listed until the first offer routed to it finds nobody.
      await a.place.relay.close();
      onB2.send(announceFrame(hash, peerIdFor(3), { event: 'started', offers: offers(3, 'c') }));
      expect(await onB2.next(isAnnounceAnswer)).toMatchObject({ incomplete: 2 });
      // The seeder on B got its offer; the one for A's peer was dropped as gone, and that peer left.
      await onB.next(isOffer);
      expect(await scrapeUntil(onB2, hash, (c) => c.incomplete === 1)).toMatchObject({
        complete: 1,
        incomplete: 1,
      });
      expect(
        await metricSum(b.t, 'shoal_ws_relay_dropped_total', { reason: 'gone', kind: 'offer' }),
      ).toBe(1);

      // A socket that closes takes its peer out of the shared swarm.
      onB.close();
      expect(await scrapeUntil(onB2, hash, (c) => c.complete === 0)).toMatchObject({
        complete: 0,
        incomplete: 1,
      });
    } finally {
      for (const c of clients) c.close();
      await a.close();
      await b.close();
    }
  }, 120_000);

  it.runIf(kind === 'cluster')(
    "follows a gateway's channel when its slot moves to another master",
    async () => {
      const cluster = topology.cluster as RedisCluster;
      const a = await gatewayOn(topology.env, 'gw-move-a');
      const b = await gatewayOn(topology.env, 'gw-move-b');
      const channel = 'shoal:ws:gw-move-b';
      const hash = hashOf('ws-cluster-move');
      const clients: WsClient[] = [];
      try {
        const node0 = cluster.nodes[0]!;
        const slot = Number(await node0.cli('CLUSTER', 'KEYSLOT', channel));
        expect(
          Number(await node0.cli('CLUSTER', 'KEYSLOT', `ws:{${hash.toString('hex')}}:e`)),
        ).not.toBe(slot);
        const ids = await Promise.all(
          cluster.nodes.map(async (n) => (await n.cli('CLUSTER', 'MYID')).trim()),
        );
        const from = ids.indexOf(ownerOfSlot(await node0.cli('CLUSTER', 'NODES'), slot) ?? '');
        expect(from).not.toBe(-1);
        const to = (from + 1) % cluster.nodes.length;
        const other = (from + 2) % cluster.nodes.length;

        const onA = await WsClient.open(a.url);
        const onB = await WsClient.open(b.url);
        const onA2 = await WsClient.open(a.url);
        clients.push(onA, onB, onA2);
        await offerAndAnswer(onA, onB, hash, peerIdFor);

        // The slot of B's channel (no keys in it) moves: the target first, the source last.
        const source = cluster.nodes[from]!;
        const target = cluster.nodes[to]!;
        expect(Number(await source.cli('CLUSTER', 'COUNTKEYSINSLOT', String(slot)))).toBe(0);
        await target.cli('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', ids[from]!);
        await source.cli('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', ids[to]!);
        for (const n of [to, other, from])
          await cluster.nodes[n]!.cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', ids[to]!);

        // The source unsubscribed B (sunsubscribe); ioredis re-reads the slots and
        // subscribes again on the target.
        await expect
          .poll(async () => (await target.cli('PUBSUB', 'SHARDNUMSUB', channel)).split('\n')[1], {
            timeout: 60_000,
            interval: 100,
          })
          .toBe('1');

        // A's SPUBLISH for B is redirected (MOVED) to the target, which counts B.
        onA2.send(announceFrame(hash, peerIdFor(3), { event: 'started', offers: offers(2, 'm') }));
        expect(await onA2.next(isAnnounceAnswer)).toMatchObject({ complete: 1, incomplete: 2 });
        expect(await onB.next(isOffer)).toMatchObject({ peer_id: bin(peerIdFor(3)) });
        expect(await metricSum(a.t, 'shoal_ws_relay_dropped_total', {})).toBe(0);
        expect(await scrape(onA2, hash)).toMatchObject({ complete: 1, incomplete: 2 });
      } finally {
        for (const c of clients) c.close();
        await a.close();
        await b.close();
      }
    },
    120_000,
  );

  it.runIf(kind === 'ring')(
    'with one shard down, its swarms and the relay to gateways whose channel it holds fail with a code; the rest keep working',
    async () => {
      const ring = topology.ring as RedisRing;
      // A's channel on shard a, B's on shard b, which stops; swarm x on a, swarm y on b.
      const a = await gatewayOn(topology.env, idOnShard('gw-down-a', 0));
      const idB = idOnShard('gw-down-b', 1);
      const b = await gatewayOn(topology.env, idB);
      const x = hashOnShard('ws-ring-x', 0);
      const y = hashOnShard('ws-ring-y', 1);
      const victim = ring.shards[1]!;
      const clients: WsClient[] = [];
      try {
        const onA = await WsClient.open(a.url);
        const onB = await WsClient.open(b.url);
        const onA2 = await WsClient.open(a.url);
        const onB2 = await WsClient.open(b.url);
        clients.push(onA, onB, onA2, onB2);
        await offerAndAnswer(onA, onB, x, peerIdFor);

        await victim.kill();
        // Swarm y is on the stopped shard: a coded retry-later, no crash.
        onA2.send(announceFrame(y, peerIdFor(5), { event: 'started' }));
        expect(String((await onA2.next(isFailure))['failure reason'])).toMatch(
          /\[STORE_ERR_(UNAVAILABLE|TIMEOUT)\]$/,
        );
        // Swarm x is on a live shard: served. Its offer to A's leecher is
        // delivered; the one to B's seeder cannot be published (B's channel is
        // on the stopped shard) and is dropped as unavailable, the seeder stays.
        onA2.send(announceFrame(x, peerIdFor(3), { event: 'started', offers: offers(2, 'd') }));
        expect(await onA2.next(isAnnounceAnswer)).toMatchObject({ complete: 1, incomplete: 2 });
        expect(await onA.next(isOffer)).toMatchObject({ peer_id: bin(peerIdFor(3)) });
        await expect
          .poll(
            () =>
              metricSum(a.t, 'shoal_ws_relay_dropped_total', {
                kind: 'offer',
                reason: 'unavailable',
              }),
            { timeout: 30_000, interval: 50 },
          )
          .toBe(1);
        expect(await metricSum(a.t, 'shoal_ws_relay_dropped_total', { reason: 'gone' })).toBe(0);
        // Both gateways still count swarm x alike.
        expect(await scrape(onA2, x)).toMatchObject({ complete: 1, incomplete: 2 });
        expect(await scrape(onB2, x)).toMatchObject({ complete: 1, incomplete: 2 });

        // The shard comes back: swarm y is served again, and once B has
        // subscribed again its seeder gets offers again.
        await victim.start();
        for (let i = 0; i < 300; i++) {
          onA2.send(announceFrame(y, peerIdFor(5), { event: 'started' }));
          const f = await onA2.next((m) => isAnnounceAnswer(m) || isFailure(m));
          if (isAnnounceAnswer(f)) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(await scrape(onA2, y)).toMatchObject({ incomplete: 1 });
        await expect
          .poll(
            async () => (await victim.cli('PUBSUB', 'NUMSUB', `shoal:ws:${idB}`)).split('\n')[1],
            { timeout: 60_000, interval: 100 },
          )
          .toBe('1');
        onA2.send(announceFrame(x, peerIdFor(3), { offers: offers(2, 'e') }));
        expect(await onA2.next(isAnnounceAnswer)).toMatchObject({ complete: 1, incomplete: 2 });
        expect(await onB.next(isOffer)).toMatchObject({ peer_id: bin(peerIdFor(3)) });
      } finally {
        await victim.start().catch(() => undefined);
        for (const c of clients) c.close();
        await a.close();
        await b.close();
      }
    },
    180_000,
  );
});
