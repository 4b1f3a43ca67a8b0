// A minimal tracker client written from the BEPs, independent of
// @shoal/protocol on purpose: the gateway's codecs are what these tests
// check, so they must not be the ones that build the requests.
import { createSocket, type Socket } from 'node:dgram';
import { request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { decodeBencode, isDict, type BDict, type BValue } from './bencode.ts';
import { HarnessError } from './errors.ts';

// BEP 15
export const UDP_PROTOCOL_ID = 0x41727101980n;
export const UDP_ACTION = { connect: 0, announce: 1, scrape: 2, error: 3 } as const;
export const UDP_EVENT = { none: 0, completed: 1, started: 2, stopped: 3 } as const;
export const UDP_ANNOUNCE_LENGTH = 98;

export type EventName = keyof typeof UDP_EVENT;

export interface AnnounceParams {
  infoHash: Buffer;
  peerId: Buffer;
  port: number;
  left: bigint;
  event?: EventName;
  /** UDP: -1 (default) when absent; HTTP: parameter omitted when absent. */
  numWant?: number;
  uploaded?: bigint;
  downloaded?: bigint;
  key?: number;
  /** UDP only: BEP 41 URLData, sent as options of at most 255 bytes each, then EndOfOptions. */
  urlData?: string;
  /** HTTP only: BEP 7 `ipv4=` / `ipv6=`, percent-escaped as libtorrent escapes them. */
  ipv4?: string;
  ipv6?: string;
}

export interface AnnounceReply {
  interval: number;
  seeders: number;
  leechers: number;
  /** IPv4 peers ("a.b.c.d:port"), or for a UDP client on IPv6 its IPv6 peers ("[v6]:port"). */
  peers: string[];
  /** HTTP `peers6` (BEP 7) as "[v6]:port"; empty when absent and always for UDP. */
  peers6: string[];
}

export interface ScrapeEntry {
  complete: number;
  incomplete: number;
  downloaded: number;
}

export function randomInfoHash(): Buffer {
  return randomBytes(20);
}

export function randomPeerId(prefix = '-SH0001-'): Buffer {
  return Buffer.concat([Buffer.from(prefix), randomBytes(20 - prefix.length)]);
}

/** Compact IPv4 peers (BEP 23): 4 address bytes + 2 port bytes each. */
export function decodeCompactPeers(buf: Uint8Array): string[] {
  if (buf.length % 6 !== 0)
    throw new HarnessError(
      'HARNESS_ERR_BAD_REPLY',
      `compact peers length ${buf.length} is not a multiple of 6`,
    );
  const out: string[] = [];
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < view.length; i += 6) {
    out.push(`${view[i]}.${view[i + 1]}.${view[i + 2]}.${view[i + 3]}:${view.readUInt16BE(i + 4)}`);
  }
  return out;
}

/** Compact IPv6 peers (BEP 7): 16 address bytes + 2 port bytes each, as "[addr]:port" (RFC 5952 form). */
export function decodeCompactPeers6(buf: Uint8Array): string[] {
  if (buf.length % 18 !== 0)
    throw new HarnessError(
      'HARNESS_ERR_BAD_REPLY',
      `compact IPv6 peers length ${buf.length} is not a multiple of 18`,
    );
  const out: string[] = [];
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < view.length; i += 18) {
    const groups: string[] = [];
    for (let g = 0; g < 8; g++) groups.push(view.readUInt16BE(i + 2 * g).toString(16));
    // The WHATWG URL parser prints IPv6 hosts compressed, as RFC 5952 asks.
    const host = new URL(`http://[${groups.join(':')}]/`).hostname;
    out.push(`${host}:${view.readUInt16BE(i + 16)}`);
  }
  return out;
}

export function connectPacket(transactionId: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(UDP_PROTOCOL_ID, 0);
  b.writeUInt32BE(UDP_ACTION.connect, 8);
  b.writeUInt32BE(transactionId >>> 0, 12);
  return b;
}

