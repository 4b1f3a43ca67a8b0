// The relay stream between a gateway and storage-api in the split topology
// (docs/webtorrent.md "The split topology"): one WebSocket per gateway, on
// which the gateway sends the offers and answers for other gateways in
// batches, storage-api answers each batch with which recipients' gateways
// are gone, and storage-api pushes the messages for this gateway. Binary
// frames, big-endian, each message in the layout of encodeRelayMessage
// (redis.ts):
//
//   send    = u8 1, u32 seq, u16 n (>= 1), n * (u8 len, gateway id, u32 len, message)
//   ack     = u8 2, u32 seq, u16 n, n * u8 (0 handed on, 1 gone)
//   deliver = u8 3, u16 n (>= 1), n * (u32 len, message)
//
// Every length is checked against what is left of the frame before anything
// is read (docs/conventions.md "Errors"); a frame that does not decode is
// undefined, and the side that got it closes the stream (1002).
import { isGatewayId } from '@shoal/protocol/storage-rpc';
import { decodeRelayMessage, encodeRelayMessage } from './redis.ts';
import type { RelayMessage } from './swarms.ts';

const SEND = 1;
const ACK = 2;
const DELIVER = 3;
/** Messages of one frame at most (u16). */
export const STREAM_MAX_MESSAGES = 0xffff;
/** A frame is cut after the message that takes it past this (both sides take up to STREAM_MAX_PAYLOAD). */
const FRAME_TARGET_BYTES = 1 << 20;
/** The largest frame either side accepts: a target frame plus one largest message. */
export const STREAM_MAX_PAYLOAD = 64 << 20;

/**
 * Cuts `items` into the batches of one frame each: at most
 * STREAM_MAX_MESSAGES, and about 1 MiB (`bytes` of each item).
 */
export function frameBatches<T>(items: readonly T[], bytes: (item: T) => number): T[][] {
  const out: T[][] = [];
  let batch: T[] = [];
  let size = 0;
  for (const item of items) {
    batch.push(item);
    size += bytes(item);
    if (batch.length === STREAM_MAX_MESSAGES || size >= FRAME_TARGET_BYTES) {
      out.push(batch);
      batch = [];
      size = 0;
    }
  }
  if (batch.length > 0) out.push(batch);
  return out;
}

export type StreamFrame =
  | { type: 'send'; seq: number; items: Array<{ gateway: string; message: RelayMessage }> }
  | { type: 'ack'; seq: number; gone: boolean[] }
  | { type: 'deliver'; messages: RelayMessage[] };

export function encodeSendFrame(
  seq: number,
  items: ReadonlyArray<{ gateway: string; message: RelayMessage }>,
): Buffer {
  const encoded = items.map((i) => encodeRelayMessage(i.message));
  let size = 7;
  for (let k = 0; k < items.length; k++)
    size += 1 + items[k]!.gateway.length + 4 + encoded[k]!.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = SEND;
  out.writeUInt32BE(seq >>> 0, 1);
  out.writeUInt16BE(items.length, 5);
  let o = 7;
  for (let k = 0; k < items.length; k++) {
    const gateway = items[k]!.gateway;
    out[o++] = gateway.length;
    o += out.write(gateway, o, 'latin1');
    o = out.writeUInt32BE(encoded[k]!.length, o);
    o += encoded[k]!.copy(out, o);
  }
  return out;
}

export function encodeAckFrame(seq: number, gone: readonly boolean[]): Buffer {
  const out = Buffer.allocUnsafe(7 + gone.length);
  out[0] = ACK;
  out.writeUInt32BE(seq >>> 0, 1);
  out.writeUInt16BE(gone.length, 5);
  for (let k = 0; k < gone.length; k++) out[7 + k] = gone[k] ? 1 : 0;
  return out;
}

/** `messages` already encoded (encodeRelayMessage). */
export function encodeDeliverFrame(messages: readonly Buffer[]): Buffer {
  let size = 3;
  for (const m of messages) size += 4 + m.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = DELIVER;
  out.writeUInt16BE(messages.length, 1);
  let o = 3;
  for (const m of messages) {
    o = out.writeUInt32BE(m.length, o);
    o += m.copy(out, o);
  }
  return out;
}

/** undefined for a frame that does not decode. */
export function decodeStreamFrame(b: Buffer): StreamFrame | undefined {
  const type = b[0];
  if (type === SEND) {
    if (b.length < 7) return undefined;
    const seq = b.readUInt32BE(1);
    const n = b.readUInt16BE(5);
    if (n === 0) return undefined;
    const items: Array<{ gateway: string; message: RelayMessage }> = [];
    let o = 7;
    for (let k = 0; k < n; k++) {
      if (o >= b.length) return undefined;
      const len = b[o++]!;
      if (b.length - o < len + 4) return undefined;
      const gateway = b.toString('latin1', o, o + len);
      if (!isGatewayId(gateway)) return undefined;
      o += len;
      const message = readMessage(b, o);
      if (message === undefined) return undefined;
      o = message.end;
      items.push({ gateway, message: message.message });
    }
    return o === b.length ? { type: 'send', seq, items } : undefined;
  }
  if (type === ACK) {
    if (b.length < 7) return undefined;
    const n = b.readUInt16BE(5);
    if (b.length !== 7 + n) return undefined;
    const gone: boolean[] = [];
    for (let k = 0; k < n; k++) {
      const v = b[7 + k];
      if (v !== 0 && v !== 1) return undefined;
      gone.push(v === 1);
    }
    return { type: 'ack', seq: b.readUInt32BE(1), gone };
  }
  if (type === DELIVER) {
    if (b.length < 3) return undefined;
    const n = b.readUInt16BE(1);
    if (n === 0) return undefined;
    const messages: RelayMessage[] = [];
    let o = 3;
    for (let k = 0; k < n; k++) {
      const message = readMessage(b, o);
      if (message === undefined) return undefined;
      o = message.end;
      messages.push(message.message);
    }
    return o === b.length ? { type: 'deliver', messages } : undefined;
  }
  return undefined;
}

function readMessage(b: Buffer, o: number): { message: RelayMessage; end: number } | undefined {
  if (b.length - o < 4) return undefined;
  const len = b.readUInt32BE(o);
  o += 4;
  if (b.length - o < len) return undefined;
  const message = decodeRelayMessage(b.subarray(o, o + len));
  return message === undefined ? undefined : { message, end: o + len };
}
