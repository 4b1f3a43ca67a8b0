// Random, truncated and mutated inputs to every decoder: the only thing any of
// them may throw is a ProtocolError (docs/conventions.md "Code": random bytes never throw
// anything but a coded protocol error). Bounded by run counts, a few seconds.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bdecode, bencode } from './bencode.ts';
import { isProtocolError } from './errors.ts';
import { parseAnnounceQuery, parseScrapeQuery, percentDecode } from './http.ts';
import {
  decodeUdpRequest,
  encodeAnnounceRequest,
  encodeConnectRequest,
  encodeScrapeRequest,
} from './udp.ts';

const RUNS = 4000;

function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!isProtocolError(err)) throw err;
    expect(typeof err.code).toBe('string');
    expect(err.failureReason.length).toBeGreaterThan(0);
  }
}

/** A valid sample with some of: bytes replaced, a slice cut out, bytes inserted, a truncation. */
function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(
      valid,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.option(fc.tuple(fc.nat(), fc.nat({ max: 8 }))),
      fc.option(fc.uint8Array({ maxLength: 6 })),
      fc.option(fc.nat()),
    )
    .map(([v, flips, cut, insert, trunc]) => {
      let b = Buffer.from(v);
      for (const [at, byte] of flips) if (b.length > 0) b[at % b.length] = byte;
      if (cut !== null && b.length > 0) {
        const at = cut[0] % b.length;
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + cut[1])]);
      }
      if (insert !== null) {
        const at = b.length > 0 ? (trunc ?? 0) % b.length : 0;
        b = Buffer.concat([b.subarray(0, at), Buffer.from(insert), b.subarray(at)]);
      }
      if (trunc !== null && b.length > 0) b = b.subarray(0, trunc % (b.length + 1));
      return b;
    });
}

const bencodeText = fc
  .array(
    fc.constantFrom('i', 'l', 'd', 'e', '0', '1', '2', '9', ':', '-', 'x', '4:spam', 'i-0e', '00'),
    {
      maxLength: 40,
    },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));
const validBencode = fc
  .jsonValue({ maxDepth: 4 })
  .map((j) =>
    bencode(
      JSON.parse(
        JSON.stringify(j, (_k, v: unknown) =>
          typeof v === 'number'
            ? Number.isSafeInteger(v)
              ? v
              : 0
            : v === null || typeof v === 'boolean'
              ? 0
              : v,
        ),
      ) as never,
    ),
  );

const hash = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((u) => Buffer.from(u));
const validUdp = fc.oneof(
  fc.nat({ max: 0xffffffff }).map((t) => encodeConnectRequest(t)),
  fc.tuple(hash, hash, fc.string({ maxLength: 300 })).map(([ih, pid, url]) =>
    encodeAnnounceRequest(
      Buffer.alloc(8, 1),
      7,
      {
        infoHash: ih,
        peerId: pid,
        port: 6881,
        uploaded: 1n,
        downloaded: 2n,
        left: 3n,
        event: 'started',
        numWant: 50,
        compact: true,
        noPeerId: false,
        key: '0000abcd',
        ip: undefined,
      },
      url,
    ),
  ),
  fc.array(hash, { maxLength: 5 }).map((hs) => encodeScrapeRequest(Buffer.alloc(8, 2), 9, hs)),
);

const queryPiece = fc.constantFrom(
  'info_hash=',
  'peer_id=',
  'port=',
  'left=',
  'uploaded=',
  'downloaded=',
  'numwant=',
  'event=',
  'compact=',
  'no_peer_id',
  'key=',
  'ip=',
  '&',
  '=',
  '%',
  '%4',
  '%41',
  '%zz',
  '+',
  '-',
  '0',
  '65535',
  '99999999999999999999999',
  'a'.repeat(20),
  '%00'.repeat(20),
  'started',
  '\u00ff',
  '\u0100',
  '\ud800',
);
const queryText = fc.oneof(
  fc.array(queryPiece, { maxLength: 30 }).map((p) => p.join('')),
  fc.string({ maxLength: 120, unit: 'binary' }),
);
const validQuery = fc
  .tuple(hash, hash, fc.integer({ min: 0, max: 65535 }))
  .map(([ih, pid, port]) =>
    Buffer.from(
      `info_hash=${[...ih].map((x) => '%' + x.toString(16).padStart(2, '0')).join('')}` +
        `&peer_id=${[...pid].map((x) => '%' + x.toString(16).padStart(2, '0')).join('')}` +
        `&port=${port}&left=0&event=completed&numwant=10&key=k&compact=1`,
      'latin1',
    ),
  );
const mutatedQuery = mutated(validQuery).map((b) => b.toString('latin1'));

describe('fuzz: decoders throw ProtocolError and nothing else', () => {
  it('bdecode', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
          bencodeText,
          mutated(validBencode),
        ),
        (buf) => {
          onlyProtocolErrors(() => bdecode(buf));
          onlyProtocolErrors(() => bdecode(buf, { maxDepth: 2 }));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('decodeUdpRequest, with a transaction id exactly when the header was there', () => {
    const packet = fc.oneof(
      fc.uint8Array({ maxLength: 160 }).map((u) => Buffer.from(u)),
      // Random bodies behind a plausible action, to get past the dispatch.
      fc
        .tuple(fc.uint8Array({ maxLength: 160 }), fc.integer({ min: 0, max: 4 }))
        .map(([u, action]) => {
          const b = Buffer.concat([Buffer.alloc(16), Buffer.from(u)]);
          b.writeUInt32BE(action, 8);
          return b;
        }),
      mutated(validUdp),
    );
    fc.assert(
      fc.property(packet, (buf) => {
        try {
          decodeUdpRequest(buf);
          decodeUdpRequest(buf, { maxScrapeHashes: 2 });
        } catch (err) {
          if (!isProtocolError(err)) throw err;
          expect(err.transactionId).toBe(buf.length >= 16 ? buf.readUInt32BE(12) : undefined);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('parseAnnounceQuery', () => {
    fc.assert(
      fc.property(fc.oneof(queryText, mutatedQuery), (q) => {
        onlyProtocolErrors(() => parseAnnounceQuery(q));
      }),
      { numRuns: RUNS },
    );
  });

  it('parseScrapeQuery', () => {
    fc.assert(
      fc.property(fc.oneof(queryText, mutatedQuery), fc.integer({ min: 0, max: 3 }), (q, max) => {
        onlyProtocolErrors(() => parseScrapeQuery(q, max));
      }),
      { numRuns: RUNS },
    );
  });

  it('percentDecode', () => {
    fc.assert(
      fc.property(fc.oneof(queryText, fc.string({ maxLength: 60 })), (s) => {
        onlyProtocolErrors(() => percentDecode(s));
      }),
      { numRuns: RUNS },
    );
  });
});