export function announcePacket(
  connectionId: Buffer,
  transactionId: number,
  a: AnnounceParams,
): Buffer {
  const url = a.urlData === undefined ? undefined : Buffer.from(a.urlData, 'latin1');
  const options: Buffer[] = [];
  for (let at = 0; url !== undefined && at < url.length; at += 255) {
    const piece = url.subarray(at, at + 255);
    options.push(Buffer.from([0x02 /* URLData */, piece.length]), piece);
  }
  if (url !== undefined) options.push(Buffer.from([0x00 /* EndOfOptions */]));
  const b = Buffer.alloc(UDP_ANNOUNCE_LENGTH + options.reduce((n, o) => n + o.length, 0));
  Buffer.concat(options).copy(b, UDP_ANNOUNCE_LENGTH);
  connectionId.copy(b, 0, 0, 8);
  b.writeUInt32BE(UDP_ACTION.announce, 8);
  b.writeUInt32BE(transactionId >>> 0, 12);
  a.infoHash.copy(b, 16);
  a.peerId.copy(b, 36);
  b.writeBigUInt64BE(a.downloaded ?? 0n, 56);
  b.writeBigUInt64BE(a.left, 64);
  b.writeBigUInt64BE(a.uploaded ?? 0n, 72);
  b.writeUInt32BE(UDP_EVENT[a.event ?? 'none'], 80);
  b.writeUInt32BE(0, 84); // IP: 0 = the packet's source address
  b.writeUInt32BE((a.key ?? 0) >>> 0, 88);
  b.writeInt32BE(a.numWant ?? -1, 92);
  b.writeUInt16BE(a.port, 96);
  return b;
}

export function scrapePacket(
  connectionId: Buffer,
  transactionId: number,
  infoHashes: readonly Buffer[],
): Buffer {
  const b = Buffer.alloc(16 + 20 * infoHashes.length);
  connectionId.copy(b, 0, 0, 8);
  b.writeUInt32BE(UDP_ACTION.scrape, 8);
  b.writeUInt32BE(transactionId >>> 0, 12);
  infoHashes.forEach((h, i) => h.copy(b, 16 + 20 * i));
  return b;
}

export interface UdpReply {
  action: number;
  transactionId: number;
  packet: Buffer;
}

/** Splits the common reply header; undefined for packets too short to have one. */
export function parseUdpReply(packet: Buffer): UdpReply | undefined {
  if (packet.length < 8) return undefined;
  return { action: packet.readUInt32BE(0), transactionId: packet.readUInt32BE(4), packet };
}

/** A UDP tracker client on its own socket; replies are matched to requests by transaction id. */
export class UdpTrackerClient {
  readonly socket: Socket;
  readonly host: string;
  readonly port: number;
  private readonly waiting = new Map<number, (reply: UdpReply) => void>();
  private nextTransaction = randomBytes(4).readUInt32BE(0);
  /** Replies that matched no request in flight. */
  readonly unmatched: Buffer[] = [];

  private constructor(socket: Socket, host: string, port: number) {
    this.socket = socket;
    this.host = host;
    this.port = port;
    socket.on('message', (msg) => {
      const reply = parseUdpReply(msg);
      const resolve = reply === undefined ? undefined : this.waiting.get(reply.transactionId);
      if (reply === undefined || resolve === undefined) {
        this.unmatched.push(msg);
        return;
      }
      this.waiting.delete(reply.transactionId);
      resolve(reply);
    });
  }

  /** `localAddress`: the loopback address to send from (127.0.0.2 is another client address on Linux). */
  static async open(
    port: number,
    host = '127.0.0.1',
    localAddress = host.includes(':') ? '::1' : '127.0.0.1',
  ): Promise<UdpTrackerClient> {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, localAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new UdpTrackerClient(socket, host, port);
  }

  transactionId(): number {
    this.nextTransaction = (this.nextTransaction + 1) >>> 0;
    return this.nextTransaction;
  }

  send(packet: Buffer): void {
    this.socket.send(packet, this.port, this.host);
  }

