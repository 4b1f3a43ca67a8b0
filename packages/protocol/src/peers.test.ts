import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isProtocolError } from './errors.ts';
import { addressToBytes, bytesToAddress, decodeCompactPeers, encodeCompactPeer } from './peers.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** WHATWG URL serialises IPv6 hosts in RFC 5952 form: an independent reference. */
const canonicalV6 = (text: string) => new URL(`http://[${text}]/`).hostname.slice(1, -1);

describe('addressToBytes', () => {
  it.each<[string, 4 | 6, string]>([
    ['1.2.3.4', 4, '01020304'],
    ['255.255.255.255', 4, 'ffffffff'],
    ['0.0.0.0', 4, '00000000'],
    ['::ffff:1.2.3.4', 4, '01020304'],
    ['::FFFF:7f00:1', 4, '7f000001'],
    ['0:0:0:0:0:ffff:a00:2', 4, '0a000002'],
    ['::1', 6, '00000000000000000000000000000001'],
    ['::', 6, '00000000000000000000000000000000'],
    ['2001:db8::1', 6, '20010db8000000000000000000000001'],
    ['2001:DB8:0:0:8:800:200C:417A', 6, '20010db80000000000080800200c417a'],
    ['fe80::1%eth0', 6, 'fe800000000000000000000000000001'],
    ['::1.2.3.4', 6, '00000000000000000000000001020304'],
    ['64:ff9b::', 6, '0064ff9b000000000000000000000000'],
    ['1:2:3:4:5:6:7::', 6, '00010002000300040005000600070000'],
  ])('%s -> IPv%i %s', (text, family, bytes) => {
    expect(addressToBytes(text)).toEqual({ family, bytes: hex(bytes) });
  });

  it.each([
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '01.2.3.4',
    '1.2.3.4 ',
    'a.b.c.d',
    ':',
    ':::',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '12345::',
    '::g',
    '1:',
    ':1',
    '::1.2.3',
    '1:2:3:4:5:6:7:1.2.3.4',
    'example.com',
  ])('refuses %j', (text) => {
    expect(addressToBytes(text)).toBeUndefined();
  });

  it('agrees with node:net and WHATWG URL on generated IPv4 and IPv6 text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const r = addressToBytes(text);
        expect(r, text).toBeDefined();
        expect(isIP(text)).toBeGreaterThan(0);
        if (r === undefined) return;
        if (r.family === 6) expect(bytesToAddress(r.bytes)).toBe(canonicalV6(text));
        else expect(addressToBytes(bytesToAddress(r.bytes))).toEqual(r);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses what node:net refuses among short random strings', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-fA-F:.]{0,20}$/), (text) => {
        if (isIP(text) === 0) expect(addressToBytes(text)).toBeUndefined();
        else expect(addressToBytes(text)).toBeDefined();
      }),
      { numRuns: 2000 },
    );
  });
});

describe('bytesToAddress', () => {
  it('prints RFC 5952 text and IPv4-mapped addresses the way Node does', () => {
    expect(bytesToAddress(hex('0a000002'))).toBe('10.0.0.2');
    expect(bytesToAddress(hex('20010db8000000000001000000000001'))).toBe('2001:db8::1:0:0:1');
    expect(bytesToAddress(hex('20010db8000000010000000000000001'))).toBe('2001:db8:0:1::1');
    expect(bytesToAddress(hex('20010db8000000000000000000000000'))).toBe('2001:db8::');
    expect(bytesToAddress(hex('00010000000100000001000000010000'))).toBe('1:0:1:0:1:0:1:0');
    expect(bytesToAddress(hex('00000000000000000000ffff01020304'))).toBe('::ffff:1.2.3.4');
  });

  it('round-trips any 16 bytes through text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (u) => {
        const bytes = Buffer.from(u);
        const text = bytesToAddress(bytes);
        expect(text).toBe(text.includes('.') ? text : canonicalV6(text));
        const back = addressToBytes(text);
        expect(
          back?.family === 4
            ? Buffer.concat([hex('00000000000000000000ffff'), back.bytes])
            : back?.bytes,
        ).toEqual(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses lengths other than 4 and 16 with a coded error', () => {
    expect(() => bytesToAddress(Buffer.alloc(5))).toThrow(
      expect.objectContaining({ code: 'PROTO_ERR_BAD_ADDRESS' }),
    );
  });
});

describe('compact peers', () => {
  it('encodes 6-byte (BEP 23) and 18-byte (BEP 7) entries', () => {
    expect(encodeCompactPeer(hex('7f000001'), 6881)).toEqual(hex('7f0000011ae1'));
    expect(encodeCompactPeer(hex('20010db8000000000000000000000001'), 443)).toEqual(
      hex('20010db8000000000000000000000001 01bb'),
    );
  });

  it('decodes lists and refuses a partial entry', () => {
    expect(decodeCompactPeers(hex('7f0000011ae1 0a000002c8d5'), 4)).toEqual([
      { address: '127.0.0.1', port: 6881 },
      { address: '10.0.0.2', port: 51413 },
    ]);
    expect(decodeCompactPeers(hex('20010db8000000000000000000000001 01bb'), 6)).toEqual([
      { address: '2001:db8::1', port: 443 },
    ]);
    let code: unknown;
    try {
      decodeCompactPeers(Buffer.alloc(7), 4);
    } catch (err) {
      code = isProtocolError(err) && err.code;
    }
    expect(code).toBe('PROTO_ERR_BAD_PEERS_LENGTH');
  });

  it('refuses bad addresses and ports', () => {
    expect(() => encodeCompactPeer(Buffer.alloc(5), 1)).toThrow(
      expect.objectContaining({ code: 'PROTO_ERR_BAD_ADDRESS' }),
    );
    expect(() => encodeCompactPeer(Buffer.alloc(4), 65536)).toThrow(
      expect.objectContaining({ code: 'PROTO_ERR_BAD_PORT' }),
    );
  });

  it('decode(encode(peer)) = peer', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.ipV4(), fc.ipV6()),
        fc.integer({ min: 0, max: 65535 }),
        (text, port) => {
          const a = addressToBytes(text);
          if (a === undefined) throw new Error(`unparsed ${text}`);
          expect(decodeCompactPeers(encodeCompactPeer(a.bytes, port), a.family)).toEqual([
            { address: bytesToAddress(a.bytes), port },
          ]);
        },
      ),
    );
  });
});
