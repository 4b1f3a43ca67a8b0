// The WebSocket tracker over real sockets with raw JSON frames
// (docs/webtorrent.md): the protocol, WebSocket peers kept apart from HTTP
// ones, the limits, junk, and two gateways relaying through one shared store.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  announceQuery,
  bdict,
  hashOf,
  makeGateway,
  metricSum,
  peerIdFor,
  type TestGateway,
} from '../../test/support.ts';
import {
  WsClient,
  announceFrame,
  bin,
  isAnnounceAnswer,
  isAnswer,
  isFailure,
  isOffer,
  offers,
  type Frame,
} from '../../test/ws-client.ts';
import { LocalRelay, MemoryWsSwarms } from '@shoal/storage/ws';

const HOST = '127.0.0.1';

async function started(
  env: Record<string, string> = {},
  options: Parameters<typeof makeGateway>[1] = {},
): Promise<{ t: TestGateway; url: string; httpPort: number }> {
  const t = makeGateway(env, options);
  const { httpPort } = await t.gateway.listen();
  return { t, url: `ws://${HOST}:${httpPort!}/announce`, httpPort: httpPort! };
}

/** Polls `read` until `done` holds; generous, for a loaded machine. */
async function until<T>(read: () => Promise<T> | T, done: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await read();
    if (done(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not reached');
}

async function httpGet(port: number, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    request({ host: HOST, port, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    })
      .on('error', reject)
      .end();
  });
}

