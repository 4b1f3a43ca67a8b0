// The relay stream's frames (stream.ts): golden bytes, round trips, and
// junk that decodes to undefined, never a throw.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RelayMessage } from './swarms.ts';
import {
  decodeStreamFrame,
  encodeAckFrame,
  encodeDeliverFrame,
  encodeSendFrame,
  frameBatches,
  STREAM_MAX_MESSAGES,
} from './stream.ts';
import { encodeRelayMessage } from './redis.ts';

const message: RelayMessage = {
  kind: 'offer',
  infoHash: Buffer.alloc(20, 0xaa),
  peerId: Buffer.alloc(20, 0xbb),
  frame: '{"x":"é"}',
  sentAt: 1_700_000_000_000.5,
};

describe('relay stream frames', () => {
  it('encodes an ack as documented: type 2, u32 seq, u16 n, one byte per message', () => {
    expect(encodeAckFrame(258, [false, true]).toString('hex')).toBe(
      '02' + '00000102' + '0002' + '0001',
    );
    expect(decodeStreamFrame(Buffer.from('02000001020002' + '0001', 'hex'))).toEqual({
      type: 'ack',
      seq: 258,
      gone: [false, true],
    });
  });

  it('encodes a send frame as documented and decodes it back', () => {
    const frame = encodeSendFrame(7, [{ gateway: 'gw-b', message }]);
    const relay = encodeRelayMessage(message);
    expect(frame.subarray(0, 12).toString('hex')).toBe(
      '01' + '00000007' + '0001' + '04' + Buffer.from('gw-b').toString('hex') + '',
    );
    expect(frame.readUInt32BE(12)).toBe(relay.length);
    expect(frame.subarray(16).equals(relay)).toBe(true);
    expect(decodeStreamFrame(frame)).toEqual({
      type: 'send',
      seq: 7,
      items: [{ gateway: 'gw-b', message }],
    });
  });

  it('round-trips deliver frames', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            frame: fc.string(),
            sentAt: fc.double({ noNaN: true }),
            kind: fc.constantFrom('offer' as const, 'answer' as const),
          }),
          { minLength: 1, maxLength: 20 },
        ),
        (items) => {
          const messages = items.map((i) => ({ ...message, ...i }));
          const decoded = decodeStreamFrame(encodeDeliverFrame(messages.map(encodeRelayMessage)));
          expect(decoded).toEqual({ type: 'deliver', messages });
        },
      ),
    );
  });

  it('decodes random bytes and truncated frames to undefined without throwing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const b = Buffer.from(bytes);
        const f = decodeStreamFrame(b);
        if (f !== undefined) expect(['send', 'ack', 'deliver']).toContain(f.type);
      }),
    );
    const good = encodeSendFrame(1, [{ gateway: 'gw-a', message }]);
    for (let n = 0; n < good.length; n++)
      expect(decodeStreamFrame(good.subarray(0, n))).toBeUndefined();
    // A gateway id outside the pattern, an empty batch, trailing bytes.
    expect(decodeStreamFrame(encodeSendFrame(1, [{ gateway: 'bad id', message }]))).toBeUndefined();
    expect(decodeStreamFrame(Buffer.from('0100000001' + '0000', 'hex'))).toBeUndefined();
    expect(decodeStreamFrame(Buffer.concat([good, Buffer.from([0])]))).toBeUndefined();
  });

  it('cuts batches at about 1 MiB and at the u16 message count, keeping every item in order', () => {
    const sizes = [600_000, 600_000, 10, 2_000_000, 5];
    expect(frameBatches(sizes, (n) => n)).toEqual([[600_000, 600_000], [10, 2_000_000], [5]]);
    const many = Array.from({ length: STREAM_MAX_MESSAGES + 3 }, (_, i) => i);
    const batches = frameBatches(many, () => 1);
    expect(batches.map((b) => b.length)).toEqual([STREAM_MAX_MESSAGES, 3]);
    expect(batches.flat()).toEqual(many);
  });
});
