// storage-api's side of the split topology's WebSocket peers
// (docs/webtorrent.md "The split topology"), over a real port with raw
// frames: the batch's ws ops keep a swarm and name the gateway holding each
// peer; a gateway's relay stream needs the gateways' token; a message for a
// gateway whose stream is held is pushed on it, one for a gateway nobody
// holds is answered gone; a stream that sends junk is closed; a stream that
// stops reading loses messages, counted, and storage-api keeps answering.
import { once } from 'node:events';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  decodeStreamFrame,
  encodeSendFrame,
  type RelayMessage,
  type StreamFrame,
} from '@shoal/storage/ws';
import { buildStorageApi, type StorageApi } from './app.ts';
import { postBatch, testConfig } from '../test/support.ts';

const TOKEN = 'ws-relay-test-token-0123456789';
let app: StorageApi;
let base: string;

beforeAll(async () => {
  app = buildStorageApi({
    config: testConfig(TOKEN, { WS_RELAY_MAX_BUFFERED_BYTES: String(64 << 10) }),
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
  });
  const { port } = await app.listen();
  base = `127.0.0.1:${port}`;
});
afterAll(async () => {
  await app?.close();
});

/** A raw stream with every frame it received. */
class Stream {
  readonly ws: WebSocket;
  readonly frames: StreamFrame[] = [];
  constructor(gateway: string, token = TOKEN) {
    this.ws = new WebSocket(`ws://${base}/v1/ws-relay/${gateway}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    this.ws.on('message', (data: Buffer) => {
      const f = decodeStreamFrame(data);
      if (f !== undefined) this.frames.push(f);
    });
    this.ws.on('error', () => undefined);
  }

  async opened(): Promise<this> {
    await once(this.ws, 'open');
    return this;
  }

  async next<T extends StreamFrame['type']>(type: T): Promise<StreamFrame & { type: T }> {
    for (let i = 0; i < 600; i++) {
      const at = this.frames.findIndex((f) => f.type === type);
      if (at !== -1) return this.frames.splice(at, 1)[0] as StreamFrame & { type: T };
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${type} frame`);
  }
}