describe('WebSocket tracker: protocol', () => {
  let g: Awaited<ReturnType<typeof started>>;
  const clients: WsClient[] = [];
  const open = async (url = g.url) => {
    const c = await WsClient.open(url);
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    g = await started();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await g.t.close();
  });

  it('answers an announce, relays offers to other peers and answers back to the offerer', async () => {
    const hash = hashOf('ws-relay');
    const [a, b] = [await open(), await open()];
    const [idA, idB] = [peerIdFor(1), peerIdFor(2)];
    a.send(announceFrame(hash, idA, { event: 'started', offers: offers(5, 'a') }));
    expect(await a.next(isAnnounceAnswer)).toEqual({
      action: 'announce',
      interval: 120,
      info_hash: bin(hash),
      complete: 0,
      incomplete: 1,
    });
    b.send(announceFrame(hash, idB, { event: 'started', left: 0, offers: offers(5, 'b') }));
    expect(await b.next(isAnnounceAnswer)).toMatchObject({ complete: 1, incomplete: 1 });
    // One peer besides b: one of b's offers goes to a, the first.
    const offer = await a.next(isOffer);
    expect(offer).toEqual({
      action: 'announce',
      offer: { type: 'offer', sdp: 'v=0 b0' },
      offer_id: bin(Buffer.alloc(20, 0x80)),
      peer_id: bin(idB),
      info_hash: bin(hash),
    });
    a.send(
      announceFrame(hash, idA, {
        to_peer_id: offer.peer_id,
        offer_id: offer.offer_id,
        answer: { type: 'answer', sdp: 'v=0 answer' },
      }),
    );
    expect(await b.next(isAnswer)).toEqual({
      action: 'announce',
      answer: { type: 'answer', sdp: 'v=0 answer' },
      offer_id: bin(Buffer.alloc(20, 0x80)),
      peer_id: bin(idA),
      info_hash: bin(hash),
    });
    // No peer gets its own offers; an answer gets no reply. A scrape's answer comes after anything sent before it.
    for (const c of [a, b]) {
      c.send({ action: 'scrape', info_hash: bin(hash) });
      await c.next((f) => f.action === 'scrape');
    }
    expect([...a.frames, ...b.frames]).toEqual([]);
    expect(await metricSum(g.t, 'shoal_ws_relayed_total', { kind: 'offer' })).toBe(1);
    expect(await metricSum(g.t, 'shoal_ws_relayed_total', { kind: 'answer' })).toBe(1);
  }, 60_000);

  it('gives a seeder leechers only, scrapes one or many hashes, and takes a stopped peer out', async () => {
    const hash = hashOf('ws-roles');
    const [s1, s2, l] = [await open(), await open(), await open()];
    s1.send(announceFrame(hash, peerIdFor(11), { event: 'started', left: 0, offers: offers(2) }));
    await s1.next(isAnnounceAnswer);
    s2.send(announceFrame(hash, peerIdFor(12), { event: 'started', left: 0, offers: offers(2) }));
    expect(await s2.next(isAnnounceAnswer)).toMatchObject({ complete: 2, incomplete: 0 });
    l.send(announceFrame(hash, peerIdFor(13), { event: 'started', offers: offers(3) }));
    expect(await l.next(isAnnounceAnswer)).toMatchObject({ complete: 2, incomplete: 1 });
    // The leecher's offers reach both seeders; the second seeder's went to nobody.
    await s1.next(isOffer);
    await s2.next(isOffer);
    expect(s1.frames.filter(isOffer)).toEqual([]);

    const other = hashOf('ws-roles-none');
    l.send({ action: 'scrape', info_hash: [bin(hash), bin(other)] });
    expect(await l.next((f) => f.action === 'scrape')).toEqual({
      action: 'scrape',
      files: {
        [bin(hash)]: { complete: 2, incomplete: 1, downloaded: 0 },
        [bin(other)]: { complete: 0, incomplete: 0, downloaded: 0 },
      },
      flags: { min_request_interval: 120 },
    });
    l.send(announceFrame(hash, peerIdFor(13), { event: 'completed', left: 0 }));
    expect(await l.next(isAnnounceAnswer)).toMatchObject({ complete: 3, incomplete: 0 });
    s1.send(announceFrame(hash, peerIdFor(11), { event: 'stopped' }));
    expect(await s1.next(isAnnounceAnswer)).toMatchObject({ complete: 2, incomplete: 0 });
    l.send({ action: 'scrape', info_hash: bin(hash) });
    expect(await l.next((f) => f.action === 'scrape')).toMatchObject({
      files: { [bin(hash)]: { complete: 2, incomplete: 0, downloaded: 1 } },
    });
  }, 60_000);

  it('takes a peer out of its swarms when its socket closes', async () => {
    const hash = hashOf('ws-close');
    const [a, b] = [await open(), await open()];
    a.send(announceFrame(hash, peerIdFor(21), { event: 'started' }));
    await a.next(isAnnounceAnswer);
    b.send(announceFrame(hash, peerIdFor(22), { event: 'started' }));
    expect(await b.next(isAnnounceAnswer)).toMatchObject({ incomplete: 2 });
    a.close();
    await until(
      async () => {
        b.send({ action: 'scrape', info_hash: bin(hash) });
        return (await b.next((f) => f.action === 'scrape')).files as Record<string, Frame>;
      },
      (files) => files[bin(hash)]?.incomplete === 1,
    );
  }, 60_000);

  it('keeps WebSocket peers apart from HTTP peers, in answers and in scrapes', async () => {
    const hash = hashOf('ws-apart');
    const w = await open();
    w.send(announceFrame(hash, peerIdFor(31), { event: 'started', left: 0 }));
    await w.next(isAnnounceAnswer);
    const http = bdict(
      await httpGet(g.httpPort, `/announce?${announceQuery({ infoHash: hash, port: 7001 })}`),
    );
    expect(http.complete).toBe(0);
    expect(http.incomplete).toBe(1);
    expect((http.peers as Buffer).length).toBe(0);
    w.send({ action: 'scrape', info_hash: bin(hash) });
    expect(await w.next((f) => f.action === 'scrape')).toMatchObject({
      files: { [bin(hash)]: { complete: 1, incomplete: 0 } },
    });
  }, 60_000);

  it('answers junk with a coded failure reason and keeps the connection usable', async () => {
    const c = await open();
    const hash = hashOf('ws-junk');
    c.send('not json at all');
    expect(await c.next(isFailure)).toEqual({
      'failure reason': 'invalid message [PROTO_ERR_WS_BAD_JSON]',
    });
    c.send({ action: 'connect' });
    expect((await c.next(isFailure))['failure reason']).toMatch(/PROTO_ERR_WS_BAD_ACTION/);
    c.send({ action: 'announce', info_hash: bin(hash), peer_id: 'short' });
    expect(await c.next(isFailure)).toEqual({
      action: 'announce',
      'failure reason': 'invalid peer_id [PROTO_ERR_BAD_PEER_ID]',
      info_hash: bin(hash),
    });
    c.send(announceFrame(hash, peerIdFor(41), { offers: [{ offer: 'x' }] }));
    expect((await c.next(isFailure))['failure reason']).toMatch(/PROTO_ERR_WS_BAD_OFFER/);
    c.socket.send(Buffer.from([0, 1, 2, 0xff]), { binary: true });
    expect((await c.next(isFailure))['failure reason']).toMatch(/PROTO_ERR_WS_BAD_JSON/);
    c.send({ action: 'scrape' });
    expect((await c.next(isFailure))['failure reason']).toMatch(/PROTO_ERR_NO_HASHES/);
    // An answer to a peer in no swarm is dropped and counted, not an error to the sender.
    c.send(
      announceFrame(hash, peerIdFor(41), {
        to_peer_id: bin(peerIdFor(99)),
        offer_id: bin(Buffer.alloc(20, 1)),
        answer: { type: 'answer', sdp: 'x' },
      }),
    );
    await until(
      () => metricSum(g.t, 'shoal_ws_relay_dropped_total', { kind: 'answer', reason: 'no_peer' }),
      (n) => n === 1,
    );
    c.send(announceFrame(hash, peerIdFor(41), { event: 'started' }));
    expect(await c.next(isAnnounceAnswer)).toMatchObject({ incomplete: 1 });
    expect(
      await metricSum(g.t, 'shoal_requests_total', { protocol: 'ws', outcome: 'rejected' }),
    ).toBe(6);
  }, 60_000);

  it('refuses an upgrade on a path that is not an announce route', async () => {
    await expect(WsClient.open(`ws://${HOST}:${g.httpPort}/scrape`)).rejects.toThrow(/404/);
    await expect(WsClient.open(`ws://${HOST}:${g.httpPort}/announce/a/b`)).rejects.toThrow(/404/);
    expect(
      await metricSum(g.t, 'shoal_ws_connections_refused_total', { reason: 'not_found' }),
    ).toBe(2);
  });
});

