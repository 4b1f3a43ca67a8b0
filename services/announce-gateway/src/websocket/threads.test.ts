// WebSocket peers of worker threads (docs/webtorrent.md "Worker threads"):
// the main thread's hub keeps the swarms and relay, each worker reaches them
// over its own MessagePort. Two gateways on two ports of one hub relay offers
// and answers both ways, and a gateway whose port closes loses its peers at
// the first offer routed to it; then a real gateway process with two worker
// threads on the memory store, whose browsers meet whichever thread holds
// their socket.
import { afterAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import { hashOf, makeGateway, metricSum, peerIdFor, type TestGateway } from '../../test/support.ts';
import {
  WsClient,
  announceFrame,
  offerAndAnswer,
  bin,
  isAnnounceAnswer,
  isAnswer,
  isOffer,
  offers,
  type Frame,
} from '../../test/ws-client.ts';
import type { WsPlace } from '@shoal/storage/ws';
import { WsThreadHub, threadWsPlace } from './threads.ts';

async function gatewayOn(p: WsPlace, id: string): Promise<{ t: TestGateway; url: string }> {
  const t = makeGateway({}, { webSocket: { swarms: p.swarms, relay: p.relay, gateway: id } });
  const { httpPort } = await t.gateway.listen();
  return { t, url: `ws://127.0.0.1:${httpPort!}/announce` };
}

describe('WebSocket swarms of worker threads, through the main thread', () => {
  it('relays between two gateways on one hub, and takes out the peers of a gateway whose port closed', async () => {
    const hub = new WsThreadHub({ peerLifetimeSeconds: 300, sweepEveryMs: 60_000 });
    const [pa, pb] = [threadWsPlace(hub.connect()), threadWsPlace(hub.connect())];
    const a = await gatewayOn(pa, 'thread-a');
    const b = await gatewayOn(pb, 'thread-b');
    const hash = hashOf('ws-threads');
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
      // The hub's swarm is the one both gateways see.
      expect(hub.swarms.scrape([hash])[0]).toMatchObject({ seeders: 1, leechers: 1 });

      // Thread A's port closes (its worker exited) without its peer leaving:
      // the first offer routed to it finds nobody listening, and the peer goes.
      await pa.close();
      onB2.send(announceFrame(hash, peerIdFor(3), { event: 'started', offers: offers(3, 'c') }));
      expect(await onB2.next(isAnnounceAnswer)).toMatchObject({ incomplete: 2 });
      await onB.next(isOffer);
      for (let i = 0; i < 400 && hub.swarms.scrape([hash])[0]!.leechers !== 1; i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(hub.swarms.scrape([hash])[0]).toMatchObject({ seeders: 1, leechers: 1 });
      expect(
        await metricSum(b.t, 'shoal_ws_relay_dropped_total', { reason: 'gone', kind: 'offer' }),
      ).toBe(1);
    } finally {
      for (const c of clients) c.close();
      await a.t.gateway.close();
      await b.t.gateway.close();
      await pb.close();
      await hub.close();
    }
  }, 120_000);
});

describe('a gateway process with two worker threads on the memory store', () => {
  let gateway: GatewayProcess | undefined;
  afterAll(async () => {
    await gateway?.stop();
  });

  it("delivers a seeder's offers to every leecher and their answers back, whichever thread holds each socket", async () => {
    gateway = await startGateway(
      { GATEWAY_WORKERS: '2', STORAGE_DRIVER: 'memory' },
      { timeoutMs: 180_000 },
    );
    const url = `ws://127.0.0.1:${gateway.httpPort}/announce`;
    const hash = hashOf('ws-two-threads');
    // Sockets are spread over the threads by SO_REUSEPORT's hash of the
    // source port: with 10 of them, the chance that all land on one thread
    // is 2 in 1024, and thread-local swarms would lose offers and answers.
    const LEECHERS = 9;
    const clients: WsClient[] = [];
    try {
      const leechers: WsClient[] = [];
      for (let i = 0; i < LEECHERS; i++) {
        const leecher = await WsClient.open(url);
        clients.push(leecher);
        leechers.push(leecher);
        leecher.send(announceFrame(hash, peerIdFor(i), { event: 'started' }));
        // Every leecher sees the whole swarm: those before it, on either thread.
        expect(await leecher.next(isAnnounceAnswer, 60_000)).toMatchObject({
          incomplete: i + 1,
        });
      }
      const seeder = await WsClient.open(url);
      clients.push(seeder);
      seeder.send(
        announceFrame(hash, peerIdFor(100), {
          event: 'started',
          left: 0,
          numwant: LEECHERS,
          offers: offers(LEECHERS, 's'),
        }),
      );
      expect(await seeder.next(isAnnounceAnswer, 60_000)).toMatchObject({
        complete: 1,
        incomplete: LEECHERS,
      });
      // One offer reaches each leecher, and each answers it.
      for (const [i, leecher] of leechers.entries()) {
        const offer: Frame = await leecher.next(isOffer, 60_000);
        expect(offer).toMatchObject({ peer_id: bin(peerIdFor(100)), info_hash: bin(hash) });
        leecher.send(
          announceFrame(hash, peerIdFor(i), {
            to_peer_id: offer.peer_id,
            offer_id: offer.offer_id,
            answer: { type: 'answer', sdp: `from ${i}` },
          }),
        );
      }
      const from = new Set<string>();
      for (let i = 0; i < LEECHERS; i++) {
        const answer: Frame = await seeder.next(isAnswer, 60_000);
        from.add(String(answer.peer_id));
      }
      expect(from).toEqual(new Set(Array.from({ length: LEECHERS }, (_, i) => bin(peerIdFor(i)))));
    } finally {
      for (const c of clients) c.close();
    }
  }, 300_000);
});
