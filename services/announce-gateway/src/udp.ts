// The UDP tracker (BEP 15; BEP 41 URL data carries the passkey and jwt): a
// frontend of the tracker core (docs/architecture.md). One socket per gateway;
// on '::' it is dual-stack and IPv4 clients arrive as ::ffff:a.b.c.d. Every
// answer carries the packet's address family only [torrust#1366].
//
// Amplification (docs/limits.md "UDP answers"): a spoofed source address
// gets nothing larger than the packet it sent. Only a sender that proved its
// address with a valid connection id (BEP 15) gets a larger answer; an error
// to anyone else is cut to the packet's length.
//
// Hot path: answers are encoded into one preallocated buffer and sent
// synchronously (the socket's `lookup` never leaves the call stack), so the
// buffer is free again when send() returns unless the kernel queue was full;
// then the queued send keeps that buffer and the next answer gets a new one.
//
// With the batching addon (docs/udp-batch.md) the socket is the addon's: one
// recvmmsg reads up to 64 datagrams, each is handled as a dgram message is,
// and the answers of the batch leave in one sendmmsg.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import {
  ConnectionIdCodec,
  ProtocolError,
  addressToBytes,
  decodeUdpRequest,
  encodeConnectResponseInto,
  encodeErrorResponseInto,
  encodeUdpAnnounceResponseInto,
  encodeUdpScrapeResponseInto,
  isProtocolError,
  type AnnounceRequest,
  type UdpRequest,
} from '@shoal/protocol';
import { PolicyError } from '@shoal/policy';
import type { AnnounceResult } from '@shoal/storage';
import type { PeerAddress } from './client-address.ts';
import { parseUrlData } from './credentials.ts';
import type { Action, GatewayMetrics } from './metrics.ts';
import type { Tracker } from './tracker/core.ts';
import {
  describeRefusal,
  refusalCounter,
  type Refusal,
  type RefusalCounter,
} from './tracker/refusal.ts';
import type { AnnounceContext, ScrapeContext } from './tracker/types.ts';
import { UDP_BATCH_META, type UdpBatchAddon, type UdpBatchHandle } from './udp-batch.ts';

type UdpAnnounceRequest = Extract<UdpRequest, { action: 'announce' }>;
type UdpScrapeRequest = Extract<UdpRequest, { action: 'scrape' }>;

/** BEP 15: a scrape answer of 8 + 12 n bytes must fit one datagram; 74 hashes is the usual ceiling. */
export const UDP_SCRAPE_HASH_LIMIT = 74;
const BAD_CONNECTION_ID: Refusal = describeRefusal(
  new ProtocolError('PROTO_ERR_BAD_CONNECTION_ID'),
);
const RATE_LIMITED: Refusal = describeRefusal(new PolicyError('POLICY_ERR_RATE_LIMITED'));

export interface UdpTrackerOptions {
  host: string;
  /** NUMWANT_MAX: sizes the answer buffer. */
  numWantMax: number;
  scrapeMaxHashes: number;
  allowIpParam: boolean;
  recvBufferBytes: number;
  connectionIds: ConnectionIdCodec;
  tracker: Tracker;
  metrics: GatewayMetrics;
  logger: Logger;
  clock: () => number;
  /** The batching addon (docs/udp-batch.md); undefined: node:dgram. */
  batch?: UdpBatchAddon | undefined;
}

/** A source the addon read: the peer's address and the port to answer. */
interface BatchSource extends PeerAddress {
  port: number;
}

/** Where an answer goes: dgram's rinfo, or the address the addon read. */
type Destination = RemoteInfo | BatchSource;

/** The answers of one batch, waiting for one sendmmsg. */
interface OutBatch {
  buf: Buffer;
  meta: Uint32Array;
  count: number;
  used: number;
}

/** BEP 15 error action: action and transaction id, then the message. */
const UDP_ERROR_HEADER_BYTES = 8;

/**
 * An error text that fits `budget` bytes (docs/limits.md "UDP answers"): the
 * whole `reason [CODE]` when it fits, else the reason without its code, else
 * that reason cut. A packet with a transaction id is at least 16 bytes, so
 * the budget is at least 8 and the text never empty.
 */