describe('WebSocket tracker: limits', () => {
  let g: Awaited<ReturnType<typeof started>>;
  beforeAll(async () => {
    g = await started({
      WS_MAX_CONNECTIONS: '3',
      WS_MAX_MESSAGE_BYTES: '4096',
      WS_MAX_OFFERS: '2',
      WS_MESSAGES_PER_SECOND: '0.01',
      WS_MESSAGE_BURST: '5',
    });
  });
  afterAll(() => g.t.close());

  it('relays at most WS_MAX_OFFERS offers, rate-limits each connection and closes on an oversized message', async () => {
    const hash = hashOf('ws-limits');
    const peers = [await WsClient.open(g.url), await WsClient.open(g.url)];
    const sender = await WsClient.open(g.url);
    try {
      for (const [i, p] of peers.entries()) {
        p.send(announceFrame(hash, peerIdFor(50 + i), { event: 'started' }));
        await p.next(isAnnounceAnswer);
      }
      sender.send(announceFrame(hash, peerIdFor(59), { event: 'started', offers: offers(10) }));
      await sender.next(isAnnounceAnswer);
      for (const p of peers) await p.next(isOffer);
      expect(await metricSum(g.t, 'shoal_ws_relayed_total', { kind: 'offer' })).toBe(2);

      // The fourth connection is over WS_MAX_CONNECTIONS.
      await expect(WsClient.open(g.url)).rejects.toThrow(/503/);
      expect(
        await metricSum(g.t, 'shoal_ws_connections_refused_total', { reason: 'capacity' }),
      ).toBe(1);

      // Burst of 5: the sender used 1; four more pass, the rest are refused.
      for (let i = 0; i < 8; i++) sender.send({ action: 'scrape', info_hash: bin(hash) });
      const answers: Frame[] = [];
      for (let i = 0; i < 8; i++) answers.push(await sender.next());
      expect(answers.filter((f) => f.action === 'scrape' && !isFailure(f))).toHaveLength(4);
      expect(answers.filter(isFailure).map((f) => f['failure reason'])).toEqual(
        Array(4).fill('too many requests from your address, slow down [POLICY_ERR_RATE_LIMITED]'),
      );

      peers[0]!.send('x'.repeat(5000));
      expect(await peers[0]!.closed).toBe(1009);
      expect(await metricSum(g.t, 'shoal_ws_connections_closed_total', { reason: 'too_big' })).toBe(
        1,
      );
    } finally {
      for (const c of [...peers, sender]) c.close();
    }
  }, 60_000);
});

