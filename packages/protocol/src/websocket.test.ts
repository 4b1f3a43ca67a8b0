import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isProtocolError } from './errors.ts';
import {
  decodeWsRequest,
  encodeWsAnnounceResponse,
  encodeWsAnswer,
  encodeWsFailure,
  encodeWsOffer,
  encodeWsScrapeResponse,
  wsFailureTarget,
  type WsAnnounce,
} from './websocket.ts';

const OPTIONS = { maxOffers: 10, maxHashes: 5 };
// Bytes above 0x7f and below 0x20 travel as single JSON characters (bittorrent-tracker's hex2bin).
const HASH = Buffer.from('00ff10e9807f2000000000000000000000000001', 'hex');
const PEER = Buffer.from('-WW0100-abcdefghijkl');
const OFFER_ID = Buffer.alloc(20, 0xc3);
const bin = (b: Buffer) => b.toString('latin1');

function announce(text: string): WsAnnounce {
  const r = decodeWsRequest(text, OPTIONS);
  if (r.action !== 'announce') throw new Error('not an announce');
  return r;
}

describe('WebSocket tracker messages', () => {
  it('decodes the announce the bittorrent-tracker client sends (offers, numwant, no event)', () => {
    const text = JSON.stringify({
      numwant: 5,
      uploaded: 0,
      downloaded: 0,
      action: 'announce',
      info_hash: bin(HASH),
      peer_id: bin(PEER),
      offers: [{ offer: { type: 'offer', sdp: 'v=0\r\n', extra: 1 }, offer_id: bin(OFFER_ID) }],
    });
    expect(announce(text)).toEqual({
      action: 'announce',
      infoHash: HASH,
      peerId: PEER,
      event: 'none',
      paused: false,
      seeder: false,
      numWant: 5,
      offers: [{ offerId: OFFER_ID, offer: { type: 'offer', sdp: 'v=0\r\n' } }],
      answer: undefined,
    });
  });

  it('reads events and left as the reference server and aquatic_ws do', () => {
    const base = { action: 'announce', info_hash: bin(HASH), peer_id: bin(PEER) };
    const a = (extra: object) => announce(JSON.stringify({ ...base, ...extra }));
    expect(a({ event: 'started', left: 0 })).toMatchObject({ event: 'started', seeder: true });
    expect(a({ event: 'completed', left: 10 })).toMatchObject({
      event: 'completed',
      seeder: false,
    });
    expect(a({ event: 'stopped' })).toMatchObject({ event: 'stopped', seeder: false });
    expect(a({ event: 'paused' })).toMatchObject({ event: 'none', paused: true });
    // JSON turns the client's Infinity into null: a leecher, not a seeder.
    expect(a({ left: null })).toMatchObject({ seeder: false, numWant: undefined });
    expect(a({ left: '0', numwant: -3 })).toMatchObject({ seeder: true, numWant: undefined });
  });

  it('keeps at most maxOffers offers', () => {
    const offers = Array.from({ length: 30 }, (_, i) => ({
      offer: { type: 'offer', sdp: `s${i}` },
      offer_id: bin(Buffer.alloc(20, i)),
    }));
    const r = decodeWsRequest(
      JSON.stringify({ action: 'announce', info_hash: bin(HASH), peer_id: bin(PEER), offers }),
      { maxOffers: 3, maxHashes: 1 },
    );
    expect(r.action === 'announce' && r.offers.map((o) => o.offer.sdp)).toEqual(['s0', 's1', 's2']);
  });

  it('decodes an answer, which carries no offers', () => {
    const r = announce(
      JSON.stringify({
        action: 'announce',
        info_hash: bin(HASH),
        peer_id: bin(PEER),
        to_peer_id: bin(Buffer.alloc(20, 7)),
        offer_id: bin(OFFER_ID),
        answer: { type: 'answer', sdp: 'a' },
        offers: [{}],
      }),
    );
    expect(r.answer).toEqual({
      toPeerId: Buffer.alloc(20, 7),
      offerId: OFFER_ID,
      answer: { type: 'answer', sdp: 'a' },
    });
    expect(r.offers).toEqual([]);
  });

  it('decodes a scrape of one hash or many', () => {
    expect(
      decodeWsRequest(JSON.stringify({ action: 'scrape', info_hash: bin(HASH) }), OPTIONS),
    ).toEqual({ action: 'scrape', infoHashes: [HASH] });
    expect(
      decodeWsRequest(
        JSON.stringify({ action: 'scrape', info_hash: [bin(HASH), bin(PEER)] }),
        OPTIONS,
      ),
    ).toEqual({ action: 'scrape', infoHashes: [HASH, PEER] });
  });

  it('refuses what it cannot read with a coded error', () => {
    const cases: Array<[string, string]> = [
      ['not json', 'PROTO_ERR_WS_BAD_JSON'],
      ['[1,2]', 'PROTO_ERR_WS_BAD_JSON'],
      ['null', 'PROTO_ERR_WS_BAD_JSON'],
      ['{"action":"connect"}', 'PROTO_ERR_WS_BAD_ACTION'],
      ['{"action":"announce","info_hash":"short","peer_id":"x"}', 'PROTO_ERR_BAD_INFO_HASH'],
      [
        JSON.stringify({ action: 'announce', info_hash: 'é'.repeat(19) + 'ā', peer_id: bin(PEER) }),
        'PROTO_ERR_BAD_INFO_HASH',
      ],
      [
        JSON.stringify({ action: 'announce', info_hash: bin(HASH), peer_id: 5 }),
        'PROTO_ERR_BAD_PEER_ID',
      ],
      [
        JSON.stringify({
          action: 'announce',
          info_hash: bin(HASH),
          peer_id: bin(PEER),
          event: 'x',
        }),
        'PROTO_ERR_BAD_EVENT',
      ],
      [
        JSON.stringify({
          action: 'announce',
          info_hash: bin(HASH),
          peer_id: bin(PEER),
          offers: {},
        }),
        'PROTO_ERR_WS_BAD_OFFER',
      ],
      [
        JSON.stringify({
          action: 'announce',
          info_hash: bin(HASH),
          peer_id: bin(PEER),
          offers: [{ offer_id: bin(OFFER_ID), offer: { type: 'answer', sdp: '' } }],
        }),
        'PROTO_ERR_WS_BAD_OFFER',
      ],
      [
        JSON.stringify({
          action: 'announce',
          info_hash: bin(HASH),
          peer_id: bin(PEER),
          answer: { type: 'answer', sdp: '' },
          offer_id: bin(OFFER_ID),
        }),
        'PROTO_ERR_WS_BAD_PEER',
      ],
      [
        JSON.stringify({
          action: 'announce',
          info_hash: bin(HASH),
          peer_id: bin(PEER),
          answer: { sdp: '' },
          to_peer_id: bin(PEER),
          offer_id: bin(OFFER_ID),
        }),
        'PROTO_ERR_WS_BAD_ANSWER',
      ],
      ['{"action":"scrape"}', 'PROTO_ERR_NO_HASHES'],
      [
        JSON.stringify({ action: 'scrape', info_hash: Array(6).fill(bin(HASH)) }),
        'PROTO_ERR_TOO_MANY_HASHES',
      ],
    ];
    for (const [text, code] of cases) {
      expect(() => decodeWsRequest(text, OPTIONS), text).toThrow(
        expect.objectContaining({ code }) as Error,
      );
    }
  });

  it('encodes the answers as the reference server does, byte for byte', () => {
    expect(
      encodeWsAnnounceResponse({ infoHash: HASH, interval: 120, complete: 1, incomplete: 2 }),
    ).toBe(
      `{"action":"announce","interval":120,"info_hash":${JSON.stringify(bin(HASH))},"complete":1,"incomplete":2}`,
    );
    const offer = { offerId: OFFER_ID, offer: { type: 'offer' as const, sdp: 'x' } };
    expect(JSON.parse(encodeWsOffer(HASH, PEER, offer))).toEqual({
      action: 'announce',
      offer: { type: 'offer', sdp: 'x' },
      offer_id: bin(OFFER_ID),
      peer_id: bin(PEER),
      info_hash: bin(HASH),
    });
    const answer = {
      toPeerId: PEER,
      offerId: OFFER_ID,
      answer: { type: 'answer' as const, sdp: 'y' },
    };
    expect(JSON.parse(encodeWsAnswer(HASH, Buffer.alloc(20, 1), answer))).toEqual({
      action: 'announce',
      answer: { type: 'answer', sdp: 'y' },
      offer_id: bin(OFFER_ID),
      peer_id: bin(Buffer.alloc(20, 1)),
      info_hash: bin(HASH),
    });
    expect(
      JSON.parse(
        encodeWsScrapeResponse(
          [{ infoHash: HASH, complete: 3, incomplete: 4, downloaded: 5 }],
          120,
        ),
      ),
    ).toEqual({
      action: 'scrape',
      files: { [bin(HASH)]: { complete: 3, incomplete: 4, downloaded: 5 } },
      flags: { min_request_interval: 120 },
    });
    expect(encodeWsFailure('no [X]', 'announce', HASH)).toBe(
      `{"action":"announce","failure reason":"no [X]","info_hash":${JSON.stringify(bin(HASH))}}`,
    );
    expect(encodeWsFailure('no')).toBe('{"failure reason":"no"}');
  });

  it('writes relayed offers and answers as JSON.stringify writes them, for any ids and SDP', () => {
    const bytes = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b));
    // Any UTF-16 text, lone surrogates included: both forms must escape it alike.
    const sdp = fc.string({ unit: 'binary', maxLength: 200 });
    fc.assert(
      fc.property(bytes, bytes, bytes, bytes, sdp, (hash, peer, offerId, toPeer, text) => {
        // What JSON.stringify writes for a relayed offer or answer of these fields.
        const asObject = (kind: 'offer' | 'answer') =>
          JSON.stringify({
            action: 'announce',
            [kind]: { type: kind, sdp: text },
            offer_id: bin(offerId),
            peer_id: bin(peer),
            info_hash: bin(hash),
          });
        const offer = { offerId, offer: { type: 'offer' as const, sdp: text } };
        expect(encodeWsOffer(hash, peer, offer)).toBe(asObject('offer'));
        const answer = {
          toPeerId: toPeer,
          offerId,
          answer: { type: 'answer' as const, sdp: text },
        };
        expect(encodeWsAnswer(hash, peer, answer)).toBe(asObject('answer'));
      }),
      { numRuns: 200 },
    );
    // Generous: fast-check's generators are slow on a loaded machine.
  }, 120_000);

  it('finds the action and info_hash of a refused frame when it can', () => {
    expect(
      wsFailureTarget(JSON.stringify({ action: 'announce', info_hash: bin(HASH), peer_id: 1 })),
    ).toEqual({ action: 'announce', infoHash: HASH });
    expect(wsFailureTarget('{"action":"scrape","info_hash":[]}')).toEqual({
      action: 'scrape',
      infoHash: undefined,
    });
    expect(wsFailureTarget('}{')).toEqual({ action: undefined, infoHash: undefined });
  });

  it('throws nothing but a coded protocol error for random or mutated input', () => {
    const valid = fc.record({
      action: fc.constantFrom('announce', 'scrape', 'x'),
      info_hash: fc.oneof(fc.string({ minLength: 20, maxLength: 20 }), fc.array(fc.string())),
      peer_id: fc.string({ minLength: 19, maxLength: 21 }),
      event: fc.option(fc.constantFrom('started', 'stopped', 'completed', 'update', 'bad')),
      left: fc.option(fc.oneof(fc.integer(), fc.string())),
      numwant: fc.option(fc.oneof(fc.integer(), fc.double())),
      offers: fc.option(fc.array(fc.anything(), { maxLength: 4 })),
      answer: fc.option(fc.anything()),
      to_peer_id: fc.option(fc.string({ minLength: 20, maxLength: 20 })),
      offer_id: fc.option(fc.string({ minLength: 20, maxLength: 20 })),
    });
    const input = fc.oneof(
      fc.string(),
      fc.json(),
      valid.map((v) => JSON.stringify(v)),
      valid.chain((v) =>
        fc.nat().map((cut) => {
          const s = JSON.stringify(v);
          return s.slice(0, cut % (s.length + 1));
        }),
      ),
    );
    fc.assert(
      fc.property(input, (text) => {
        try {
          decodeWsRequest(text, OPTIONS);
        } catch (err) {
          if (!isProtocolError(err)) throw err;
        }
        wsFailureTarget(text);
      }),
      { numRuns: 4000 },
    );
  });
});