export function fitErrorText(reason: string, budget: number): string {
  if (Buffer.byteLength(reason, 'utf8') <= budget) return reason;
  const codeAt = reason.lastIndexOf(' [');
  let text = codeAt === -1 ? reason : reason.slice(0, codeAt);
  if (text.length > budget) text = text.slice(0, budget);
  while (Buffer.byteLength(text, 'utf8') > budget) text = text.slice(0, -1);
  return text;
}

/**
 * Resolves IP literals without DNS and without deferring: send() then
 * completes in the caller's stack. dgram passes the socket's family (4 or 6)
 * as the second argument; the address is always one the socket received
 * from, so it is not parsed again.
 */
function literalLookup(
  address: string,
  family: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, address, typeof family === 'number' ? family : isIP(address));
}

/** What every request context of one UDP frontend shares. */
interface UdpSettings {
  allowIpParam: boolean;
  /** SCRAPE_MAX_HASHES, at most what one datagram answers. */
  scrapeMaxHashes: number;
}

/** One UDP request as the core sees it: a decoded packet from a known address. */
class UdpRequestContext<P extends UdpRequest> {
  readonly packet: P;
  readonly now: number;
  protected readonly from: PeerAddress;
  protected readonly settings: UdpSettings;

  constructor(packet: P, from: PeerAddress, now: number, settings: UdpSettings) {
    this.packet = packet;
    this.from = from;
    this.now = now;
    this.settings = settings;
  }

  source(): PeerAddress {
    return this.from;
  }
}

class UdpAnnounce extends UdpRequestContext<UdpAnnounceRequest> implements AnnounceContext {
  interval = 0;
  #url: ReturnType<typeof parseUrlData> | undefined;

  request(): AnnounceRequest {
    return this.packet.request;
  }

  peer(request: AnnounceRequest): PeerAddress {
    // BEP 15's IPv4 field; an address of the other family would break "one family per answer".
    if (this.settings.allowIpParam && request.ip !== undefined) {
      const claimed = addressToBytes(request.ip);
      if (claimed !== undefined && claimed.family === this.from.family) return claimed;
    }
    return this.from;
  }

