// The UDP tracker (BEP 15, BEP 41 URL data ignored). One socket per gateway;
// on '::' it is dual-stack and IPv4 clients arrive as ::ffff:a.b.c.d. Every
// answer carries the packet's address family only [torrust#1366].
//
// Hot path: answers are encoded into one preallocated buffer and sent
// synchronously (the socket's `lookup` never leaves the call stack), so the
// buffer is free again when send() returns unless the kernel queue was full;
// then the queued send keeps that buffer and the next answer gets a new one.
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
  type UdpRequest,
} from '@shoal/protocol';
import type { AnnounceResult, PeerAnnounce } from '@shoal/storage';
import { describeRefusal, toPeerAnnounce, type AnnouncePolicy, type Refusal } from './announce.ts';
import type { PeerAddress } from './client-address.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { GatewayStorage } from './storage.ts';

type SyncAnnounce = (a: PeerAnnounce) => AnnounceResult;
type UdpAnnounceRequest = Extract<UdpRequest, { action: 'announce' }>;
type UdpScrapeRequest = Extract<UdpRequest, { action: 'scrape' }>;

/** BEP 15: a scrape answer of 8 + 12 n bytes must fit one datagram; 74 hashes is the usual ceiling. */
export const UDP_SCRAPE_HASH_LIMIT = 74;
const BAD_CONNECTION_ID: Refusal = describeRefusal(
  new ProtocolError('PROTO_ERR_BAD_CONNECTION_ID'),
);

export interface UdpTrackerOptions {
  host: string;
  interval: number;
  policy: AnnouncePolicy;
  scrapeMaxHashes: number;
  allowIpParam: boolean;
  recvBufferBytes: number;
  connectionIds: ConnectionIdCodec;
  storage: GatewayStorage;
  metrics: GatewayMetrics;
  logger: Logger;
  clock: () => number;
}

/** Resolves IP literals without DNS and without deferring: send() then completes in the caller's stack. */
function literalLookup(
  address: string,
  _options: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, address, isIP(address));
}

export class UdpTracker {
  readonly #options: UdpTrackerOptions;
  readonly #scrapeMax: number;
  readonly #sync: SyncAnnounce | undefined;
  #socket: Socket | undefined;
  #out: Buffer;
  #inFlight = 0;
  #closing = false;
  #drained: (() => void) | undefined;

  constructor(options: UdpTrackerOptions) {
    this.#options = options;
    this.#sync = options.storage.announceSync?.bind(options.storage);
    this.#scrapeMax = Math.min(options.scrapeMaxHashes, UDP_SCRAPE_HASH_LIMIT);
    // Largest answer: an announce with NUMWANT_MAX IPv6 peers, or a full scrape, or an error text.
    this.#out = Buffer.allocUnsafe(
      Math.max(20 + 18 * options.policy.numWantMax, 8 + 12 * this.#scrapeMax, 512),
    );
  }

  get port(): number | undefined {
    return this.#socket?.address().port;
  }

  /** SO_RCVBUF as the kernel granted it (Linux doubles the request, capped by net.core.rmem_max). */
  get recvBufferBytes(): number | undefined {
    return this.#socket?.getRecvBufferSize();
  }

