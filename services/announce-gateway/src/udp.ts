// The UDP tracker (BEP 15; BEP 41 URL data carries the passkey and jwt of docs/policy.md). One socket per gateway;
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
import { PolicyError } from '@shoal/policy';
import type { AnnounceResult, PeerAnnounce } from '@shoal/storage';
import { describeRefusal, toPeerAnnounce, type AnnouncePolicy, type Refusal } from './announce.ts';
import type { PeerAddress } from './client-address.ts';
import type { Action, GatewayMetrics } from './metrics.ts';
import { parseUrlData, type PolicyChain } from './policy/chain.ts';
import type { GatewayStorage } from './storage.ts';

type SyncAnnounce = (a: PeerAnnounce) => AnnounceResult;
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
  /** The policy chain; undefined when every step is off. */
  chain?: PolicyChain | undefined;
  /** ANNOUNCE_INTERVAL_JITTER_SECONDS: 0..N added to `interval`. */
  jitterSeconds?: number;
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
  readonly #chain: PolicyChain | undefined;
  readonly #jitter: number;
  #socket: Socket | undefined;
  #out: Buffer;
  #inFlight = 0;
  #closing = false;
  #drained: (() => void) | undefined;

  constructor(options: UdpTrackerOptions) {
    this.#options = options;
    this.#sync = options.storage.announceSync?.bind(options.storage);
    this.#chain = options.chain;
    this.#jitter = options.jitterSeconds ?? 0;
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
      const sender = addressToBytes(rinfo.address);
      if (tid === undefined || sender === undefined) {
        metrics.udpDropped('malformed');
        return;
      }
      // BEP 15 action field at offset 8 only labels the metric.
      const action = msg.length >= 12 && msg.readUInt32BE(8) === 2 ? 'scrape' : 'announce';
      // A malformed packet that still carries a valid connection id comes from a proven address.
      const proven = this.#options.connectionIds.verify(
        msg.subarray(0, 8),
        sender.bytes,
        this.#options.clock(),
      );
      this.#refuse(tid, describeRefusal(err), action, rinfo, undefined, proven ? 0 : msg.length);
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
        const allowed = this.#chain?.connectAllowed;
        if (allowed !== undefined && !allowed(peer, now)) {
          this.#refuse(
            request.transactionId,
            RATE_LIMITED,
            'connect',
            rinfo,
            undefined,
            msg.length,
          );
          metrics.observe('udp', 'connect', start);
          return;
        }
        const id = this.#options.connectionIds.issue(peer.bytes, now);
        this.#send(encodeConnectResponseInto(this.#out, request.transactionId, id), rinfo);
        metrics.request('udp', 'connect', 'ok').inc();
        metrics.observe('udp', 'connect', start);
        return;
      }
      case 'announce':
        if (!this.#options.connectionIds.verify(request.connectionId, peer.bytes, now)) {
          metrics.connectionIdRejected();
          this.#refuse(
            request.transactionId,
            BAD_CONNECTION_ID,
            'announce',
            rinfo,
            undefined,
            msg.length,
          );
          return;
        }
        if (this.#chain !== undefined)
          this.#policyAnnounce(this.#chain, request, peer, rinfo, start, now);
        else if (this.#sync !== undefined)
          this.#announceSync(this.#sync, request, peer, rinfo, start);
        else void this.#announce(request, peer, rinfo, start);
        return;
      case 'scrape':
        if (!this.#options.connectionIds.verify(request.connectionId, peer.bytes, now)) {
          metrics.connectionIdRejected();
          this.#refuse(
            request.transactionId,
            BAD_CONNECTION_ID,
            'scrape',
            rinfo,
            undefined,
            msg.length,
          );
          return;
        }
        if (this.#chain !== undefined) {
          try {
            this.#chain.limitRequests?.(peer, now);
            // BEP 41 URL data follows announces only: a private tracker's UDP scrape has no passkey.
            this.#chain.checkScrape(undefined, now);
          } catch (err) {
            this.#refuse(request.transactionId, describeRefusal(err), 'scrape', rinfo, err);
            metrics.observe('udp', 'scrape', start);
            return;
          }
        }
        void this.#scrape(request, rinfo, start);
        return;
    }
  };

  /** The chain's synchronous steps, then the JWT (async) or straight to the store. */
  #policyAnnounce(
    chain: PolicyChain,
    request: UdpAnnounceRequest,
    peer: PeerAddress,
    rinfo: RemoteInfo,
    start: number,
    now: number,
  ): void {
    let jwt: string | undefined;
    try {
      chain.limitRequests?.(peer, now);
      if (chain.passkeyRequired || chain.jwt !== undefined) {
        const url = parseUrlData(request.urlData);
        chain.checkPasskey(url.passkey, now);
        jwt = url.jwt;
      }
      if (chain.jwt === undefined)
        chain.checkApproval(request.request.infoHash, request.request.peerId);
    } catch (err) {
      this.#refuse(request.transactionId, describeRefusal(err), 'announce', rinfo, err);
      this.#options.metrics.observe('udp', 'announce', start);
      return;
    }
    if (chain.jwt !== undefined) void this.#announce(request, peer, rinfo, start, chain, jwt, now);
    else if (this.#sync !== undefined) this.#announceSync(this.#sync, request, peer, rinfo, start);
    else void this.#announce(request, peer, rinfo, start);
  }

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
    const jitter = this.#jitter;
    const length = encodeUdpAnnounceResponseInto(
      this.#out,
      transactionId,
      jitter === 0
        ? this.#options.interval
        : this.#options.interval + Math.floor(Math.random() * (jitter + 1)),
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

  /** `chain` and `jwt`: the JWT step and the approval steps after it run here, before the store. */
  async #announce(
    request: UdpAnnounceRequest,
    peer: PeerAddress,
    rinfo: RemoteInfo,
    start: number,
    chain?: PolicyChain,
    jwt?: string,
    now = 0,
  ): Promise<void> {
    this.#inFlight++;
    try {
      if (chain?.jwt !== undefined) {
        await chain.jwt.verify(jwt, request.request.infoHash, now);
        chain.checkApproval(request.request.infoHash, request.request.peerId);
      }
      const wanted = this.#announcer(request, peer);
      const result =
        this.#sync !== undefined
          ? this.#sync(wanted)
          : await this.#options.storage.announce(wanted);
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
      const hidden = this.#chain?.scrapeHidden;
      const length = encodeUdpScrapeResponseInto(
        this.#out,
        request.transactionId,
        counts.map((c, i) =>
          hidden !== undefined && hidden(hashes[i]!)
            ? { complete: 0, incomplete: 0, downloaded: 0 }
            : { complete: c.seeders, incomplete: c.leechers, downloaded: c.downloaded },
        ),
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

  /**
   * `unprovenBytes`: the packet's length when its sender has not proven its
   * address with a valid connection id; the answer is then no larger than
   * that (docs/limits.md "UDP answers"). 0: proven, the full text.
   */
  #refuse(
    transactionId: number,
    refusal: Refusal,
    action: Action,
    rinfo: RemoteInfo,
    err?: unknown,
    unprovenBytes = 0,
  ): void {
    const { metrics, logger } = this.#options;
    metrics.request('udp', action, refusal.ours ? 'failed' : 'rejected').inc();
    metrics.error('udp', refusal.code);
    if (refusal.ours && refusal.quiet !== true)
      logger.error({ err, action, code: refusal.code, transactionId }, 'udp request failed');
    const text =
      unprovenBytes === 0
        ? refusal.reason
        : fitErrorText(refusal.reason, unprovenBytes - UDP_ERROR_HEADER_BYTES);
    try {
      this.#send(encodeErrorResponseInto(this.#out, transactionId, text), rinfo);
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