const message = (frame: string): RelayMessage => ({
  kind: 'offer',
  infoHash: Buffer.alloc(20, 1),
  peerId: Buffer.alloc(20, 2),
  frame,
  sentAt: 1,
});

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${adminPort()}/metrics`).then((r) => r.text());
  let sum = 0;
  for (const line of text.split('\n'))
    if (
      (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) &&
      Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))
    )
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

function adminPort(): number {
  const address = app.admin.server.address();
  if (address === null || typeof address === 'string') throw new Error('no admin port');
  return address.port;
}

describe('storage-api: WebSocket swarms and relay streams', () => {
  it('keeps WebSocket swarms with the batch ws ops: the holder of each peer, recipients, leave', async () => {
    const h = Buffer.alloc(20, 7);
    const id = (n: number) => Buffer.alloc(20, n);
    const common = {
      op: 'wsAnnounce' as const,
      infoHash: h,
      event: 'started' as const,
      lifetimeSeconds: 300,
    };
    const [first, second] = await postBatch(`http://${base}`, TOKEN, [
      { ...common, peerId: id(1), seeder: false, numWant: 5, gateway: 'gw-a' },
      { ...common, peerId: id(2), seeder: true, numWant: 5, gateway: 'gw-b' },
    ]);
    expect(first).toMatchObject({
      ok: true,
      op: 'wsAnnounce',
      seeders: 0,
      leechers: 1,
      targets: [],
    });
    expect(second).toMatchObject({
      ok: true,
      seeders: 1,
      leechers: 1,
      targets: [{ peerId: id(1), gateway: 'gw-a' }],
    });
    expect(
      await postBatch(`http://${base}`, TOKEN, [
        { op: 'wsHolder', infoHash: h, peerId: id(2) },
        { op: 'wsScrape', infoHashes: [h] },
        // A peer another gateway holds stays.
        { op: 'wsLeave', gateway: 'gw-a', peers: [{ infoHash: h, peerId: id(2) }] },
      ]),
    ).toEqual([
      { ok: true, op: 'wsHolder', gateway: 'gw-b' },
      { ok: true, op: 'wsScrape', counts: [{ seeders: 1, leechers: 1, downloaded: 0 }] },
      { ok: true, op: 'wsLeave' },
    ]);
    await postBatch(`http://${base}`, TOKEN, [
      { op: 'wsLeave', gateway: 'gw-b', peers: [{ infoHash: h, peerId: id(2) }] },
    ]);
    expect(
      await postBatch(`http://${base}`, TOKEN, [{ op: 'wsHolder', infoHash: h, peerId: id(2) }]),
    ).toEqual([{ ok: true, op: 'wsHolder' }]);
  });

  it('refuses a stream without the token (401) or with a bad gateway id (404)', async () => {
    for (const [url, token, status] of [
      [`ws://${base}/v1/ws-relay/gw-x`, 'wrong-token-0123456789', 401],
      [`ws://${base}/v1/ws-relay/bad%20id`, TOKEN, 404],
    ] as const) {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
      ws.on('error', () => undefined);
      const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }];
      expect(res.statusCode).toBe(status);
      ws.terminate();
    }
  });

  it('pushes a message on the stream of its gateway, and answers gone for a gateway nobody holds', async () => {
    const a = await new Stream('gw-a').opened();
    const b = await new Stream('gw-b').opened();
    a.ws.send(
      encodeSendFrame(1, [
        { gateway: 'gw-b', message: message('{"to":"b"}') },
        { gateway: 'gw-nobody', message: message('{"to":"nobody"}') },
      ]),
    );
    expect(await a.next('ack')).toEqual({ type: 'ack', seq: 1, gone: [false, true] });
    expect(await b.next('deliver')).toEqual({ type: 'deliver', messages: [message('{"to":"b"}')] });
    expect(await metric('shoal_ws_relay_stream_messages_total', { outcome: 'gone' })).toBe(1);
    a.ws.close();
    b.ws.close();
  });

  it('closes a stream that sends junk with 1002, and keeps the others', async () => {
    const a = await new Stream('gw-junk').opened();
    const b = await new Stream('gw-ok').opened();
    a.ws.send(Buffer.from([9, 9, 9]));
    const [code] = (await once(a.ws, 'close')) as [number];
    expect(code).toBe(1002);
    b.ws.send(encodeSendFrame(5, [{ gateway: 'gw-ok', message: message('{}') }]));
    expect(await b.next('ack')).toEqual({ type: 'ack', seq: 5, gone: [false] });
    b.ws.close();
  });

  it('drops and counts the messages for a stream that stops reading, and keeps answering its senders', async () => {
    const slow = await new Stream('gw-slow').opened();
    const sender = await new Stream('gw-sender').opened();
    // The slow gateway reads nothing more: what storage-api writes piles up in its buffers.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = 'x'.repeat(60_000);
    let seq = 100;
    for (let round = 0; round < 300; round++) {
      sender.ws.send(encodeSendFrame(++seq, [{ gateway: 'gw-slow', message: message(big) }]));
      await sender.next('ack');
      if ((await metric('shoal_ws_relay_stream_messages_total', { outcome: 'dropped' })) > 0) break;
    }
    expect(
      await metric('shoal_ws_relay_stream_messages_total', { outcome: 'dropped' }),
    ).toBeGreaterThan(0);
    // Other streams are served as before.
    sender.ws.send(encodeSendFrame(seq + 1, [{ gateway: 'gw-sender', message: message('{}') }]));
    expect(await sender.next('ack')).toMatchObject({ gone: [false] });
    expect(await sender.next('deliver')).toMatchObject({ messages: [message('{}')] });
    slow.ws.terminate();
    sender.ws.close();
  }, 120_000);
});
