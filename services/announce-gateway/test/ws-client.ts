// A raw WebSocket tracker client for the gateway's tests: frames written
// and read as plain JSON here, never with @shoal/protocol's codec, so a
// codec bug cannot agree with itself (docs/conventions.md "Code").
import { expect } from 'vitest';
import WebSocket from 'ws';

export type Frame = Record<string, unknown>;

/** info_hash, peer_id and offer_id travel as one JSON character per byte. */
export const bin = (bytes: Buffer): string => bytes.toString('latin1');

export class WsClient {
  readonly socket: WebSocket;
  readonly frames: Frame[] = [];
  closeCode: number | undefined;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;
  #wake: (() => void) | undefined;

  constructor(url: string, options: WebSocket.ClientOptions = {}) {
    this.socket = new WebSocket(url, options);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
      this.socket.once('unexpected-response', (_req, res) =>
        reject(new Error(`upgrade answered ${res.statusCode}`)),
      );
    });
    this.closed = new Promise((resolve) => {
      this.socket.once('close', (code) => {
        this.closeCode = code;
        this.#wake?.();
        resolve(code);
      });
    });
    this.socket.on('error', () => undefined);
    this.socket.on('message', (data: Buffer) => {
      this.frames.push(JSON.parse(data.toString('utf8')) as Frame);
      this.#wake?.();
    });
  }

  static async open(url: string, options?: WebSocket.ClientOptions): Promise<WsClient> {
    const c = new WsClient(url, options);
    await c.opened;
    return c;
  }

  send(frame: Frame | string): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Takes the first received frame that `match` accepts, waiting up to `timeoutMs`. */
  async next(match: (f: Frame) => boolean = () => true, timeoutMs = 20_000): Promise<Frame> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i !== -1) return this.frames.splice(i, 1)[0]!;
      if (this.closeCode !== undefined)
        throw new Error(`closed (${this.closeCode}) before the frame`);
      if (performance.now() > deadline) throw new Error('no such frame in time');
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  close(): void {
    this.socket.terminate();
  }
}

export function announceFrame(infoHash: Buffer, peerId: Buffer, extra: Frame = {}): Frame {
  return {
    action: 'announce',
    info_hash: bin(infoHash),
    peer_id: bin(peerId),
    numwant: 5,
    uploaded: 0,
    downloaded: 0,
    ...extra,
  };
}

export function offers(n: number, tag = 'o'): Frame[] {
  return Array.from({ length: n }, (_, i) => ({
    offer: { type: 'offer', sdp: `v=0 ${tag}${i}` },
    offer_id: bin(Buffer.alloc(20, 0x80 + i)),
  }));
}

export const isAnnounceAnswer = (f: Frame): boolean => f.action === 'announce' && 'interval' in f;
export const isOffer = (f: Frame): boolean => f.action === 'announce' && 'offer' in f;
export const isAnswer = (f: Frame): boolean => f.action === 'announce' && 'answer' in f;
export const isFailure = (f: Frame): boolean => 'failure reason' in f;

/**
 * A leecher (peer 1, on `leecher`) joins, a seeder (peer 2, on `seeder`)
 * joins with three offers, the leecher gets one and answers it, and the
 * seeder gets that answer: the relay both ways, on whatever gateways the two
 * sockets are on. Returns the offer the leecher got.
 */
export async function offerAndAnswer(
  leecher: WsClient,
  seeder: WsClient,
  infoHash: Buffer,
  peerIdFor: (n: number) => Buffer,
): Promise<Frame> {
  leecher.send(announceFrame(infoHash, peerIdFor(1), { event: 'started' }));
  expect(await leecher.next(isAnnounceAnswer)).toMatchObject({ complete: 0, incomplete: 1 });
  seeder.send(
    announceFrame(infoHash, peerIdFor(2), { event: 'started', left: 0, offers: offers(3, 'b') }),
  );
  expect(await seeder.next(isAnnounceAnswer)).toMatchObject({ complete: 1, incomplete: 1 });
  const offer = await leecher.next(isOffer);
  expect(offer).toMatchObject({ peer_id: bin(peerIdFor(2)), info_hash: bin(infoHash) });
  leecher.send(
    announceFrame(infoHash, peerIdFor(1), {
      to_peer_id: offer.peer_id,
      offer_id: offer.offer_id,
      answer: { type: 'answer', sdp: 'from a' },
    }),
  );
  expect(await seeder.next(isAnswer)).toMatchObject({
    answer: { type: 'answer', sdp: 'from a' },
    peer_id: bin(peerIdFor(1)),
    offer_id: offer.offer_id,
  });
  return offer;
}
