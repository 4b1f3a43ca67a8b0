import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { thrown } from '../test/thrown.ts';
import type { AnnounceRequest } from './types.ts';
import {
  decodeUdpRequest,
  encodeAnnounceResponseInto,
  encodeConnectRequest,
  encodeConnectResponseInto,
  encodeErrorResponseInto,
  encodeScrapeResponseInto,
  encodeUdpRequest,
} from './udp.ts';
import type { UdpRequest } from './udp.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** What an encoder writes into a fresh buffer, cut to the length it returns. */
function answer(encodeInto: (out: Buffer) => number): Buffer {
  const out = Buffer.alloc(1500, 0xee);
  return out.subarray(0, encodeInto(out));
}

// BEP 15 announce, field by field.
const ANNOUNCE = hex(
  `
  8a3c1f0e2b4d6a79                          # connection_id
  00000001                                  # action = announce
  1a2b3c4d                                  # transaction_id
  123456789abcdef123456789abcdef123456789a  # info_hash
  2d5452333030302d6162636465666768696a6b6c  # peer_id "-TR3000-abcdefghijkl"
  0000000000100000                          # downloaded = 1 MiB
  0000000000a00000                          # left = 10 MiB
  0000000000000400                          # uploaded = 1024
  00000002                                  # event = started
  00000000                                  # ip = default
  deadbeef                                  # key
  ffffffff                                  # num_want = -1
  1ae1                                      # port = 6881
`.replace(/#.*$/gm, ''),
);

describe('decodeUdpRequest', () => {
  it('decodes a connect request', () => {
    expect(decodeUdpRequest(hex('0000041727101980 00000000 cafebabe'))).toEqual({
      action: 'connect',
      transactionId: 0xcafebabe,
    });
  });

  it('decodes a BEP 15 announce field by field', () => {
    expect(ANNOUNCE).toHaveLength(98);
    expect(decodeUdpRequest(ANNOUNCE)).toEqual({
      action: 'announce',
      connectionId: hex('8a3c1f0e2b4d6a79'),
      transactionId: 0x1a2b3c4d,
      urlData: undefined,
      request: {
        infoHash: hex('123456789abcdef123456789abcdef123456789a'),
        peerId: Buffer.from('-TR3000-abcdefghijkl'),
        port: 6881,
        uploaded: 1024n,
        downloaded: 1048576n,
        left: 10485760n,
        event: 'started',
        paused: false,
        numWant: undefined,
        compact: true,
        noPeerId: false,
        key: 'deadbeef',
        ip: undefined,
      } satisfies AnnounceRequest,
    });
  });

  it('reads the ip field, num_want, every event and an unsigned -1 left', () => {
    const p = Buffer.from(ANNOUNCE);
    p.writeUInt32BE(0xc0a80101, 84);
    p.writeInt32BE(30, 92);
    p.writeBigInt64BE(-1n, 64);
    const events = ['none', 'completed', 'started', 'stopped'];
    for (let e = 0; e < 4; e++) {
      p.writeUInt32BE(e, 80);
      const r = decodeUdpRequest(p);
      if (r.action !== 'announce') throw new Error('not an announce');
      expect(r.request).toMatchObject({
        ip: '192.168.1.1',
        numWant: 30,
        left: 2n ** 64n - 1n,
        event: events[e],
      });
    }
  });

  it('collects BEP 41 URLData across pieces, skipping NOP and stopping at EndOfOptions', () => {
    const opts = Buffer.concat([
      hex('02 0c'),
      Buffer.from('/announce?pa'),
      hex('01'),
      hex('02 0b'),
      Buffer.from('sskey=abcde'),
      hex('00 02 03'),
      Buffer.from('zzz'),
    ]);
    const r = decodeUdpRequest(Buffer.concat([ANNOUNCE, opts]));
    expect(r.action === 'announce' && r.urlData).toBe('/announce?passkey=abcde');
  });

  it('keeps what came before a truncated or unknown option', () => {
    const piece = Buffer.concat([hex('02 03'), Buffer.from('/an')]);
    const cases: Array<[Buffer, string | undefined]> = [
      [Buffer.concat([piece, hex('02 09'), Buffer.from('nounce')]), '/an'],
      [Buffer.concat([piece, hex('02')]), '/an'],
      [Buffer.concat([piece, hex('7f 01 41 02 01 41')]), '/an'],
      [hex('01 01 01'), undefined],
    ];
    for (const [opts, url] of cases) {
      const r = decodeUdpRequest(Buffer.concat([ANNOUNCE, opts]));
      expect(r.action === 'announce' && r.urlData).toBe(url);
    }
  });

  it('decodes a scrape of two hashes', () => {
    const h1 = Buffer.alloc(20, 1);
    const h2 = Buffer.alloc(20, 2);
    expect(
      decodeUdpRequest(Buffer.concat([hex('0102030405060708 00000002 00000009'), h1, h2])),
    ).toEqual({
      action: 'scrape',
      connectionId: hex('0102030405060708'),
      transactionId: 9,
      infoHashes: [h1, h2],
    });
  });

  it('throws without a transaction id below 16 bytes, so the gateway drops the packet', () => {
    for (let n = 0; n < 16; n++) {
      const err = thrown(() => decodeUdpRequest(Buffer.alloc(n)));
      expect(err.code).toBe('PROTO_ERR_SHORT_PACKET');
      expect(err.transactionId).toBeUndefined();
    }
  });

  it('carries the transaction id of a 16-byte header so the gateway can answer an error', () => {
    const cases: Array<[Buffer, string]> = [
      [hex('0000041727101981 00000000 00000007'), 'PROTO_ERR_BAD_PROTOCOL_ID'],
      [hex('0000041727101980 00000004 00000007'), 'PROTO_ERR_BAD_ACTION'],
      [hex('0000041727101980 00000003 00000007'), 'PROTO_ERR_BAD_ACTION'],
      [ANNOUNCE.subarray(0, 97), 'PROTO_ERR_SHORT_PACKET'],
      [hex('0102030405060708 00000002 00000007'), 'PROTO_ERR_NO_HASHES'],
      [
        Buffer.concat([hex('0102030405060708 00000002 00000007'), Buffer.alloc(21)]),
        'PROTO_ERR_BAD_PACKET_LENGTH',
      ],
    ];
    for (const [packet, code] of cases) {
      const p = Buffer.from(packet);
      p.writeUInt32BE(7, 12);
      const err = thrown(() => decodeUdpRequest(p));
      expect([err.code, err.transactionId]).toEqual([code, 7]);
    }
    const badEvent = Buffer.from(ANNOUNCE);
    badEvent.writeUInt32BE(4, 80);
    expect(thrown(() => decodeUdpRequest(badEvent))).toMatchObject({
      code: 'PROTO_ERR_BAD_EVENT',
      transactionId: 0x1a2b3c4d,
    });
  });

  it('enforces maxScrapeHashes', () => {
    const p = Buffer.concat([hex('0102030405060708 00000002 00000001'), Buffer.alloc(60)]);
    expect(thrown(() => decodeUdpRequest(p, { maxScrapeHashes: 2 })).code).toBe(
      'PROTO_ERR_TOO_MANY_HASHES',
    );
    expect(decodeUdpRequest(p, { maxScrapeHashes: 3 }).action).toBe('scrape');
  });
});

describe('UDP responses', () => {
  it('encodes connect, announce, scrape and error answers byte for byte', () => {
    expect(
      answer((out) => encodeConnectResponseInto(out, 0x1a2b3c4d, hex('0011223344556677'))),
    ).toEqual(hex('00000000 1a2b3c4d 0011223344556677'));
    expect(
      answer((out) =>
        encodeAnnounceResponseInto(out, 0x1a2b3c4d, 1800, 3, 5, hex('7f000001 1ae1')),
      ),
    ).toEqual(hex('00000001 1a2b3c4d 00000708 00000003 00000005 7f0000011ae1'));
    const v6 = hex('20010db8000000000000000000000001 1ae1');
    expect(answer((out) => encodeAnnounceResponseInto(out, 1, 60, 0, 1, v6))).toEqual(
      Buffer.concat([hex('00000001 00000001 0000003c 00000000 00000001'), v6]),
    );
    expect(
      answer((out) =>
        encodeScrapeResponseInto(out, 9, [
          { complete: 5, downloaded: 10, incomplete: 2 },
          { complete: 0, downloaded: 0, incomplete: 0 },
        ]),
      ),
    ).toEqual(hex('00000002 00000009 00000005 0000000a 00000002 00000000 00000000 00000000'));
    expect(answer((out) => encodeErrorResponseInto(out, 7, 'bad connection id'))).toEqual(
      Buffer.concat([hex('00000003 00000007'), Buffer.from('bad connection id')]),
    );
    expect(answer((out) => encodeErrorResponseInto(out, 7, 'é'))).toEqual(
      hex('00000003 00000007 c3a9'),
    );
  });

  it('write into a reused buffer, each answer exactly its own bytes, and refuse a short one', () => {
    const out = Buffer.alloc(1500, 0xee);
    const peers = Buffer.alloc(60, 3);
    const n = encodeAnnounceResponseInto(out, 5, 1800, 1, 2, peers);
    expect(out.subarray(0, n)).toEqual(
      Buffer.concat([hex('00000001 00000005 00000708 00000001 00000002'), peers]),
    );
    const c = encodeConnectResponseInto(out, 5, Buffer.alloc(8, 1));
    expect(out.subarray(0, c)).toEqual(hex('00000000 00000005 0101010101010101'));
    const counts = [{ complete: 1, downloaded: 2, incomplete: 3 }];
    const s = encodeScrapeResponseInto(out, 5, counts);
    expect(out.subarray(0, s)).toEqual(hex('00000002 00000005 00000001 00000002 00000003'));
    const small = Buffer.alloc(30, 0xee);
    expect(() => encodeAnnounceResponseInto(small, 5, 1800, 1, 2, peers)).toThrow(RangeError);
    expect(small.every((x) => x === 0xee)).toBe(true);
  });

  it('saturates counts above 2^32 - 1 instead of wrapping them', () => {
    const out = answer((o) => encodeAnnounceResponseInto(o, 0, 0, 2 ** 40, 0, Buffer.alloc(0)));
    expect(out.readUInt32BE(12)).toBe(0xffffffff);
  });
});

// Requests in the decoder's normal form.
const buf = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((u) => Buffer.from(u));
const announceRequest: fc.Arbitrary<AnnounceRequest> = fc.record({
  infoHash: buf(20),
  peerId: buf(20),
  port: fc.integer({ min: 0, max: 65535 }),
  uploaded: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  downloaded: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  left: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  event: fc.constantFrom('none', 'completed', 'started', 'stopped'),
  paused: fc.constant(false),
  numWant: fc.option(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { nil: undefined }),
  compact: fc.constant(true),
  noPeerId: fc.constant(false),
  key: fc.integer({ min: 0, max: 0xffffffff }).map((k) => k.toString(16).padStart(8, '0')),
  ip: fc.option(
    fc.ipV4().filter((ip) => ip !== '0.0.0.0'),
    { nil: undefined },
  ),
});
const udpRequest: fc.Arbitrary<UdpRequest> = fc.oneof(
  fc.record({
    action: fc.constant('connect' as const),
    transactionId: fc.nat({ max: 0xffffffff }),
  }),
  fc.record({
    action: fc.constant('announce' as const),
    connectionId: buf(8),
    transactionId: fc.nat({ max: 0xffffffff }),
    request: announceRequest,
    urlData: fc.option(
      fc.uint8Array({ maxLength: 700 }).map((u) => Buffer.from(u).toString('latin1')),
      {
        nil: undefined,
      },
    ),
  }),
  fc.record({
    action: fc.constant('scrape' as const),
    connectionId: buf(8),
    transactionId: fc.nat({ max: 0xffffffff }),
    infoHashes: fc.array(buf(20), { minLength: 1, maxLength: 74 }),
  }),
);

describe('UDP request properties', () => {
  it('decode(encode(x)) = x', () => {
    fc.assert(
      fc.property(udpRequest, (r) => {
        expect(decodeUdpRequest(encodeUdpRequest(r))).toEqual(r);
      }),
      { numRuns: 500 },
    );
  });

  it('the connect request is the BEP 15 magic', () => {
    expect(encodeConnectRequest(0xcafebabe)).toEqual(hex('0000041727101980 00000000 cafebabe'));
  });
});
