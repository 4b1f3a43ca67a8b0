import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bdecode } from './bencode.ts';
import { codeOf } from '../test/thrown.ts';
import { isProtocolError } from './errors.ts';
import type { ProtocolErrorCode } from './errors.ts';
import {
  LEFT_UNKNOWN,
  encodeAnnounceResponse,
  encodeFailure,
  encodeScrapeResponse,
  parseAddressParam,
  parseAnnounceQuery,
  parseScrapeQuery,
  percentDecode,
} from './http.ts';
import type { HttpAnnounceResponse } from './http.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const latin1 = (s: string) => Buffer.from(s, 'latin1');

/** Percent-encodes every byte, the way libtorrent does for bytes outside [A-Za-z0-9-_.~]. */
const pct = (buf: Buffer) => [...buf].map((x) => '%' + x.toString(16).padStart(2, '0')).join('');

// A qBittorrent 4.6 announce as it appears after '?' (libtorrent leaves
// unreserved bytes of the hash unescaped).
const QBT_QUERY =
  'info_hash=%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9a&peer_id=-qB4650-A1b2C3d4E5f6' +
  '&port=6881&uploaded=0&downloaded=0&left=1048576&corrupt=0&key=5A3C1B2D&event=started' +
  '&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0';

describe('percentDecode', () => {
  it('turns %XX into raw bytes and + into a space, keeping every byte value', () => {
    expect(percentDecode('%00%ff%FFa+b%2B')).toEqual(
      Buffer.from([0, 0xff, 0xff, 0x61, 0x20, 0x62, 0x2b]),
    );
    expect(percentDecode('')).toEqual(Buffer.alloc(0));
  });

  it.each(['%', '%4', '%g0', 'a%', 'a%%41', '%4x', '\u0100'])('rejects %j', (s) => {
    expect(codeOf(() => percentDecode(s))).toBe('PROTO_ERR_BAD_ENCODING');
  });

  it('is the inverse of percent-encoding every byte', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (u) => {
        expect(percentDecode(pct(Buffer.from(u)))).toEqual(Buffer.from(u));
      }),
    );
  });
});