  async listen(port: number): Promise<number> {
    await this.unbind();
    const v6 = isIP(this.#options.host) === 6;
    const socket = createSocket({
      type: v6 ? 'udp6' : 'udp4',
      ipv6Only: false,
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
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  /** Stops answering new packets, waits for announces in flight, then closes the socket. */
  async close(): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined || this.#closing) return;
    this.#closing = true;
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    this.#socket = undefined;
  }

  readonly #onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    const { metrics } = this.#options;
    if (this.#closing) {
      metrics.udpDropped('closing');
      return;
    }
    const start = performance.now();
    let request;
    try {
      request = decodeUdpRequest(msg);
    } catch (err) {
      const tid = isProtocolError(err) ? err.transactionId : undefined;
      if (tid === undefined) {
        metrics.udpDropped('malformed');
        return;
      }
      // BEP 15 action field at offset 8 only labels the metric.
      const action = msg.length >= 12 && msg.readUInt32BE(8) === 2 ? 'scrape' : 'announce';
      this.#refuse(tid, describeRefusal(err), action, rinfo);
      return;
    }
    const peer = addressToBytes(rinfo.address);
    if (peer === undefined) {
      metrics.udpDropped('malformed');
      return;
    }
    const now = this.#options.clock();
    switch (request.action) {
      case 'connect': {
        const id = this.#options.connectionIds.issue(peer.bytes, now);
        this.#send(encodeConnectResponseInto(this.#out, request.transactionId, id), rinfo);
        metrics.request('udp', 'connect', 'ok').inc();
        metrics.observe('udp', 'connect', start);
        return;
      }
      case 'announce':
        if (!this.#options.connectionIds.verify(request.connectionId, peer.bytes, now)) {
          metrics.connectionIdRejected();
          this.#refuse(request.transactionId, BAD_CONNECTION_ID, 'announce', rinfo);
          return;
        }
        if (this.#sync !== undefined) this.#announceSync(this.#sync, request, peer, rinfo, start);
        else void this.#announce(request, peer, rinfo, start);
        return;
      case 'scrape':
        if (!this.#options.connectionIds.verify(request.connectionId, peer.bytes, now)) {
          metrics.connectionIdRejected();
          this.#refuse(request.transactionId, BAD_CONNECTION_ID, 'scrape', rinfo);
          return;
        }
        void this.#scrape(request, rinfo, start);
        return;
    }
  };

  #announcer(request: UdpAnnounceRequest, peer: PeerAddress): PeerAnnounce {
    let who = peer;
    // BEP 15's IPv4 field; an address of the other family would break "one family per answer".
    if (this.#options.allowIpParam && request.request.ip !== undefined) {
      const claimed = addressToBytes(request.request.ip);
      if (claimed !== undefined && claimed.family === peer.family) who = claimed;
    }
    return toPeerAnnounce(request.request, who, this.#options.policy);
  }

  #answerAnnounce(transactionId: number, result: AnnounceResult, rinfo: RemoteInfo): void {
    const length = encodeUdpAnnounceResponseInto(
      this.#out,
      transactionId,
      this.#options.interval,
      result.leechers,
      result.seeders,
      result.peers,
    );
    this.#send(length, rinfo);
    this.#options.metrics.request('udp', 'announce', 'ok').inc();
  }

  /** Embedded stores answer in the same turn: no Promise, no closure per packet. */
  #announceSync(
    announceSync: SyncAnnounce,
    request: UdpAnnounceRequest,
    peer: PeerAddress,
    rinfo: RemoteInfo,
    start: number,
  ): void {
    try {
      this.#answerAnnounce(
        request.transactionId,
        announceSync(this.#announcer(request, peer)),
        rinfo,
      );
    } catch (err) {
      this.#refuse(request.transactionId, describeRefusal(err), 'announce', rinfo, err);
    }
    this.#options.metrics.observe('udp', 'announce', start);
  }

  async #announce(
    request: UdpAnnounceRequest,
    peer: PeerAddress,
    rinfo: RemoteInfo,
    start: number,
  ): Promise<void> {
    this.#inFlight++;
    try {
      const result = await this.#options.storage.announce(this.#announcer(request, peer));
      this.#answerAnnounce(request.transactionId, result, rinfo);
    } catch (err) {
      this.#refuse(request.transactionId, describeRefusal(err), 'announce', rinfo, err);
    } finally {
      this.#options.metrics.observe('udp', 'announce', start);
      this.#settle();
    }
  }

  async #scrape(request: UdpScrapeRequest, rinfo: RemoteInfo, start: number): Promise<void> {
    const { metrics, storage } = this.#options;
    this.#inFlight++;
    try {
      const hashes =
        request.infoHashes.length > this.#scrapeMax
          ? request.infoHashes.slice(0, this.#scrapeMax)
          : request.infoHashes;
      const counts = await storage.scrape(hashes);
      const length = encodeUdpScrapeResponseInto(
        this.#out,
        request.transactionId,
        counts.map((c) => ({
          complete: c.seeders,
          incomplete: c.leechers,
          downloaded: c.downloaded,
        })),
      );
      this.#send(length, rinfo);
      metrics.request('udp', 'scrape', 'ok').inc();
    } catch (err) {
      this.#refuse(request.transactionId, describeRefusal(err), 'scrape', rinfo, err);
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

  #refuse(
    transactionId: number,
    refusal: Refusal,
    action: 'announce' | 'scrape',
    rinfo: RemoteInfo,
    err?: unknown,
  ): void {
    const { metrics, logger } = this.#options;
    metrics.request('udp', action, refusal.ours ? 'failed' : 'rejected').inc();
    metrics.error('udp', refusal.code);
    if (refusal.ours)
      logger.error({ err, action, code: refusal.code, transactionId }, 'udp request failed');
    try {
      this.#send(encodeErrorResponseInto(this.#out, transactionId, refusal.reason), rinfo);
    } catch (encodeErr) {
      logger.error({ err: encodeErr }, 'udp error answer could not be encoded');
    }
  }

  #send(length: number, rinfo: RemoteInfo): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    try {
      socket.send(this.#out, 0, length, rinfo.port, rinfo.address);
    } catch {
      this.#options.metrics.udpDropped('send_failed');
      return;
    }
    // A queued send still points at this buffer: leave it to the queue.
    if (socket.getSendQueueCount() > 0) this.#out = Buffer.allocUnsafe(this.#out.length);
  }
}
