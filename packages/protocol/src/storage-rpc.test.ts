import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { thrown } from '../test/thrown.ts';
import { isProtocolError, ProtocolError } from './errors.ts';
import type { ProtocolErrorCode } from './errors.ts';
import {
  decodeBatchRequest,
  decodeBatchResponse,
  encodeBatchRequest,
  encodeBatchResponse,
  peekBatchVersion,
  STORAGE_RPC_VERSION,
} from './storage-rpc.ts';
import type { RpcAnnounce, RpcOp, RpcResult } from './storage-rpc.ts';

const hex = (s: string) => Buffer.from(s.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');
const LIMITS = { maxOps: 1000, maxScrapeHashes: 255 };

const thrownCode = (fn: () => unknown): ProtocolErrorCode => thrown(fn).code;

const HASH_A = Buffer.alloc(20, 0xaa);
const HASH_B = Buffer.alloc(20, 0xbb);
const PEER_ID = Buffer.from('-qB4650-abcdefghijkl');

const ANNOUNCE_V4: RpcAnnounce = {
  op: 'announce',
  infoHash: HASH_A,
  peerId: PEER_ID,
  family: 4,
  address: Buffer.from([10, 0, 0, 1]),
  port: 6881,
  seeder: true,
  event: 'completed',
  numWant: 50,
  withPeerIds: false,
};
const ANNOUNCE_V6: RpcAnnounce = {
  ...ANNOUNCE_V4,
  family: 6,
  address: hex('20010db8000000000000000000000001'),
  seeder: false,
  partialSeed: true,
  event: 'started',
  numWant: 200,
  withPeerIds: true,
  keyHash: hex('0102030405060708'),
};
const SCRAPE: RpcOp = { op: 'scrape', infoHashes: [HASH_A, HASH_B] };

const REQUEST = hex(`
  534842 04 0003                            # "SHB", version 4, 3 ops
  01                                        # announce
  ${HASH_A.toString('hex')}                 # info_hash
  ${PEER_ID.toString('hex')}                # peer_id
  04 0a000001 1ae1                          # family 4, 10.0.0.1, port 6881
  01 01 0032                                # flags seeder, event completed, numWant 50
  01                                        # announce
  ${HASH_A.toString('hex')}
  ${PEER_ID.toString('hex')}
  06 20010db8000000000000000000000001 1ae1  # family 6, 2001:db8::1, port 6881
  0e 02 00c8                                # flags withPeerIds + partial seed + key hash, event started, numWant 200
  0102030405060708                          # key hash
  02 02                                     # scrape, 2 hashes
  ${HASH_A.toString('hex')}
  ${HASH_B.toString('hex')}
`);

const RESULTS: RpcResult[] = [
  {
    ok: true,
    op: 'announce',
    seeders: 3,
    leechers: 1,
    downloaded: 7,
    partialSeeds: 1,
    peers: hex('0a0000021ae2 0a0000031ae3'),
    peerIds: undefined,
  },
  {
    ok: true,
    op: 'announce',
    seeders: 1,
    leechers: 0,
    downloaded: 0,
    peers: hex('20010db8000000000000000000000002 1ae2'),
    peerIds: [PEER_ID],
  },
  { ok: false, code: 'STORE_ERR_UNAVAILABLE' },
];

const RESPONSE = hex(`
  534852 04 0003                            # "SHR", version 3, 3 results
  00 00000003 00000001 00000007 00000001    # ok, seeders 3, leechers 1, downloaded 7, 1 partial seed
  0002 0a0000021ae2 0a0000031ae3 00         # 2 IPv4 peers, no ids
  00 00000001 00000000 00000000 ffffffff    # ok, 1 seeder, partial seeds unknown
  0001 20010db80000000000000000000000021ae2 # 1 IPv6 peer
  01 ${PEER_ID.toString('hex')}             # with its id
  01 15 ${Buffer.from('STORE_ERR_UNAVAILABLE').toString('hex')}  # error, 21 bytes of code
`);

describe('storage batch codec: golden bytes', () => {
  it('encodes a request byte for byte', () => {
    expect(encodeBatchRequest([ANNOUNCE_V4, ANNOUNCE_V6, SCRAPE]).toString('hex')).toBe(
      REQUEST.toString('hex'),
    );
  });

  it('decodes the same request back', () => {
    expect(decodeBatchRequest(REQUEST, LIMITS)).toEqual([ANNOUNCE_V4, ANNOUNCE_V6, SCRAPE]);
  });

  it('encodes and decodes a response against its ops', () => {
    const ops = [ANNOUNCE_V4, ANNOUNCE_V6, SCRAPE];
    expect(encodeBatchResponse(RESULTS, ops).toString('hex')).toBe(RESPONSE.toString('hex'));
    expect(decodeBatchResponse(RESPONSE, ops)).toEqual(RESULTS);
  });

  it('encodes a scrape result as n * four u32, partial seeds last', () => {
    const bytes = encodeBatchResponse([
      {
        ok: true,
        op: 'scrape',
        counts: [
          { seeders: 1, leechers: 2, downloaded: 3, partialSeeds: 1 },
          { seeders: 0, leechers: 0, downloaded: 0 },
        ],
      },
    ]);
    expect(bytes.toString('hex')).toBe(
      hex(
        '534852 04 0001 00 02 00000001 00000002 00000003 00000001 00000000 00000000 00000000 ffffffff',
      ).toString('hex'),
    );
  });

  it('an empty batch is six bytes', () => {
    expect(encodeBatchRequest([]).toString('hex')).toBe('534842040000');
    expect(decodeBatchRequest(Buffer.from('534842040000', 'hex'), LIMITS)).toEqual([]);
  });

  it('decoded request buffers are copies, not views of the body', () => {
    const body = Buffer.from(REQUEST);
    const [op] = decodeBatchRequest(body, LIMITS);
    body.fill(0);
    expect((op as RpcAnnounce).infoHash).toEqual(HASH_A);
  });
});

describe('storage batch codec: WebSocket ops (version 4)', () => {
  const WS_OPS: RpcOp[] = [
    {
      op: 'wsAnnounce',
      infoHash: HASH_A,
      peerId: PEER_ID,
      seeder: true,
      event: 'started',
      numWant: 5,
      lifetimeSeconds: 300,
      gateway: 'gw-a',
    },
    { op: 'wsScrape', infoHashes: [HASH_B] },
    { op: 'wsHolder', infoHash: HASH_A, peerId: PEER_ID },
    { op: 'wsLeave', gateway: 'gw-a', peers: [{ infoHash: HASH_B, peerId: PEER_ID }] },
  ];
  const gw = (s: string): string =>
    `${s.length.toString(16).padStart(2, '0')} ${Buffer.from(s).toString('hex')}`;
  const WS_REQUEST = hex(`
    534842 04 0004
    03 ${HASH_A.toString('hex')} ${PEER_ID.toString('hex')}
    01 02 0005 0000012c ${gw('gw-a')}       # seeder, started, numWant 5, 300 s, gateway
    04 01 ${HASH_B.toString('hex')}         # wsScrape, 1 hash
    05 ${HASH_A.toString('hex')} ${PEER_ID.toString('hex')}
    06 ${gw('gw-a')} 0001 ${HASH_B.toString('hex')} ${PEER_ID.toString('hex')}
  `);
  const WS_RESULTS: RpcResult[] = [
    {
      ok: true,
      op: 'wsAnnounce',
      seeders: 1,
      leechers: 2,
      downloaded: 3,
      targets: [{ peerId: PEER_ID, gateway: 'gw-b' }],
    },
    { ok: true, op: 'wsScrape', counts: [{ seeders: 4, leechers: 5, downloaded: 6 }] },
    { ok: true, op: 'wsHolder' },
    { ok: true, op: 'wsLeave' },
  ];
  const WS_RESPONSE = hex(`
    534852 04 0004
    00 00000001 00000002 00000003 0001 ${PEER_ID.toString('hex')} ${gw('gw-b')}
    00 01 00000004 00000005 00000006
    00 00                                   # no holder
    00                                      # left
  `);

  it('encodes and decodes the WebSocket ops and their results byte for byte', () => {
    expect(encodeBatchRequest(WS_OPS).toString('hex')).toBe(WS_REQUEST.toString('hex'));
    expect(decodeBatchRequest(WS_REQUEST, LIMITS)).toEqual(WS_OPS);
    expect(encodeBatchResponse(WS_RESULTS, WS_OPS).toString('hex')).toBe(
      WS_RESPONSE.toString('hex'),
    );
    expect(decodeBatchResponse(WS_RESPONSE, WS_OPS)).toEqual(WS_RESULTS);
  });

  it('refuses a gateway id outside the pattern and a lifetime of 0, alone', () => {
    const bad = { ...(WS_OPS[0] as RpcOp & { op: 'wsAnnounce' }) };
    expect(thrownCode(() => encodeBatchRequest([{ ...bad, gateway: 'has space' }]))).toBe(
      'PROTO_ERR_RPC_BAD_FIELD',
    );
    expect(thrownCode(() => encodeBatchRequest([{ ...bad, lifetimeSeconds: 0 }]))).toBe(
      'PROTO_ERR_RPC_BAD_FIELD',
    );
    const zeroLife = Buffer.from(WS_REQUEST);
    zeroLife.writeUInt32BE(0, 6 + 1 + 40 + 4);
    expect(thrownCode(() => decodeBatchRequest(zeroLife, LIMITS))).toBe('PROTO_ERR_RPC_BAD_FIELD');
    // A holder result naming a bad gateway travels as that op's error.
    const r = decodeBatchResponse(
      encodeBatchResponse(
        [WS_RESULTS[0]!, { ok: true, op: 'wsHolder', gateway: 'no way' }],
        [WS_OPS[0]!, WS_OPS[2]!],
      ),
      [WS_OPS[0]!, WS_OPS[2]!],
    );
    expect(r).toEqual([WS_RESULTS[0], { ok: false, code: 'PROTO_ERR_RPC_BAD_FIELD' }]);
  });
});

describe('storage batch codec: refusals', () => {
  it('another version is PROTO_ERR_RPC_VERSION, readable with peekBatchVersion', () => {
    const v2 = Buffer.from(REQUEST);
    v2[3] = 1;
    expect(peekBatchVersion(v2)).toBe(1);
    expect(peekBatchVersion(REQUEST)).toBe(STORAGE_RPC_VERSION);
    expect(thrownCode(() => decodeBatchRequest(v2, LIMITS))).toBe('PROTO_ERR_RPC_VERSION');
    const r2 = Buffer.from(RESPONSE);
    r2[3] = 1;
    expect(thrownCode(() => decodeBatchResponse(r2, [ANNOUNCE_V4, ANNOUNCE_V6, SCRAPE]))).toBe(
      'PROTO_ERR_RPC_VERSION',
    );
  });

  it('a response is not a request and the other way round', () => {
    expect(thrownCode(() => decodeBatchRequest(RESPONSE, LIMITS))).toBe('PROTO_ERR_RPC_BAD_MAGIC');
    expect(thrownCode(() => decodeBatchResponse(REQUEST, []))).toBe('PROTO_ERR_RPC_BAD_MAGIC');
  });

  it('more ops than the limit, before reading them', () => {
    const header = hex('534842 04 ffff');
    expect(thrownCode(() => decodeBatchRequest(header, LIMITS))).toBe('PROTO_ERR_RPC_TOO_MANY_OPS');
    expect(thrownCode(() => decodeBatchRequest(REQUEST, { ...LIMITS, maxOps: 2 }))).toBe(
      'PROTO_ERR_RPC_TOO_MANY_OPS',
    );
  });

  it('a count the body cannot hold is truncated, before allocating', () => {
    expect(thrownCode(() => decodeBatchRequest(hex('534842 04 03e8'), LIMITS))).toBe(
      'PROTO_ERR_RPC_TRUNCATED',
    );
  });

  it('every truncation of a valid request or response is a coded error', () => {
    const ops = [ANNOUNCE_V4, ANNOUNCE_V6, SCRAPE];
    for (let n = 0; n < REQUEST.length; n++) {
      expect(
        isProtocolError(catchAny(() => decodeBatchRequest(REQUEST.subarray(0, n), LIMITS))),
      ).toBe(true);
    }
    for (let n = 0; n < RESPONSE.length; n++) {
      expect(
        isProtocolError(catchAny(() => decodeBatchResponse(RESPONSE.subarray(0, n), ops))),
      ).toBe(true);
    }
  });

  it('trailing bytes, unknown op, family, event and flags', () => {
    expect(thrownCode(() => decodeBatchRequest(Buffer.concat([REQUEST, hex('00')]), LIMITS))).toBe(
      'PROTO_ERR_RPC_TRAILING_DATA',
    );
    const at = (offset: number, byte: number) => {
      const b = Buffer.from(REQUEST);
      b[offset] = byte;
      return b;
    };
    expect(thrownCode(() => decodeBatchRequest(at(6, 7), LIMITS))).toBe('PROTO_ERR_RPC_BAD_OP');
    expect(thrownCode(() => decodeBatchRequest(at(47, 5), LIMITS))).toBe('PROTO_ERR_RPC_BAD_FIELD');
    expect(thrownCode(() => decodeBatchRequest(at(54, 16), LIMITS))).toBe(
      'PROTO_ERR_RPC_BAD_FIELD',
    );
    expect(thrownCode(() => decodeBatchRequest(at(55, 4), LIMITS))).toBe('PROTO_ERR_RPC_BAD_FIELD');
  });

  it('scrape with 0 hashes or more than allowed', () => {
    const zero = hex(`534842 04 0001 02 00 ${HASH_A.toString('hex')}`);
    expect(thrownCode(() => decodeBatchRequest(zero, LIMITS))).toBe('PROTO_ERR_RPC_BAD_FIELD');
    expect(thrownCode(() => decodeBatchRequest(REQUEST, { ...LIMITS, maxScrapeHashes: 1 }))).toBe(
      'PROTO_ERR_RPC_TOO_MANY_HASHES',
    );
  });

  it('a response that does not match the ops sent', () => {
    expect(thrownCode(() => decodeBatchResponse(RESPONSE, [ANNOUNCE_V4]))).toBe(
      'PROTO_ERR_RPC_MISMATCH',
    );
    const scrapeResult = encodeBatchResponse([
      { ok: true, op: 'scrape', counts: [{ seeders: 1, leechers: 2, downloaded: 3 }] },
    ]);
    expect(thrownCode(() => decodeBatchResponse(scrapeResult, [SCRAPE]))).toBe(
      'PROTO_ERR_RPC_MISMATCH',
    );
    expect(thrownCode(() => encodeBatchResponse(RESULTS, [SCRAPE, SCRAPE]))).toBe(
      'PROTO_ERR_RPC_MISMATCH',
    );
  });

  it("a result of another kind than its op travels as that op's PROTO_ERR_RPC_MISMATCH", () => {
    const ops = [SCRAPE, SCRAPE, SCRAPE];
    expect(decodeBatchResponse(encodeBatchResponse(RESULTS, ops), ops)).toEqual([
      { ok: false, code: 'PROTO_ERR_RPC_MISMATCH' },
      { ok: false, code: 'PROTO_ERR_RPC_MISMATCH' },
      { ok: false, code: 'STORE_ERR_UNAVAILABLE' },
    ]);
  });

  it('refuses to encode ops the wire cannot carry', () => {
    const bad: Array<Partial<RpcAnnounce>> = [
      { infoHash: Buffer.alloc(19) },
      { peerId: Buffer.alloc(21) },
      { address: Buffer.alloc(16) },
      { port: 65536 },
      { numWant: -1 },
    ];
    for (const patch of bad) {
      expect(thrownCode(() => encodeBatchRequest([{ ...ANNOUNCE_V4, ...patch }]))).toBe(
        'PROTO_ERR_RPC_BAD_FIELD',
      );
    }
    expect(thrownCode(() => encodeBatchRequest([{ op: 'scrape', infoHashes: [] }]))).toBe(
      'PROTO_ERR_RPC_BAD_FIELD',
    );
  });

  it('refuses to guess the family of 18-byte peer lists without the ops: that result is an error', () => {
    const result: RpcResult = {
      ok: true,
      op: 'announce',
      seeders: 1,
      leechers: 0,
      downloaded: 0,
      peers: Buffer.alloc(18),
      peerIds: undefined,
    };
    expect(decodeBatchResponse(encodeBatchResponse([result]), [ANNOUNCE_V6])).toEqual([
      { ok: false, code: 'PROTO_ERR_RPC_BAD_FIELD' },
    ]);
    expect(
      decodeBatchResponse(encodeBatchResponse([result], [ANNOUNCE_V6]), [ANNOUNCE_V6]),
    ).toEqual([result]);
    expect(
      decodeBatchResponse(encodeBatchResponse([result], [ANNOUNCE_V4]), [ANNOUNCE_V4]),
    ).toEqual([result]);
  });

  it('clamps counts into u32', () => {
    const big: RpcResult = {
      ok: true,
      op: 'scrape',
      counts: [{ seeders: 2 ** 40, leechers: -1, downloaded: 5 }],
    };
    expect(
      decodeBatchResponse(encodeBatchResponse([big]), [{ op: 'scrape', infoHashes: [HASH_A] }]),
    ).toEqual([
      { ok: true, op: 'scrape', counts: [{ seeders: 0xffffffff, leechers: 0, downloaded: 5 }] },
    ]);
  });
});

describe('storage batch codec: one result fails alone', () => {
  const good = (n: number): RpcResult => ({
    ok: true,
    op: 'announce',
    seeders: n,
    leechers: 1,
    downloaded: 0,
    peers: hex('0a0000021ae2'),
    peerIds: undefined,
  });

  it('a store answer without peer ids travels as hasIds=0, also when the op asked for ids', () => {
    const op: RpcAnnounce = { ...ANNOUNCE_V4, withPeerIds: true };
    const bytes = encodeBatchResponse([good(1)], [op]);
    expect(bytes.subarray(-1)).toEqual(Buffer.from([0]));
    expect(decodeBatchResponse(bytes, [op])).toEqual([good(1)]);
  });

  it('peer ids not parallel to the peers fail that op with PROTO_ERR_RPC_BAD_FIELD, never the batch', () => {
    // The shape storage-api once sent for a store that keeps no peer ids: [] beside 1 peer.
    const op: RpcAnnounce = { ...ANNOUNCE_V4, withPeerIds: true };
    const ops: RpcOp[] = Array.from({ length: 10 }, () => op);
    const results = ops.map((_, i) => good(i));
    results[4] = { ...good(4), peerIds: [] } as RpcResult;
    const invalid: Array<[number, string]> = [];
    const bytes = encodeBatchResponse(results, ops, {
      onInvalid: (i, err) => invalid.push([i, err.code]),
    });
    expect(invalid).toEqual([[4, 'PROTO_ERR_RPC_BAD_FIELD']]);
    const decoded = decodeBatchResponse(bytes, ops);
    expect(decoded[4]).toEqual({ ok: false, code: 'PROTO_ERR_RPC_BAD_FIELD' });
    expect(decoded.filter((_, i) => i !== 4)).toEqual(results.filter((_, i) => i !== 4));
  });

  it('any one poisoned result among valid ones: the others arrive intact, it arrives as a coded error', () => {
    const poisons: Array<(r: RpcResult & { op: 'announce' }) => RpcResult> = [
      (r) => ({ ...r, peerIds: [] }),
      (r) => ({ ...r, peerIds: [Buffer.alloc(19)] }),
      (r) => ({ ...r, peers: Buffer.alloc(7) }),
      () => ({ ok: true, op: 'scrape', counts: [{ seeders: 1, leechers: 1, downloaded: 1 }] }),
      () => ({ ok: true, op: 'scrape', counts: [] }),
      () => ({ ok: false, code: 'not a code' }),
      () => ({ ok: false, code: '' }),
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.nat(),
        fc.constantFrom(...poisons),
        (n, at, poison) => {
          const ops: RpcOp[] = Array.from({ length: n }, () => ANNOUNCE_V4);
          const results = ops.map((_, i) => good(i));
          const bad = at % n;
          results[bad] = poison(good(bad) as RpcResult & { op: 'announce' });
          const decoded = decodeBatchResponse(encodeBatchResponse(results, ops), ops);
          const failed = decoded[bad];
          expect(failed?.ok === false && failed.code).toMatch(/^PROTO_ERR_RPC_/);
          expect(decoded.filter((_, i) => i !== bad)).toEqual(results.filter((_, i) => i !== bad));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a scrape result with another number of counts than the op has hashes is that op's mismatch", () => {
    const ops: RpcOp[] = [SCRAPE, ANNOUNCE_V4];
    const bytes = encodeBatchResponse(
      [{ ok: true, op: 'scrape', counts: [{ seeders: 1, leechers: 0, downloaded: 0 }] }, good(2)],
      ops,
    );
    expect(decodeBatchResponse(bytes, ops)).toEqual([
      { ok: false, code: 'PROTO_ERR_RPC_MISMATCH' },
      good(2),
    ]);
  });
});

function catchAny(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return new Error('did not throw');
}

const bytes = (n: number) =>
  fc.uint8Array({ minLength: n, maxLength: n }).map((u) => Buffer.from(u));
const u32 = fc.integer({ min: 0, max: 0xffffffff });

const announceEvent = fc.constantFrom(
  'none' as const,
  'completed' as const,
  'started' as const,
  'stopped' as const,
);

const announceOp: fc.Arbitrary<RpcAnnounce> = fc
  .record({
    infoHash: bytes(20),
    peerId: bytes(20),
    family: fc.constantFrom(4 as const, 6 as const),
    port: fc.integer({ min: 0, max: 0xffff }),
    seeder: fc.boolean(),
    event: announceEvent,
    numWant: fc.integer({ min: 0, max: 0xffff }),
    withPeerIds: fc.boolean(),
    partial: fc.boolean(),
    addr: bytes(16),
    keyHash: fc.option(bytes(8), { nil: undefined }),
  })
  .map(({ addr, partial, keyHash, ...r }) => ({
    op: 'announce' as const,
    ...r,
    // Decoded ops carry partialSeed and keyHash only when set.
    ...(partial ? { partialSeed: true } : {}),
    ...(keyHash === undefined ? {} : { keyHash }),
    address: r.family === 4 ? addr.subarray(0, 4) : addr,
  }));

const scrapeOp: fc.Arbitrary<RpcOp> = fc
  .array(bytes(20), { minLength: 1, maxLength: 40 })
  .map((infoHashes) => ({ op: 'scrape' as const, infoHashes }));

const gatewayId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/);
const wsOp: fc.Arbitrary<RpcOp> = fc.oneof(
  fc.record({
    op: fc.constant('wsAnnounce' as const),
    infoHash: bytes(20),
    peerId: bytes(20),
    seeder: fc.boolean(),
    event: announceEvent,
    numWant: fc.integer({ min: 0, max: 0xffff }),
    lifetimeSeconds: fc.integer({ min: 1, max: 0xffffffff }),
    gateway: gatewayId,
  }),
  fc
    .array(bytes(20), { minLength: 1, maxLength: 10 })
    .map((infoHashes) => ({ op: 'wsScrape' as const, infoHashes })),
  fc.record({ op: fc.constant('wsHolder' as const), infoHash: bytes(20), peerId: bytes(20) }),
  fc.record({
    op: fc.constant('wsLeave' as const),
    gateway: gatewayId,
    peers: fc.array(fc.record({ infoHash: bytes(20), peerId: bytes(20) }), {
      minLength: 1,
      maxLength: 5,
    }),
  }),
);

const opsArb = fc.array(fc.oneof(announceOp, scrapeOp, wsOp), { maxLength: 30 });

// Built once: building a stringMatching arbitrary per op made these properties
// take tens of seconds (a timeout on a loaded machine).
const errorResult: fc.Arbitrary<RpcResult> = fc
  .stringMatching(/^[A-Z0-9_]{1,40}$/)
  .map((code): RpcResult => ({ ok: false, code }));

function resultFor(op: RpcOp): fc.Arbitrary<RpcResult> {
  const error = errorResult;
  switch (op.op) {
    case 'wsAnnounce':
      return fc.oneof(
        error,
        fc
          .record({
            seeders: u32,
            leechers: u32,
            downloaded: u32,
            targets: fc.array(fc.record({ peerId: bytes(20), gateway: gatewayId }), {
              maxLength: 6,
            }),
          })
          .map((r): RpcResult => ({ ok: true, op: 'wsAnnounce', ...r })),
      );
    case 'wsScrape':
      return fc.oneof(
        error,
        fc
          .array(fc.record({ seeders: u32, leechers: u32, downloaded: u32 }), {
            minLength: op.infoHashes.length,
            maxLength: op.infoHashes.length,
          })
          .map((counts): RpcResult => ({ ok: true, op: 'wsScrape', counts })),
      );
    case 'wsHolder':
      return fc.oneof(
        error,
        fc.constant<RpcResult>({ ok: true, op: 'wsHolder' }),
        gatewayId.map((gateway): RpcResult => ({ ok: true, op: 'wsHolder', gateway })),
      );
    case 'wsLeave':
      return fc.oneof(error, fc.constant<RpcResult>({ ok: true, op: 'wsLeave' }));
    case 'announce':
    case 'scrape':
      break;
  }
  if (op.op === 'scrape') {
    const ok = fc
      .array(fc.record({ seeders: u32, leechers: u32, downloaded: u32 }), {
        minLength: op.infoHashes.length,
        maxLength: op.infoHashes.length,
      })
      .map((counts): RpcResult => ({ ok: true, op: 'scrape', counts }));
    return fc.oneof(ok, error);
  }
  const size = op.family === 4 ? 6 : 18;
  const ok = fc.nat({ max: 20 }).chain((n) =>
    fc
      .record({
        seeders: u32,
        leechers: u32,
        downloaded: u32,
        peers: bytes(n * size),
        peerIds: op.withPeerIds
          ? fc.array(bytes(20), { minLength: n, maxLength: n })
          : fc.constant(undefined),
      })
      .map((r): RpcResult => ({ ok: true, op: 'announce', ...r })),
  );
  return fc.oneof(ok, error);
}

describe('storage batch codec: properties', () => {
  it('decode(encode(ops)) = ops', () => {
    fc.assert(
      fc.property(opsArb, (ops) => {
        expect(decodeBatchRequest(encodeBatchRequest(ops), LIMITS)).toEqual(ops);
      }),
      { numRuns: 500 },
    );
  });

  it('decodeResponse(encodeResponse(results, ops), ops) = results', () => {
    const arb = opsArb.chain((ops) => fc.tuple(fc.constant(ops), fc.tuple(...ops.map(resultFor))));
    fc.assert(
      fc.property(arb, ([ops, results]) => {
        expect(decodeBatchResponse(encodeBatchResponse(results, ops), ops)).toEqual(results);
      }),
      { numRuns: 500 },
    );
  });

  it('random and mutated bodies throw nothing but ProtocolError', () => {
    const ops = [ANNOUNCE_V4, ANNOUNCE_V6, SCRAPE];
    const mutate = fc
      .tuple(
        fc.constantFrom(REQUEST, RESPONSE),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 4 }),
        fc.nat(),
      )
      .map(([base, flips, cut]) => {
        const b = Buffer.from(base);
        for (const [at, v] of flips) b[at % b.length] = v;
        return b.subarray(0, cut % (b.length + 1));
      });
    const random = fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u));
    const withMagic = fc
      .tuple(fc.constantFrom('53484204', '53485204'), fc.uint8Array({ maxLength: 200 }))
      .map(([h, u]) => Buffer.concat([Buffer.from(h, 'hex'), u]));
    fc.assert(
      fc.property(fc.oneof(mutate, random, withMagic), (body) => {
        for (const fn of [
          () => decodeBatchRequest(body, LIMITS),
          () => decodeBatchResponse(body, ops),
        ]) {
          const err = catchAny(fn);
          if (err instanceof Error && err.message === 'did not throw') continue;
          expect(err).toBeInstanceOf(ProtocolError);
        }
      }),
      { numRuns: 4000 },
    );
  });
});