describe('parseAnnounceQuery', () => {
  it('parses a real client announce', () => {
    expect(parseAnnounceQuery(QBT_QUERY)).toEqual({
      infoHash: hex('123456789abcdef123456789abcdef123456789a'),
      peerId: Buffer.from('-qB4650-A1b2C3d4E5f6'),
      port: 6881,
      uploaded: 0n,
      downloaded: 0n,
      left: 1048576n,
      event: 'started',
      paused: false,
      numWant: 200,
      compact: true,
      noPeerId: true,
      key: '5A3C1B2D',
      ip: undefined,
    });
  });

  it('applies the documented defaults when only the required parameters are sent', () => {
    const r = parseAnnounceQuery(`info_hash=${'a'.repeat(20)}&peer_id=${'b'.repeat(20)}&port=0`);
    expect(r).toMatchObject({
      port: 0,
      uploaded: 0n,
      downloaded: 0n,
      left: LEFT_UNKNOWN,
      event: 'none',
      numWant: undefined,
      compact: true,
      noPeerId: false,
      key: undefined,
      ip: undefined,
    });
  });

  const base = `info_hash=${'a'.repeat(20)}&peer_id=${'b'.repeat(20)}&port=1`;

  it('reads events, compact=0, negative numwant, 64-bit counters, ip and encoded key', () => {
    expect(parseAnnounceQuery(`${base}&event=completed`).event).toBe('completed');
    expect(parseAnnounceQuery(`${base}&event=stopped`).event).toBe('stopped');
    expect(parseAnnounceQuery(`${base}&event=`).event).toBe('none');
    expect(parseAnnounceQuery(`${base}&event=empty`).event).toBe('none');
    // BEP 21: paused is a state beside the event, not an event of its own.
    expect(parseAnnounceQuery(`${base}&event=paused`)).toMatchObject({
      event: 'none',
      paused: true,
    });
    expect(parseAnnounceQuery(`${base}&event=started`).paused).toBe(false);
    expect(parseAnnounceQuery(`${base}&event=paused&event=started`).paused).toBe(true);
    expect(parseAnnounceQuery(`${base}&compact=0`).compact).toBe(false);
    expect(parseAnnounceQuery(`${base}&numwant=-1`).numWant).toBeUndefined();
    expect(parseAnnounceQuery(`${base}&numwant=0`).numWant).toBe(0);
    expect(parseAnnounceQuery(`${base}&left=18446744073709551615`).left).toBe(2n ** 64n - 1n);
    expect(parseAnnounceQuery(`${base}&uploaded=%31%32`).uploaded).toBe(12n);
    expect(parseAnnounceQuery(`${base}&ip=2001%3Adb8%3A%3A1`).ip).toBe('2001:db8::1');
    expect(parseAnnounceQuery(`${base}&key=a+b%26`).key).toBe('a b&');
    expect(parseAnnounceQuery(`${base}&no_peer_id=0`).noPeerId).toBe(false);
    expect(parseAnnounceQuery(`${base}&no_peer_id`).noPeerId).toBe(true);
  });

  it('lets the first occurrence win except for info_hash, which is refused twice', () => {
    expect(parseAnnounceQuery(`${base}&port=2&left=0&left=5`)).toMatchObject({ port: 1, left: 0n });
    expect(codeOf(() => parseAnnounceQuery(`${base}&info_hash=${'c'.repeat(20)}`))).toBe(
      'PROTO_ERR_DUPLICATE_PARAM',
    );
  });

  it('ignores unknown and value-less parameters', () => {
    expect(parseAnnounceQuery(`foo&&=x&${base}&info_hashx=1&supportcrypto=1&`).port).toBe(1);
  });

  it.each<[string, ProtocolErrorCode]>([
    ['', 'PROTO_ERR_MISSING_PARAM'],
    [`peer_id=${'b'.repeat(20)}&port=1`, 'PROTO_ERR_MISSING_PARAM'],
    [`info_hash=${'a'.repeat(20)}&port=1`, 'PROTO_ERR_MISSING_PARAM'],
    [`info_hash=${'a'.repeat(20)}&peer_id=${'b'.repeat(20)}`, 'PROTO_ERR_MISSING_PARAM'],
    [`info_hash=${'a'.repeat(19)}&peer_id=${'b'.repeat(20)}&port=1`, 'PROTO_ERR_BAD_INFO_HASH'],
    [`info_hash=${'a'.repeat(21)}&peer_id=${'b'.repeat(20)}&port=1`, 'PROTO_ERR_BAD_INFO_HASH'],
    // Fastify's parser would hand over this 60-char text; decoded it is 20 bytes, so it must pass
    // only when raw; 21 encoded bytes must fail.
    [`info_hash=${'%aa'.repeat(21)}&peer_id=${'b'.repeat(20)}&port=1`, 'PROTO_ERR_BAD_INFO_HASH'],
    [`info_hash=${'a'.repeat(20)}&peer_id=${'b'.repeat(19)}&port=1`, 'PROTO_ERR_BAD_PEER_ID'],
    [`info_hash=%zz${'a'.repeat(19)}&peer_id=${'b'.repeat(20)}&port=1`, 'PROTO_ERR_BAD_ENCODING'],
    [`${base.replace('port=1', 'port=65536')}`, 'PROTO_ERR_BAD_PORT'],
    [`${base.replace('port=1', 'port=-1')}`, 'PROTO_ERR_BAD_PORT'],
    [`${base.replace('port=1', 'port=')}`, 'PROTO_ERR_BAD_PORT'],
    [`${base.replace('port=1', 'port=1x')}`, 'PROTO_ERR_BAD_PORT'],
    [`${base}&left=-1`, 'PROTO_ERR_BAD_NUMBER'],
    [`${base}&left=`, 'PROTO_ERR_BAD_NUMBER'],
    [`${base}&uploaded=1e3`, 'PROTO_ERR_BAD_NUMBER'],
    [`${base}&downloaded=18446744073709551616`, 'PROTO_ERR_BAD_NUMBER'],
    [`${base}&numwant=ten`, 'PROTO_ERR_BAD_NUMBER'],
    [`${base}&numwant=-`, 'PROTO_ERR_BAD_NUMBER'],
    [`${base}&event=start`, 'PROTO_ERR_BAD_EVENT'],
    [`${base}&event=STARTED`, 'PROTO_ERR_BAD_EVENT'],
  ])('rejects %j with %s', (q, code) => {
    expect(codeOf(() => parseAnnounceQuery(q))).toBe(code);
  });

  it('names the missing parameter in the failure reason a client sees', () => {
    try {
      parseAnnounceQuery(`info_hash=${'a'.repeat(20)}&port=1`);
      expect.unreachable();
    } catch (err) {
      expect(isProtocolError(err) && err.failureReason).toBe('missing parameter: peer_id');
    }
  });

  it('round-trips any info_hash and peer_id bytes, however they are escaped', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.integer({ min: 0, max: 65535 }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        (ih, pid, port, left) => {
          const hash = Buffer.from(ih);
          // Mix raw unreserved bytes and escapes like real clients do.
          const enc = [...hash]
            .map((x) =>
              /[A-Za-z0-9._~-]/.test(String.fromCharCode(x))
                ? String.fromCharCode(x)
                : pct(Buffer.from([x])),
            )
            .join('');
          const r = parseAnnounceQuery(
            `left=${left}&info_hash=${enc}&port=${port}&peer_id=${pct(Buffer.from(pid))}`,
          );
          expect(r.infoHash).toEqual(hash);
          expect(r.peerId).toEqual(Buffer.from(pid));
          expect(r.port).toBe(port);
          expect(r.left).toBe(left);
        },
      ),
    );
  });
});