  /**
   * Sends `packet` (to this client's tracker, or to `to`) and resolves with the
   * reply carrying `transactionId`, or undefined after `timeoutMs`.
   */
  exchange(
    packet: Buffer,
    transactionId: number,
    timeoutMs = 2_000,
    to: { port: number; host: string } = this,
  ): Promise<UdpReply | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(transactionId);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(transactionId, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.socket.send(packet, to.port, to.host);
    });
  }

  private async request(
    packet: Buffer,
    transactionId: number,
    expectAction: number,
  ): Promise<Buffer> {
    const reply = await this.exchange(packet, transactionId);
    if (reply === undefined)
      throw new HarnessError('HARNESS_ERR_TIMEOUT', `no UDP reply from ${this.host}:${this.port}`);
    if (reply.action === UDP_ACTION.error) {
      throw new HarnessError(
        'HARNESS_ERR_BAD_REPLY',
        `tracker error: ${reply.packet.subarray(8).toString('utf8')}`,
      );
    }
    if (reply.action !== expectAction)
      throw new HarnessError(
        'HARNESS_ERR_BAD_REPLY',
        `action ${reply.action}, expected ${expectAction}`,
      );
    return reply.packet;
  }

  /** BEP 15 connect; resolves with the 8-byte connection id. */
  async connect(): Promise<Buffer> {
    const tid = this.transactionId();
    const reply = await this.request(connectPacket(tid), tid, UDP_ACTION.connect);
    if (reply.length < 16)
      throw new HarnessError('HARNESS_ERR_BAD_REPLY', `connect reply of ${reply.length} bytes`);
    return Buffer.from(reply.subarray(8, 16));
  }

  async announce(a: AnnounceParams, connectionId?: Buffer): Promise<AnnounceReply> {
    const conn = connectionId ?? (await this.connect());
    const tid = this.transactionId();
    const reply = await this.request(announcePacket(conn, tid, a), tid, UDP_ACTION.announce);
    if (reply.length < 20)
      throw new HarnessError('HARNESS_ERR_BAD_REPLY', `announce reply of ${reply.length} bytes`);
    return {
      interval: reply.readUInt32BE(8),
      leechers: reply.readUInt32BE(12),
      seeders: reply.readUInt32BE(16),
      // BEP 15: the answer carries the family of the packet (18-byte peers over IPv6).
      peers:
        this.socket.address().family === 'IPv6'
          ? decodeCompactPeers6(reply.subarray(20))
          : decodeCompactPeers(reply.subarray(20)),
      peers6: [],
    };
  }

  async scrape(infoHashes: readonly Buffer[], connectionId?: Buffer): Promise<ScrapeEntry[]> {
    const conn = connectionId ?? (await this.connect());
    const tid = this.transactionId();
    const reply = await this.request(scrapePacket(conn, tid, infoHashes), tid, UDP_ACTION.scrape);
    if (reply.length !== 8 + 12 * infoHashes.length)
      throw new HarnessError('HARNESS_ERR_BAD_REPLY', `scrape reply of ${reply.length} bytes`);
    return infoHashes.map((_, i) => ({
      complete: reply.readUInt32BE(8 + 12 * i),
      downloaded: reply.readUInt32BE(12 + 12 * i),
      incomplete: reply.readUInt32BE(16 + 12 * i),
    }));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** Percent-encodes every byte (RFC 3986 section 2.1), as clients send info_hash and peer_id. */
export function percentEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += `%${b.toString(16).padStart(2, '0')}`;
  return out;
}

/** HTTP-only announce switches (BEP 23 `compact`, `no_peer_id`). */
export interface HttpAnnounceOptions {
  /** false sends `compact=0` (a list of dictionaries); default `compact=1`. */
  compact?: boolean;
  /** Sends `no_peer_id=1`. */
  noPeerId?: boolean;
}

export function announceQuery(a: AnnounceParams, opts: HttpAnnounceOptions = {}): string {
  const parts = [
    `info_hash=${percentEncodeBytes(a.infoHash)}`,
    `peer_id=${percentEncodeBytes(a.peerId)}`,
    `port=${a.port}`,
    `uploaded=${a.uploaded ?? 0n}`,
    `downloaded=${a.downloaded ?? 0n}`,
    `left=${a.left}`,
    `compact=${opts.compact === false ? 0 : 1}`,
  ];
  if (opts.noPeerId === true) parts.push('no_peer_id=1');
  if (a.event !== undefined && a.event !== 'none') parts.push(`event=${a.event}`);
  if (a.numWant !== undefined) parts.push(`numwant=${a.numWant}`);
  if (a.key !== undefined) parts.push(`key=${a.key.toString(16)}`);
  if (a.ipv4 !== undefined) parts.push(`ipv4=${encodeURIComponent(a.ipv4)}`);
  if (a.ipv6 !== undefined) parts.push(`ipv6=${encodeURIComponent(a.ipv6)}`);
  return parts.join('&');
}

/** Decodes a tracker's bencoded answer; throws HARNESS_ERR_BAD_REPLY unless it is one dictionary. */
export function decodeBencodeDict(body: Buffer): BDict {
  const { value } = decodeBencode(body);
  if (!isDict(value))
    throw new HarnessError('HARNESS_ERR_BAD_REPLY', 'bencoded body is not a dictionary');
  return value;
}

function text(v: BValue | undefined): string | undefined {
  return Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
}

function int(dict: BDict, key: string): number {
  const v = dict[key];
  if (typeof v !== 'number')
    throw new HarnessError('HARNESS_ERR_BAD_REPLY', `"${key}" is not an integer`);
  return v;
}

async function httpGet(
  url: string,
  localAddress?: string,
): Promise<{ status: number; body: Buffer }> {
  if (localAddress !== undefined) return httpGetFrom(url, localAddress);
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

/** A GET whose connection leaves from `localAddress` (fetch cannot choose it). */
function httpGetFrom(url: string, localAddress: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { localAddress, agent: false, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () =>
      req.destroy(new HarnessError('HARNESS_ERR_TIMEOUT', `no answer from ${url}`)),
    );
    req.on('error', reject);
    req.end();
  });
}