describe('WebSocket tracker: idle connections', () => {
  it('closes a connection that answers no ping, and one that sends nothing', async () => {
    const g = await started({ WS_PING_INTERVAL_SECONDS: '1', WS_IDLE_TIMEOUT_SECONDS: '10' });
    try {
      const deaf = await WsClient.open(g.url, { autoPong: false });
      const quiet = await WsClient.open(g.url);
      // Cut without a close frame (1006) after the ping it left unanswered; the other after 10 s of silence.
      expect(await deaf.closed).toBe(1006);
      expect(await metricSum(g.t, 'shoal_ws_connections_closed_total', { reason: 'pong' })).toBe(1);
      expect(quiet.closeCode).toBeUndefined();
      expect(await quiet.closed).toBe(1000);
      expect(await metricSum(g.t, 'shoal_ws_connections_closed_total', { reason: 'idle' })).toBe(1);
      expect(
        await until(
          () => metricSum(g.t, 'shoal_ws_connections'),
          (n) => n === 0,
        ),
      ).toBe(0);
    } finally {
      await g.t.close();
    }
  }, 60_000);
});

describe('WebSocket tracker: backpressure', () => {
  it('drops offers to a socket that does not read, instead of buffering them', async () => {
    const g = await started({
      WS_MAX_BUFFERED_BYTES: '1024',
      WS_MESSAGES_PER_SECOND: '100000',
      WS_MESSAGE_BURST: '100000',
      WS_MAX_MESSAGE_BYTES: '70000',
    });
    const hash = hashOf('ws-slow');
    const slow = await WsClient.open(g.url);
    const sender = await WsClient.open(g.url);
    try {
      slow.send(announceFrame(hash, peerIdFor(61), { event: 'started' }));
      await slow.next(isAnnounceAnswer);
      // The slow client stops reading: its TCP window fills, then the server's buffer.
      const raw = (slow.socket as unknown as { _socket: { pause(): void } })._socket;
      raw.pause();
      const big = [
        { offer: { type: 'offer', sdp: 'x'.repeat(60_000) }, offer_id: bin(Buffer.alloc(20, 3)) },
      ];
      const sent = 400;
      for (let i = 0; i < sent; i++) {
        sender.send(announceFrame(hash, peerIdFor(62), { offers: big }));
        await sender.next(isAnnounceAnswer);
      }
      const dropped = await metricSum(g.t, 'shoal_ws_relay_dropped_total', {
        reason: 'backpressure',
      });
      const relayed = await metricSum(g.t, 'shoal_ws_relayed_total', { kind: 'offer' });
      expect(dropped).toBeGreaterThan(0);
      expect(dropped + relayed).toBe(sent);
    } finally {
      slow.close();
      sender.close();
      await g.t.close();
    }
  }, 120_000);
});