  passkey(): string | undefined {
    return (this.#url ??= parseUrlData(this.packet.urlData)).passkey;
  }

  jwt(): string | undefined {
    return (this.#url ??= parseUrlData(this.packet.urlData)).jwt;
  }
}

class UdpScrape extends UdpRequestContext<UdpScrapeRequest> implements ScrapeContext {
  /** BEP 41 URL data follows announces only: a private tracker's UDP scrape has no passkey. */
  passkey(): undefined {
    return undefined;
  }

  infoHashes(): Buffer[] {
    const hashes = this.packet.infoHashes;
    const max = this.settings.scrapeMaxHashes;
    return hashes.length > max ? hashes.slice(0, max) : hashes;
  }
}

export class UdpTracker {
  readonly #options: UdpTrackerOptions;
  readonly #tracker: Tracker;
  readonly #refusals: RefusalCounter;
  readonly #settings: UdpSettings;
  readonly #announceOk: ReturnType<GatewayMetrics['request']>;
  #socket: Socket | undefined;
  readonly #batchAddon: UdpBatchAddon | undefined;
  #batchHandle: UdpBatchHandle | undefined;
  #inMeta: Uint32Array | undefined;
  #outBatch: OutBatch | undefined;
  /** Inside a batch's handling: answers wait for the batch's sendmmsg. */
  #batching = false;
  #flushQueued = false;
  #out: Buffer;
  #inFlight = 0;
  #closing = false;
  #drained: (() => void) | undefined;

  constructor(options: UdpTrackerOptions) {
    this.#options = options;
    this.#tracker = options.tracker;
    this.#refusals = refusalCounter('udp', options.metrics, options.logger);
    this.#announceOk = options.metrics.request('udp', 'announce', 'ok');
    const scrapeMaxHashes = Math.min(options.scrapeMaxHashes, UDP_SCRAPE_HASH_LIMIT);
    this.#settings = { allowIpParam: options.allowIpParam, scrapeMaxHashes };
    // Largest answer: an announce with NUMWANT_MAX IPv6 peers, or a full scrape, or an error text.
    this.#out = Buffer.allocUnsafe(
      Math.max(20 + 18 * options.numWantMax, 8 + 12 * scrapeMaxHashes, 512),
    );
    const addon = options.batch;
    this.#batchAddon = addon;
    if (addon !== undefined) {
      this.#inMeta = new Uint32Array(1 + UDP_BATCH_META * addon.BATCH);
      this.#outBatch = {
        // Each answer, then its 16-byte address.
        buf: Buffer.allocUnsafe(addon.BATCH * (this.#out.length + 16)),
        meta: new Uint32Array(1 + UDP_BATCH_META * addon.BATCH),
        count: 0,
        used: 0,
      };
    }
  }

  get port(): number | undefined {
    if (this.#batchHandle !== undefined) return this.#batchAddon!.port(this.#batchHandle);
    return this.#socket?.address().port;
  }

  /** SO_RCVBUF as the kernel granted it (Linux doubles the request, capped by net.core.rmem_max). */
  get recvBufferBytes(): number | undefined {
    if (this.#batchHandle !== undefined) return this.#batchAddon!.recvBufferSize(this.#batchHandle);
    return this.#socket?.getRecvBufferSize();
  }

  /** `reusePort`: SO_REUSEPORT, so the workers of one process share the port (docs/workers.md). */
  async listen(port: number, reusePort = false): Promise<number> {
    await this.unbind();
    const addon = this.#batchAddon;
    if (addon !== undefined) {
      const { host, recvBufferBytes } = this.#options;
      const handle = addon.open(host, port, reusePort, recvBufferBytes);
      addon.start(handle, this.#onReadable);
      this.#batchHandle = handle;
      return addon.port(handle);
    }
    const v6 = isIP(this.#options.host) === 6;
    const socket = createSocket({
      type: v6 ? 'udp6' : 'udp4',
      ipv6Only: false,
      ...(reusePort ? { reusePort } : {}),
      lookup: literalLookup,
      recvBufferSize: this.#options.recvBufferBytes,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port, address: this.#options.host, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => this.#options.logger.warn({ err }, 'udp socket error'));
    socket.on('message', this.#onMessage);
    this.#socket = socket;
    return socket.address().port;
  }

  /** Releases the port without draining; for retrying a bind (PORT=0 picks one number for TCP and UDP). */
  async unbind(): Promise<void> {
    if (this.#batchHandle !== undefined) this.#flush();
    const handle = this.#batchHandle;
    this.#batchHandle = undefined;
    if (handle !== undefined) this.#batchAddon!.close(handle);
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  /** Stops answering new packets, waits for announces in flight, then closes the socket. */
  async close(): Promise<void> {
    const socket = this.#socket;
    if ((socket === undefined && this.#batchHandle === undefined) || this.#closing) return;
    this.#closing = true;
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
    this.#socket = undefined;
    await this.unbind();
  }

  readonly #onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (this.#closing) {
      this.#options.metrics.udpDropped('closing');
      return;
    }
    const peer = addressToBytes(rinfo.address);
    if (peer === undefined) {
      this.#options.metrics.udpDropped('malformed');
      return;
    }
    this.#onDatagram(msg, peer, rinfo);
  };

  /**
   * The addon's waiter saw a datagram: read batches until the socket is
   * empty (at most 8, then other work gets the event loop), answer each
   * batch with one sendmmsg, and arm the waiter again.
   */
  readonly #onReadable = (): void => {
    const addon = this.#batchAddon!;
    const handle = this.#batchHandle;
    if (handle === undefined) return;
    const meta = this.#inMeta!;
    try {
      for (let round = 0; round < 8; round++) {
        const data = addon.recv(handle, meta);
        if (data === undefined) break;
        const n = meta[0]!;
        this.#batching = true;
        try {
          for (let i = 0, m = 1; i < n; i++, m += UDP_BATCH_META) {
            if (this.#closing) {
              this.#options.metrics.udpDropped('closing');
              continue;
            }
            const at = meta[m + 2]!;
            const v4 = meta[m + 3] === 4;
            const from: BatchSource = {
              family: v4 ? 4 : 6,
              bytes: data.subarray(at, at + (v4 ? 4 : 16)),
              port: meta[m + 4]!,
            };
            const off = meta[m]!;
            this.#onDatagram(data.subarray(off, off + meta[m + 1]!), from, from);
          }
        } finally {
          this.#batching = false;
          this.#flush();
        }
        if (n < addon.BATCH) break;
      }
    } catch (err) {
      this.#options.logger.warn({ err }, 'udp socket error');
    } finally {
      if (this.#batchHandle === handle) addon.arm(handle);
    }
  };

  #onDatagram(msg: Buffer, peer: PeerAddress, rinfo: Destination): void {
    const { metrics } = this.#options;
    const start = performance.now();
    const now = this.#options.clock();
    // A banned source gets no answer at all: not even an error to reflect (docs/policy.md "Abuse control").
    if (this.#tracker.drops(peer, now)) {
      metrics.udpDropped('banned');
      return;
    }
    let request;
    try {
      request = decodeUdpRequest(msg);
    } catch (err) {
      this.#tracker.strike(peer, 'malformed', now);
      const tid = isProtocolError(err) ? err.transactionId : undefined;
      if (tid === undefined) {
        metrics.udpDropped('malformed');
        return;
      }
      // BEP 15 action field at offset 8 only labels the metric.
      const action = msg.length >= 12 && msg.readUInt32BE(8) === 2 ? 'scrape' : 'announce';
      // A malformed packet that still carries a valid connection id comes from a proven address.
      const proven = this.#options.connectionIds.verify(msg.subarray(0, 8), peer.bytes, now);
      this.#refuse(tid, describeRefusal(err), action, rinfo, err, proven ? 0 : msg.length);
      return;
    }
    if (request.action === 'connect') {
      if (!this.#tracker.connectAllowed(peer, now)) {
        this.#refuse(request.transactionId, RATE_LIMITED, 'connect', rinfo, undefined, msg.length);
      } else {
        const id = this.#options.connectionIds.issue(peer.bytes, now);
        this.#send(encodeConnectResponseInto(this.#out, request.transactionId, id), rinfo);
        metrics.request('udp', 'connect', 'ok').inc();
      }
      metrics.observe('udp', 'connect', start);
      return;
    }
    if (!this.#options.connectionIds.verify(request.connectionId, peer.bytes, now)) {
      metrics.connectionIdRejected();
      this.#tracker.strike(peer, 'bad_connection_id', now);
      const id = request.transactionId;
      this.#refuse(id, BAD_CONNECTION_ID, request.action, rinfo, undefined, msg.length);
      return;
    }
    if (request.action === 'announce')
      this.#announce(new UdpAnnounce(request, peer, now, this.#settings), rinfo, start);
    else void this.#scrape(new UdpScrape(request, peer, now, this.#settings), rinfo, start);
  }

  /** Embedded stores answer in the same turn: no Promise, no closure per packet. */
  #announce(ctx: UdpAnnounce, rinfo: Destination, start: number): void {
    try {
      const answer = this.#tracker.announce(ctx);
      if (answer instanceof Promise) {
        void this.#announceLater(ctx, answer, rinfo, start);
        return;
      }
      this.#answerAnnounce(ctx, answer, rinfo);
    } catch (err) {
      this.#refuse(ctx.packet.transactionId, describeRefusal(err), 'announce', rinfo, err);
    }
    this.#options.metrics.observe('udp', 'announce', start);
  }

  async #announceLater(
    ctx: UdpAnnounce,
    answer: Promise<AnnounceResult>,
    rinfo: Destination,
    start: number,
  ): Promise<void> {
    this.#inFlight++;
    try {
      this.#answerAnnounce(ctx, await answer, rinfo);
    } catch (err) {
      this.#refuse(ctx.packet.transactionId, describeRefusal(err), 'announce', rinfo, err);
    } finally {
      this.#options.metrics.observe('udp', 'announce', start);
      this.#settle();
    }
  }

  #answerAnnounce(ctx: UdpAnnounce, result: AnnounceResult, rinfo: Destination): void {
    const length = encodeUdpAnnounceResponseInto(
      this.#out,
      ctx.packet.transactionId,
      ctx.interval,
      result.leechers,
      result.seeders,
      result.peers,
    );
    this.#send(length, rinfo);
    this.#announceOk.inc();
  }

  async #scrape(ctx: UdpScrape, rinfo: Destination, start: number): Promise<void> {
    const { metrics } = this.#options;
    this.#inFlight++;
    try {
      const files = await this.#tracker.scrape(ctx);
      this.#send(encodeUdpScrapeResponseInto(this.#out, ctx.packet.transactionId, files), rinfo);
      metrics.request('udp', 'scrape', 'ok').inc();
    } catch (err) {
      this.#refuse(ctx.packet.transactionId, describeRefusal(err), 'scrape', rinfo, err);
    } finally {
      metrics.observe('udp', 'scrape', start);
      this.#settle();
    }
  }

  #settle(): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && this.#drained !== undefined) {
      this.#drained();
      this.#drained = undefined;
    }
  }

  /**
   * `unprovenBytes`: the packet's length when its sender has not proven its
   * address with a valid connection id; the answer is then no larger than
   * that (docs/limits.md "UDP answers"). 0: proven, the full text.
   */
  #refuse(
    transactionId: number,
    refusal: Refusal,
    action: Action,
    rinfo: Destination,
    err?: unknown,
    unprovenBytes = 0,
  ): void {
    this.#refusals.count(action, refusal, err, { transactionId });
    const text =
      unprovenBytes === 0
        ? refusal.reason
        : fitErrorText(refusal.reason, unprovenBytes - UDP_ERROR_HEADER_BYTES);
    try {
      this.#send(encodeErrorResponseInto(this.#out, transactionId, text), rinfo);
    } catch (encodeErr) {
      this.#options.logger.error({ err: encodeErr }, 'udp error answer could not be encoded');
    }
  }

  #send(length: number, rinfo: Destination): void {
    if (this.#batchAddon !== undefined) {
      this.#queue(length, rinfo as BatchSource);
      return;
    }
    const socket = this.#socket;
    if (socket === undefined) return;
    try {
      socket.send(this.#out, 0, length, rinfo.port, (rinfo as RemoteInfo).address);
    } catch {
      this.#options.metrics.udpDropped('send_failed');
      return;
    }
    // A queued send still points at this buffer: leave it to the queue.
    if (socket.getSendQueueCount() > 0) this.#out = Buffer.allocUnsafe(this.#out.length);
  }

  /**
   * Adds an answer to the batch's sendmmsg. Outside a batch (an answer the
   * store gave later) it goes out at the end of this microtask checkpoint,
   * with the other answers that resolved with it.
   */
  #queue(length: number, to: BatchSource): void {
    const batch = this.#outBatch!;
    if (batch.count === this.#batchAddon!.BATCH) this.#flush();
    const at = batch.used;
    this.#out.copy(batch.buf, at, 0, length);
    to.bytes.copy(batch.buf, at + length);
    const m = 1 + UDP_BATCH_META * batch.count;
    batch.meta[m] = at;
    batch.meta[m + 1] = length;
    batch.meta[m + 2] = at + length;
    batch.meta[m + 3] = to.family;
    batch.meta[m + 4] = to.port;
    batch.used = at + length + to.bytes.length;
    batch.count++;
    if (!this.#batching && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushLater);
    }
  }

  readonly #flushLater = (): void => {
    this.#flushQueued = false;
    this.#flush();
  };

  #flush(): void {
    const batch = this.#outBatch!;
    const count = batch.count;
    if (count === 0) return;
    batch.count = 0;
    batch.used = 0;
    const handle = this.#batchHandle;
    let sent = 0;
    try {
      if (handle !== undefined) sent = this.#batchAddon!.send(handle, batch.buf, batch.meta, count);
    } catch (err) {
      this.#options.logger.warn({ err }, 'udp socket error');
    }
    for (let i = sent; i < count; i++) this.#options.metrics.udpDropped('send_failed');
  }
}