/** HTTP announce (BEP 3, compact BEP 23); throws HARNESS_ERR_BAD_REPLY with the failure reason on a tracker error. */
export async function httpAnnounce(
  announceUrl: string,
  a: AnnounceParams,
  from?: { localAddress: string },
): Promise<AnnounceReply> {
  const { status, body } = await httpGet(`${announceUrl}?${announceQuery(a)}`, from?.localAddress);
  if (status !== 200) throw new HarnessError('HARNESS_ERR_BAD_REPLY', `HTTP ${status}`);
  const dict = decodeBencodeDict(body);
  const failure = text(dict['failure reason']);
  if (failure !== undefined)
    throw new HarnessError('HARNESS_ERR_BAD_REPLY', `failure reason: ${failure}`);
  const peers = dict.peers;
  if (!Buffer.isBuffer(peers))
    throw new HarnessError('HARNESS_ERR_BAD_REPLY', 'no compact "peers" string');
  return {
    interval: int(dict, 'interval'),
    seeders: int(dict, 'complete'),
    leechers: int(dict, 'incomplete'),
    peers: decodeCompactPeers(peers),
    peers6: Buffer.isBuffer(dict.peers6) ? decodeCompactPeers6(dict.peers6) : [],
  };
}

/** HTTP scrape (BEP 48): one entry per requested hash, in order (zeros for hashes the tracker left out). */
export async function httpScrape(
  scrapeUrl: string,
  infoHashes: readonly Buffer[],
): Promise<ScrapeEntry[]> {
  const query = infoHashes.map((h) => `info_hash=${percentEncodeBytes(h)}`).join('&');
  const { status, body } = await httpGet(`${scrapeUrl}?${query}`);
  if (status !== 200) throw new HarnessError('HARNESS_ERR_BAD_REPLY', `HTTP ${status}`);
  const dict = decodeBencodeDict(body);
  const failure = text(dict['failure reason']);
  if (failure !== undefined)
    throw new HarnessError('HARNESS_ERR_BAD_REPLY', `failure reason: ${failure}`);
  const files = dict.files;
  if (!isDict(files)) throw new HarnessError('HARNESS_ERR_BAD_REPLY', 'no "files" dictionary');
  return infoHashes.map((h) => {
    const entry = files[h.toString('latin1')];
    if (entry === undefined) return { complete: 0, incomplete: 0, downloaded: 0 };
    if (!isDict(entry))
      throw new HarnessError('HARNESS_ERR_BAD_REPLY', 'scrape entry is not a dictionary');
    return {
      complete: int(entry, 'complete'),
      incomplete: int(entry, 'incomplete'),
      downloaded: int(entry, 'downloaded'),
    };
  });
}

/** GETs a tracker URL and decodes its answer: HTTP 200 and one bencoded dictionary, a failure reason or not. */
export async function httpGetDict(url: string): Promise<BDict> {
  const { status, body } = await httpGet(url);
  if (status !== 200) throw new HarnessError('HARNESS_ERR_BAD_REPLY', `HTTP ${status}`);
  return decodeBencodeDict(body);
}

/** The raw answer to an announce, for what `httpAnnounce` does not model (compact=0, key presence). */
export function httpAnnounceDict(
  announceUrl: string,
  a: AnnounceParams,
  opts: HttpAnnounceOptions = {},
): Promise<BDict> {
  return httpGetDict(`${announceUrl}?${announceQuery(a, opts)}`);
}

/** One entry of a non-compact `peers` list (BEP 3). */
export interface DictPeer {
  ip: string;
  port: number;
  /** Absent when the tracker left `peer id` out. */
  peerId?: Buffer;
}

/** A non-compact `peers` value (BEP 3): a list of dictionaries with `ip`, `port` and optionally `peer id`. */
export function decodeDictPeers(value: BValue | undefined): DictPeer[] {
  if (!Array.isArray(value))
    throw new HarnessError('HARNESS_ERR_BAD_REPLY', '"peers" is not a list of dictionaries');
  return value.map((entry) => {
    if (!isDict(entry))
      throw new HarnessError('HARNESS_ERR_BAD_REPLY', 'a "peers" entry is not a dictionary');
    const ip = text(entry.ip);
    if (ip === undefined) throw new HarnessError('HARNESS_ERR_BAD_REPLY', 'peer without "ip"');
    const id = entry['peer id'];
    if (id !== undefined && !Buffer.isBuffer(id))
      throw new HarnessError('HARNESS_ERR_BAD_REPLY', '"peer id" is not a string');
    return { ip, port: int(entry, 'port'), ...(id === undefined ? {} : { peerId: id }) };
  });
}