describe('WebSocket tracker: policy', () => {
  it('applies passkeys and torrent approval to WebSocket announces', async () => {
    const allowed = hashOf('ws-allowed');
    const { createMemoryStore } = await import('@shoal/storage/memory');
    const storage = createMemoryStore({ peerLifetimeSeconds: 1860 });
    const { createPolicyRepository } = await import('@shoal/policy');
    const repo = createPolicyRepository(storage, Date.now);
    await repo.createPasskey({ passkey: 'k'.repeat(32) });
    await repo.addApproval('torrents', 'allow', allowed.toString('hex'));
    const g = await started({ PASSKEY_REQUIRED: 'true', TORRENT_APPROVAL: 'allow' }, { storage });
    try {
      await until(
        () => g.t.gateway.policy?.current,
        (c) => c !== undefined,
      );
      const good = await WsClient.open(`${g.url}/${'k'.repeat(32)}`);
      const none = await WsClient.open(g.url);
      good.send(announceFrame(allowed, peerIdFor(71), { event: 'started' }));
      expect(await good.next(isAnnounceAnswer)).toMatchObject({ incomplete: 1 });
      good.send(announceFrame(hashOf('ws-other'), peerIdFor(71), { event: 'started' }));
      expect((await good.next(isFailure))['failure reason']).toMatch(/POLICY_ERR_TORRENT/);
      none.send(announceFrame(allowed, peerIdFor(72), { event: 'started' }));
      expect((await none.next(isFailure))['failure reason']).toMatch(/POLICY_ERR_.*PASSKEY/);
      good.close();
      none.close();
    } finally {
      await g.t.close();
    }
  }, 60_000);
});

describe('WebSocket tracker: two gateways on one store', () => {
  it('relays an offer from a browser on gateway B to one on gateway A and its answer back', async () => {
    const swarms = new MemoryWsSwarms({ peerLifetimeSeconds: 300 });
    const relay = new LocalRelay();
    const a = await started({}, { webSocket: { swarms, relay, gateway: 'gw-a' } });
    const b = await started({}, { webSocket: { swarms, relay, gateway: 'gw-b' } });
    const hash = hashOf('ws-two');
    const onA = await WsClient.open(a.url);
    const onB = await WsClient.open(b.url);
    try {
      onA.send(announceFrame(hash, peerIdFor(81), { event: 'started' }));
      await onA.next(isAnnounceAnswer);
      onB.send(announceFrame(hash, peerIdFor(82), { event: 'started', offers: offers(1, 'b') }));
      expect(await onB.next(isAnnounceAnswer)).toMatchObject({ incomplete: 2 });
      const offer = await onA.next(isOffer);
      expect(offer.peer_id).toBe(bin(peerIdFor(82)));
      onA.send(
        announceFrame(hash, peerIdFor(81), {
          to_peer_id: offer.peer_id,
          offer_id: offer.offer_id,
          answer: { type: 'answer', sdp: 'from a' },
        }),
      );
      expect(await onB.next(isAnswer)).toMatchObject({ peer_id: bin(peerIdFor(81)) });
      expect(
        await metricSum(a.t, 'shoal_ws_relayed_total', { kind: 'offer', scope: 'remote' }),
      ).toBe(1);
      expect(
        await metricSum(b.t, 'shoal_ws_relayed_total', { kind: 'answer', scope: 'remote' }),
      ).toBe(1);

      // Gateway A goes away without its peers leaving: the first offer routed to it finds it gone and takes its peer out.
      await relay.unlisten('gw-a');
      onB.send(announceFrame(hash, peerIdFor(82), { offers: offers(1, 'again') }));
      await onB.next(isAnnounceAnswer);
      expect(await metricSum(b.t, 'shoal_ws_relay_dropped_total', { reason: 'gone' })).toBe(1);
      expect(swarms.holder(hash, peerIdFor(81))).toBeUndefined();
    } finally {
      onA.close();
      onB.close();
      await a.t.close();
      await b.t.close();
      await swarms.close();
    }
  }, 60_000);

  it('closes its sockets with 1001 when the gateway closes, and their peers leave', async () => {
    const swarms = new MemoryWsSwarms({ peerLifetimeSeconds: 300 });
    const g = await started({}, { webSocket: { swarms, relay: new LocalRelay(), gateway: 'gw' } });
    const hash = hashOf('ws-drain');
    const c = await WsClient.open(g.url);
    c.send(announceFrame(hash, peerIdFor(91), { event: 'started' }));
    await c.next(isAnnounceAnswer);
    expect(swarms.scrape([hash])[0]!.leechers).toBe(1);
    await g.t.close();
    expect(await c.closed).toBe(1001);
    expect(swarms.scrape([hash])[0]!.leechers).toBe(0);
  }, 60_000);
});
