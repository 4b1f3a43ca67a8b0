// Two gateways on one real Redis (docs/webtorrent.md "Design"): a browser on
// gateway A gets the offers of a browser on gateway B and B gets A's answer,
// through the shared swarms and pub/sub; a gateway that vanishes without
// leaving loses its peers at the first offer routed to it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedisConnection } from '@shoal/storage/redis';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import { LOOPBACK_ENV } from '@shoal/testing/launcher';
import { loadGatewayConfig } from '../config.ts';
import { hashOf, makeGateway, peerIdFor, type TestGateway } from '../../test/support.ts';
import {
  WsClient,
  announceFrame,
  offerAndAnswer,
  bin,
  isAnnounceAnswer,
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

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});

function place(): WsPlace {
  const config = loadGatewayConfig({
    env: {
      ...LOOPBACK_ENV,
      STORAGE_DRIVER: 'redis',
      REDIS_ADDRESSES: `127.0.0.1:${redis.port}`,
      ...(redis.password === undefined ? {} : { REDIS_PASSWORD: redis.password }),
    },
    argv: [],
  });
  const p = redisWsPlace(config, openRedisConnection, () => undefined);
  if (p === undefined) throw new Error('no Redis place for a standalone config');
  return p;
}

async function gatewayOn(p: WsPlace, id: string): Promise<{ t: TestGateway; url: string }> {
  const t = makeGateway({}, { webSocket: { swarms: p.swarms, relay: p.relay, gateway: id } });
  const { httpPort } = await t.gateway.listen();
  return { t, url: `ws://127.0.0.1:${httpPort!}/announce` };
}

async function relayed(t: TestGateway, labels: Record<string, string>): Promise<number> {
  const m = await t.registry.getSingleMetric('shoal_ws_relayed_total')?.get();
  return (m?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((sum, v) => sum + v.value, 0);
}

describe('WebSocket swarms and relay on Redis', () => {
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

  it('relays between two gateways, and takes out the peers of a gateway that vanished', async () => {
    const [pa, pb] = [place(), place()];
    const a = await gatewayOn(pa, 'gw-a');
    const b = await gatewayOn(pb, 'gw-b');
    const hash = hashOf('ws-redis');
    const clients: WsClient[] = [];
    try {
      const onA = await WsClient.open(a.url);
      const onB = await WsClient.open(b.url);
      const onB2 = await WsClient.open(b.url);
      clients.push(onA, onB, onB2);
      await offerAndAnswer(onA, onB, hash, peerIdFor);
      expect(await relayed(a.t, { kind: 'offer', scope: 'remote' })).toBe(1);
      expect(await relayed(b.t, { kind: 'answer', scope: 'remote' })).toBe(1);

      // Both gateways see one swarm.
      onB2.send({ action: 'scrape', info_hash: bin(hash) });
      expect(await onB2.next((f) => f.action === 'scrape')).toMatchObject({
        files: { [bin(hash)]: { complete: 1, incomplete: 1 } },
      });

      // Gateway A's subscription dies with its process (here: its relay connection);
      // its peer is still listed until the first offer routed to it finds nobody.
      await pa.relay.close();
      onB2.send(announceFrame(hash, peerIdFor(3), { event: 'started', offers: offers(3, 'c') }));
      const first = await onB2.next(isAnnounceAnswer);
      expect(first).toMatchObject({ incomplete: 2 });
      // The seeder on B got its offer; the one for A's peer was dropped as gone, and that peer left.
      await onB.next(isOffer);
      const scrape = async (): Promise<Frame> => {
        onB2.send({ action: 'scrape', info_hash: bin(hash) });
        return (await onB2.next((f) => f.action === 'scrape')).files as Frame;
      };
      for (let i = 0; i < 200; i++) {
        const files = await scrape();
        if ((files[bin(hash)] as Frame).incomplete === 1) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(((await scrape())[bin(hash)] as Frame).incomplete).toBe(1);
      const dropped = await b.t.registry.getSingleMetric('shoal_ws_relay_dropped_total')?.get();
      expect(
        dropped?.values.find((v) => v.labels.reason === 'gone' && v.labels.kind === 'offer')?.value,
      ).toBe(1);

      // A socket that closes takes its peer out of the shared swarm.
      onB.close();
      for (let i = 0; i < 200; i++) {
        const files = await scrape();
        if ((files[bin(hash)] as Frame).complete === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await scrape())[bin(hash)]).toMatchObject({ complete: 0, incomplete: 1 });
    } finally {
      for (const c of clients) c.close();
      await a.t.close();
      await b.t.close();
      await pa.close();
      await pb.close();
    }
  }, 120_000);
});
