// docs/limits.md "UDP answers": a sender that has not proven its address
// with a valid connection id (BEP 15) never gets an answer larger than the
// packet it sent, so the tracker cannot amplify a spoofed flood. Real UDP
// sockets throughout.
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyError } from '@shoal/policy';
import { describeRefusal } from './tracker/refusal.ts';
import { fitErrorText } from './udp.ts';
import {
  UdpClient,
  announcePacket,
  connectPacket,
  hashOf,
  makeGateway as makeTestGateway,
  scrapePacket,
  udpConnect,
  type TestGateway,
} from '../test/support.ts';

/** Sends every packet from one socket, then collects the answers by transaction id (offset 4). */
async function fire(
  port: number,
  host: string,
  packets: Array<{ kind: string; tid: number; packet: Buffer }>,
  settleMs = 1500,
): Promise<Map<number, Buffer>> {
  const socket: Socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const answers = new Map<number, Buffer>();
  socket.on('message', (msg) => {
    if (msg.length >= 8) answers.set(msg.readUInt32BE(4), msg);
  });
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  try {
    for (let i = 0; i < packets.length; i += 100) {
      for (const p of packets.slice(i, i + 100)) socket.send(p.packet, port, host);
      // Let the gateway drain its receive buffer between bursts.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Wait until answers stop arriving.
    let seen = -1;
    const deadline = performance.now() + 10_000;
    while (seen !== answers.size && performance.now() < deadline) {
      seen = answers.size;
      await new Promise((resolve) => setTimeout(resolve, settleMs / 3));
    }
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
  return answers;
}

function withTid(packet: Buffer, tid: number): Buffer {
  if (packet.length >= 16) packet.writeUInt32BE(tid, 12);
  return packet;
}

// Every case runs on node:dgram and through the batching addon (docs/udp-batch.md).
describe.each(['off', 'on'])('UDP_BATCH_SYSCALLS=%s', (batch) => {
  const makeGateway: typeof makeTestGateway = (env = {}, options) =>
    makeTestGateway({ UDP_BATCH_SYSCALLS: batch, ...env }, options);

  describe('UDP answers to unproven senders', () => {
    let now = Date.now();
    let t: TestGateway;
    let port: number;
    beforeAll(async () => {
      t = makeGateway(
        { HOST: '::', UDP_CONNECTION_ID_MAX_AGE_SECONDS: '600', HTTP_ENABLED: 'false' },
        { clock: () => now },
      );
      port = (await t.gateway.listen()).udpPort ?? 0;
    });
    afterAll(() => t.close());

    it('are never larger than the packet, for every kind of packet without a valid connection id', async () => {
      // An id this client really got, then let expire; and one issued to another address.
      const client = new UdpClient('udp4');
      await client.bind('127.0.0.1');
      const expired = await udpConnect(client, port, '127.0.0.1');
      await client.close();
      const v6 = new UdpClient('udp6');
      await v6.bind('::1');
      const foreign = await udpConnect(v6, port, '::1');
      await v6.close();
      now += 601_000;

      const forged = () => randomBytes(8);
      const info = hashOf('amplify');
      let tid = 0x7000_0000;
      const packets: Array<{ kind: string; tid: number; packet: Buffer }> = [];
      const add = (kind: string, make: (tid: number) => Buffer) => {
        tid++;
        packets.push({ kind, tid, packet: withTid(make(tid), tid) });
      };
      for (let i = 0; i < 20; i++) {
        add('connect without the protocol id', () => randomBytes(16).fill(0, 8, 12));
        add('connect without the protocol id, trailing bytes', () =>
          Buffer.concat([randomBytes(16).fill(0, 8, 12), randomBytes(i)]),
        );
        add('announce, forged id', (x) => announcePacket(forged(), x, { infoHash: info, port: 1 }));
        add('announce, expired id', (x) => announcePacket(expired, x, { infoHash: info, port: 1 }));
        add('announce, id of another address', (x) =>
          announcePacket(foreign, x, { infoHash: info, port: 1 }),
        );
        add('announce with BEP 41 data, forged id', (x) =>
          announcePacket(forged(), x, { infoHash: info, port: 1, urlData: '/announce?x=1' }),
        );
        add('truncated announce, forged id', (x) =>
          announcePacket(forged(), x, { infoHash: info, port: 1 }).subarray(0, 16 + i * 4),
        );
        add('scrape of one hash, forged id', (x) => scrapePacket(forged(), x, [info]));
        add('scrape of one hash, expired id', (x) => scrapePacket(expired, x, [info]));
        add('scrape of 74 hashes, forged id', (x) =>
          scrapePacket(
            forged(),
            x,
            Array.from({ length: 74 }, () => info),
          ),
        );
        add('scrape without hashes, forged id', (x) => scrapePacket(forged(), x, []));
        add('scrape of a cut hash, forged id', (x) =>
          scrapePacket(forged(), x, [info]).subarray(0, 16 + 1 + i),
        );
        add('unknown action', () => {
          const p = randomBytes(16 + i * 3);
          p.writeUInt32BE(4 + i, 8);
          return p;
        });
        add('junk with a transaction id', () => randomBytes(16 + ((i * 7) % 100)));
      }
      const answers = await fire(port, '127.0.0.1', packets);

      const answeredKinds = new Set<string>();
      for (const { kind, tid: id, packet } of packets) {
        const answer = answers.get(id);
        if (answer === undefined) continue;
        answeredKinds.add(kind);
        expect(answer.length, `${kind}: ${packet.length}-byte packet`).toBeLessThanOrEqual(
          packet.length,
        );
        // Still a BEP 15 error with a message, so a client with a stale id learns to reconnect.
        expect(answer.readUInt32BE(0), kind).toBe(3);
        expect(answer.length, kind).toBeGreaterThan(8);
      }
      // Every kind that carries a transaction id was answered at least once (nothing was silently dropped).
      const kinds = new Set(packets.map((p) => p.kind));
      expect([...kinds].filter((k) => !answeredKinds.has(k))).toEqual([]);
    }, 60_000);

    it('keeps the full text for a sender that proved its address, even when the packet is malformed', async () => {
      const client = new UdpClient('udp4');
      await client.bind('127.0.0.1');
      try {
        const id = await udpConnect(client, port, '127.0.0.1');
        const x = client.tid();
        const short = announcePacket(id, x, { infoHash: hashOf('proven'), port: 1 }).subarray(
          0,
          20,
        );
        const answer = await client.request(short, x, port, '127.0.0.1');
        expect(answer?.subarray(8).toString()).toMatch(
          /^packet too short.*\[PROTO_ERR_SHORT_PACKET\]$/,
        );
        expect(answer?.length).toBeGreaterThan(short.length);
      } finally {
        await client.close();
      }
    });

    it('drops packets too short to carry a transaction id', async () => {
      const packets = Array.from({ length: 16 }, (_, n) => ({
        kind: `${n}-byte packet`,
        tid: n,
        packet: connectPacket(0xabcdef00).subarray(0, n),
      }));
      const answers = await fire(port, '127.0.0.1', packets, 600);
      expect(answers.size).toBe(0);
    });
  });

  describe('UDP connect refused by the rate limiter', () => {
    let t: TestGateway;
    let port: number;
    beforeAll(async () => {
      t = makeGateway({
        HTTP_ENABLED: 'false',
        RATE_LIMIT_CONNECTS_PER_SECOND: '0.001',
        RATE_LIMIT_CONNECT_BURST: '1',
      });
      port = (await t.gateway.listen()).udpPort ?? 0;
    });
    afterAll(() => t.close());

    it('answers no larger than the 16-byte connect', async () => {
      const packets = Array.from({ length: 5 }, (_, n) => ({
        kind: 'connect',
        tid: 0x100 + n,
        packet: connectPacket(0x100 + n),
      }));
      const answers = await fire(port, '127.0.0.1', packets);
      const refused = [...answers.values()].filter((a) => a.readUInt32BE(0) === 3);
      expect(refused.length).toBeGreaterThanOrEqual(1);
      for (const a of answers.values()) expect(a.length).toBeLessThanOrEqual(16);
      const reason = describeRefusal(new PolicyError('POLICY_ERR_RATE_LIMITED')).reason;
      expect(refused[0]?.subarray(8).toString()).toBe(fitErrorText(reason, 8));
    });
  });
});

describe('fitErrorText', () => {
  it('keeps what fits: the whole text, else the reason without its code, else the reason cut', () => {
    expect(fitErrorText('bad connection id [PROTO_ERR_BAD_CONNECTION_ID]', 90)).toBe(
      'bad connection id [PROTO_ERR_BAD_CONNECTION_ID]',
    );
    expect(fitErrorText('bad connection id [PROTO_ERR_BAD_CONNECTION_ID]', 28)).toBe(
      'bad connection id',
    );
    expect(fitErrorText('bad connection id [PROTO_ERR_BAD_CONNECTION_ID]', 8)).toBe('bad conn');
    // Never a split character: the byte budget holds for any text.
    const text = fitErrorText('ééééé [X]', 5);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(5);
    expect(text).toBe('éé');
  });
});