describe('BEP 7 ipv4= and ipv6=', () => {
  const base = `info_hash=${'a'.repeat(20)}&peer_id=${'b'.repeat(20)}&port=1`;

  it('keeps the first of each as sent and never judges it while parsing the query', () => {
    // libtorrent: one escaped parameter per listen address, address only.
    const q = parseAnnounceQuery(
      `${base}&ipv6=2001%3Adb8%3A%3A1&ipv6=2001%3Adb8%3A%3A2&ipv4=192.0.2.7&ipv4=junk`,
    );
    expect(q).toMatchObject({ ipv6: '2001%3Adb8%3A%3A1', ipv4: '192.0.2.7' });
    expect(parseAddressParam(q.ipv6!, 6).bytes).toEqual(hex('20010db8000000000000000000000001'));
    expect(parseAnnounceQuery(`${base}&ipv4=%zz`).ipv4).toBe('%zz');
    expect(codeOf(() => parseAddressParam('%zz', 4))).toBe('PROTO_ERR_BAD_ADDRESS_PARAM');
    expect(parseAnnounceQuery(base)).not.toHaveProperty('ipv4');
    expect(parseAnnounceQuery(base)).not.toHaveProperty('ipv6');
  });

  it.each<[string, 4 | 6, string, number | undefined]>([
    ['192.0.2.7', 4, 'c0000207', undefined],
    ['192.0.2.7:6881', 4, 'c0000207', 6881],
    ['2001:db8::1', 6, '20010db8000000000000000000000001', undefined],
    ['[2001:db8::1]:51413', 6, '20010db8000000000000000000000001', 51413],
    ['%5B2001%3Adb8%3A%3A1%5D%3A51413', 6, '20010db8000000000000000000000001', 51413],
    ['[2001:db8::1]', 6, '20010db8000000000000000000000001', undefined],
    ['::1', 6, '00000000000000000000000000000001', undefined],
  ])('reads %j as an address of IPv%i', (text, family, bytes, port) => {
    expect(parseAddressParam(text, family)).toEqual({ family, bytes: hex(bytes), port });
  });

  it.each<[string, 4 | 6]>([
    ['', 4],
    ['junk', 4],
    ['2001:db8::1', 4],
    ['192.0.2.7:', 4],
    ['192.0.2.7:0', 4],
    ['192.0.2.7:65536', 4],
    ['192.0.2.7:+80', 4],
    ['0.0.0.0', 4],
    ['192.0.2.07', 4],
    ['', 6],
    ['192.0.2.7', 6],
    ['::ffff:192.0.2.7', 6],
    ['::', 6],
    ['[2001:db8::1', 6],
    ['[2001:db8::1]6881', 6],
    ['[2001:db8::1]:', 6],
    ['[2001:db8::1]:99999', 6],
    ['2001:db8::1:6881:1:2:3:4', 6],
    ['[192.0.2.7]:80', 6],
  ])('refuses %j for IPv%i with a coded error naming the parameter', (text, family) => {
    expect(codeOf(() => parseAddressParam(text, family))).toBe('PROTO_ERR_BAD_ADDRESS_PARAM');
    try {
      parseAddressParam(text, family);
    } catch (err) {
      expect(isProtocolError(err) && err.failureReason).toBe(
        `invalid address parameter: ipv${family}`,
      );
    }
  });

  it('throws nothing but its coded error on any text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.constantFrom<4 | 6>(4, 6), (text, family) => {
        const code = codeOf(() => parseAddressParam(text, family));
        expect(['no error', 'PROTO_ERR_BAD_ADDRESS_PARAM']).toContain(code);
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseScrapeQuery', () => {
  const h1 = 'a'.repeat(20);
  const h2 = '%00'.repeat(20);
  it('returns every info_hash in order, each once', () => {
    expect(parseScrapeQuery(`info_hash=${h1}&x=1&info_hash=${h2}&info_hash=${h1}`, 10)).toEqual([
      latin1(h1),
      Buffer.alloc(20),
    ]);
  });
  it('refuses a full scrape, too many hashes and malformed ones', () => {
    expect(codeOf(() => parseScrapeQuery('', 10))).toBe('PROTO_ERR_NO_HASHES');
    expect(codeOf(() => parseScrapeQuery('passkey=1', 10))).toBe('PROTO_ERR_NO_HASHES');
    expect(codeOf(() => parseScrapeQuery(`info_hash=${h1}&info_hash=${h2}`, 1))).toBe(
      'PROTO_ERR_TOO_MANY_HASHES',
    );
    expect(codeOf(() => parseScrapeQuery(`info_hash=abc`, 10))).toBe('PROTO_ERR_BAD_INFO_HASH');
  });
});

describe('encodeAnnounceResponse', () => {
  const counts = { interval: 1800, minInterval: 900, complete: 2, incomplete: 1, downloaded: 7 };
  const v4peers = hex('7f000001 1ae1  0a000002 c8d5'); // 127.0.0.1:6881, 10.0.0.2:51413

  const compactV4: HttpAnnounceResponse = {
    ...counts,
    family: 4,
    peers: v4peers,
    peerIds: undefined,
    compact: true,
    noPeerId: false,
  };

  it('builds the compact IPv4 answer byte for byte', () => {
    const out = encodeAnnounceResponse(compactV4);
    expect(out).toEqual(
      Buffer.concat([
        latin1(
          'd8:completei2e10:downloadedi7e10:incompletei1e8:intervali1800e12:min intervali900e5:peers12:',
        ),
        v4peers,
        latin1('e'),
      ]),
    );
  });

  it('always sends peers, empty for IPv6, and puts IPv6 peers in peers6 (aquatic#82, BEP 7)', () => {
    const v6peer = hex('20010db8000000000000000000000001 1ae1');
    const out = encodeAnnounceResponse({
      ...counts,
      family: 6,
      peers: v6peer,
      peerIds: undefined,
      compact: true,
      noPeerId: false,
      warning: 'slow down',
    });
    expect(out).toEqual(
      Buffer.concat([
        latin1(
          'd8:completei2e10:downloadedi7e10:incompletei1e8:intervali1800e12:min intervali900e',
        ),
        latin1('5:peers0:6:peers618:'),
        v6peer,
        latin1('15:warning message9:slow downe'),
      ]),
    );
    const empty = encodeAnnounceResponse({
      ...counts,
      family: 4,
      peers: Buffer.alloc(0),
      peerIds: undefined,
      compact: true,
      noPeerId: false,
    });
    expect(empty.toString('latin1')).toContain('5:peers0:e');
  });

  it('carries peers and peers6 together when the peer has an address of each family (BEP 7)', () => {
    const v6peer = hex('20010db8000000000000000000000001 1ae1');
    const both = Buffer.concat([
      latin1('d8:completei2e10:downloadedi7e10:incompletei1e8:intervali1800e12:min intervali900e'),
      latin1('5:peers12:'),
      v4peers,
      latin1('6:peers618:'),
      v6peer,
      latin1('e'),
    ]);
    expect(encodeAnnounceResponse({ ...compactV4, otherPeers: v6peer })).toEqual(both);
    // The same answer whichever family the request came from.
    expect(
      encodeAnnounceResponse({ ...compactV4, family: 6, peers: v6peer, otherPeers: v4peers }),
    ).toEqual(both);
    // An empty other family still names its key: the client asked for it.
    expect(
      encodeAnnounceResponse({ ...compactV4, otherPeers: Buffer.alloc(0) }).toString('latin1'),
    ).toContain('6:peers60:e');
    const ids = [Buffer.from('-TR3000-aaaaaaaaaaaa'), Buffer.from('-UT3550-bbbbbbbbbbbb')];
    const v6id = Buffer.from('-qB4650-cccccccccccc');
    const dicts = encodeAnnounceResponse({
      ...compactV4,
      compact: false,
      peerIds: ids,
      otherPeers: v6peer,
      otherPeerIds: [v6id],
    });
    expect(dicts.toString('latin1')).toBe(
      'd8:completei2e10:downloadedi7e10:incompletei1e8:intervali1800e12:min intervali900e5:peersl' +
        'd2:ip9:127.0.0.17:peer id20:-TR3000-aaaaaaaaaaaa4:porti6881ee' +
        'd2:ip8:10.0.0.27:peer id20:-UT3550-bbbbbbbbbbbb4:porti51413ee' +
        'd2:ip11:2001:db8::17:peer id20:-qB4650-cccccccccccc4:porti6881eeee',
    );
  });

  it('carries BEP 24 external ip as 4 or 16 raw bytes, between downloaded and incomplete', () => {
    expect(encodeAnnounceResponse({ ...compactV4, externalIp: hex('c0000201') })).toEqual(
      Buffer.concat([
        latin1('d8:completei2e10:downloadedi7e11:external ip4:'),
        hex('c0000201'),
        latin1('10:incompletei1e8:intervali1800e12:min intervali900e5:peers12:'),
        v4peers,
        latin1('e'),
      ]),
    );
    // Every byte value survives, in compact and non-compact answers alike.
    const ip6 = Buffer.from(Array.from({ length: 16 }, (_, i) => 0xf0 + i));
    for (const compact of [true, false]) {
      const out = encodeAnnounceResponse({ ...compactV4, family: 6, compact, externalIp: ip6 });
      expect((bdecode(out) as Record<string, unknown>)['external ip']).toEqual(ip6);
    }
    expect(() => encodeAnnounceResponse({ ...compactV4, externalIp: Buffer.alloc(5) })).toThrow(
      /external ip/,
    );
  });

  it('builds the non-compact answer with peer ids unless no_peer_id', () => {
    const ids = [Buffer.from('-TR3000-aaaaaaaaaaaa'), Buffer.from('-UT3550-bbbbbbbbbbbb')];
    const r: HttpAnnounceResponse = {
      ...counts,
      family: 4,
      peers: v4peers,
      peerIds: ids,
      compact: false,
      noPeerId: false,
    };
    expect(encodeAnnounceResponse(r).toString('latin1')).toBe(
      'd8:completei2e10:downloadedi7e10:incompletei1e8:intervali1800e12:min intervali900e5:peersl' +
        'd2:ip9:127.0.0.17:peer id20:-TR3000-aaaaaaaaaaaa4:porti6881ee' +
        'd2:ip8:10.0.0.27:peer id20:-UT3550-bbbbbbbbbbbb4:porti51413eeee',
    );
    expect(encodeAnnounceResponse({ ...r, noPeerId: true }).toString('latin1')).toContain(
      '5:peersld2:ip9:127.0.0.14:porti6881eed2:ip8:10.0.0.24:porti51413eeee',
    );
    const v6 = encodeAnnounceResponse({
      ...r,
      family: 6,
      peers: hex('20010db8000000000000000000000001 0050'),
      peerIds: undefined,
    });
    expect(v6.toString('latin1')).toContain('5:peersld2:ip11:2001:db8::14:porti80eee');
  });

  it('produces canonical bencode a generic decoder reads back', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<4 | 6>(4, 6),
        fc.integer({ min: 0, max: 30 }),
        fc.boolean(),
        fc.boolean(),
        fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
        (family, n, compact, noPeerId, m) => {
          const size = family === 4 ? 6 : 18;
          const peers = Buffer.alloc(n * size, 7);
          const peerIds = Array.from({ length: n }, (_, k) => Buffer.alloc(20, k));
          const otherPeers = m === undefined ? undefined : Buffer.alloc(m * (24 - size), 9);
          const out = encodeAnnounceResponse({
            ...counts,
            family,
            peers,
            peerIds,
            compact,
            noPeerId,
            otherPeers,
          });
          const d = bdecode(out) as Record<string, unknown>;
          expect(d['min interval']).toBe(900);
          if (compact) {
            expect(d[family === 4 ? 'peers' : 'peers6']).toEqual(peers);
            if (otherPeers !== undefined)
              expect(d[family === 4 ? 'peers6' : 'peers']).toEqual(otherPeers);
            expect(d.peers).toBeDefined();
          } else {
            expect(d.peers).toHaveLength(n + (m ?? 0));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('encodeScrapeResponse / encodeFailure', () => {
  it('writes the BEP 48 files dictionary with hashes in byte order', () => {
    const a = Buffer.alloc(20, 0xaa);
    const z = Buffer.alloc(20, 0x01);
    const out = encodeScrapeResponse([
      { infoHash: a, complete: 3, incomplete: 4, downloaded: 5 },
      { infoHash: z, complete: 0, incomplete: 0, downloaded: 0 },
    ]);
    expect(out).toEqual(
      Buffer.concat([
        latin1('d5:filesd20:'),
        z,
        latin1('d8:completei0e10:downloadedi0e10:incompletei0ee20:'),
        a,
        latin1('d8:completei3e10:downloadedi5e10:incompletei4eeee'),
      ]),
    );
    expect(bdecode(out)).toBeDefined();
  });

  it('writes BEP 48 flags after files: min_request_interval, and truncated when given', () => {
    const a = Buffer.alloc(20, 0xaa);
    const files = [{ infoHash: a, complete: 1, incomplete: 2, downloaded: 3 }];
    const entry = latin1('d8:completei1e10:downloadedi3e10:incompletei2ee');
    expect(
      encodeScrapeResponse(files, { minRequestIntervalSeconds: 60, truncated: false }),
    ).toEqual(
      Buffer.concat([
        latin1('d5:filesd20:'),
        a,
        entry,
        latin1('e5:flagsd20:min_request_intervali60eee'),
      ]),
    );
    const truncated = encodeScrapeResponse([], { minRequestIntervalSeconds: 5, truncated: true });
    expect(truncated.toString('latin1')).toBe(
      'd5:filesde5:flagsd20:min_request_intervali5e9:truncatedi1eee',
    );
    expect(bdecode(truncated)).toEqual({
      files: {},
      flags: { min_request_interval: 5, truncated: 1 },
    });
  });

  it('writes BEP 21 downloaders between downloaded and incomplete when a file has it', () => {
    const a = Buffer.alloc(20, 0xaa);
    const out = encodeScrapeResponse([
      { infoHash: a, complete: 3, incomplete: 4, downloaded: 5, downloaders: 1 },
    ]);
    expect(out).toEqual(
      Buffer.concat([
        latin1('d5:filesd20:'),
        a,
        latin1('d8:completei3e10:downloadedi5e11:downloadersi1e10:incompletei4eeee'),
      ]),
    );
  });

  it('writes failure reason, with BEP 31 retry in minutes rounded up', () => {
    expect(encodeFailure('unregistered torrent').toString()).toBe(
      'd14:failure reason20:unregistered torrente',
    );
    expect(encodeFailure('busy', { retryInSeconds: 61 }).toString()).toBe(
      'd14:failure reason4:busy8:retry ini2ee',
    );
    expect(encodeFailure('é').toString()).toBe('d14:failure reason2:ée');
  });

  it('writes interval and min interval in key order, whole seconds, never negative', () => {
    const out = encodeFailure('retry later', {
      intervalSeconds: 300,
      minIntervalSeconds: 299.2,
      retryInSeconds: 300,
    });
    expect(out.toString()).toBe(
      'd14:failure reason11:retry later8:intervali300e12:min intervali300e8:retry ini5ee',
    );
    expect(bdecode(out)).toEqual({
      'failure reason': latin1('retry later'),
      interval: 300,
      'min interval': 300,
      'retry in': 5,
    });
    expect(encodeFailure('x', { intervalSeconds: -5 }).toString()).toBe(
      'd14:failure reason1:x8:intervali0ee',
    );
  });
});
