// Test helpers for the gateway's own tests: an independent bencode reader and
// raw BEP 15 packets, so the tests check the wire and not the codecs against
// themselves.
import { createSocket, type Socket } from 'node:dgram';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { createMemoryStore } from '@shoal/storage/memory';
import { loadGatewayConfig } from '../src/config.ts';
import { buildGateway, type Gateway } from '../src/gateway.ts';
import type { PolicySource } from '../src/policy/source.ts';
import type { GatewayStorage } from '../src/storage.ts';

export type BValue = number | Buffer | BValue[] | { [key: string]: BValue };

/** Minimal bencode decoder (BEP 3); strings stay bytes, dictionary keys become latin1 text. */
export function bdecode(data: Buffer): BValue {
  let pos = 0;
  function next(): BValue {
    const c = data[pos];
    if (c === 0x69) {
      const end = data.indexOf(0x65, pos);
      const n = Number(data.toString('latin1', pos + 1, end));
      pos = end + 1;
      return n;
    }
    if (c === 0x6c) {
      pos++;
      const list: BValue[] = [];
      while (data[pos] !== 0x65) list.push(next());
      pos++;
      return list;
    }
    if (c === 0x64) {
      pos++;
      const dict: { [key: string]: BValue } = {};
      while (data[pos] !== 0x65) {
        const key = next() as Buffer;
        dict[key.toString('latin1')] = next();
      }
      pos++;
      return dict;
    }
    const colon = data.indexOf(0x3a, pos);
    const len = Number(data.toString('latin1', pos, colon));
    const out = data.subarray(colon + 1, colon + 1 + len);
    pos = colon + 1 + len;
    return out;
  }
  const value = next();
  if (pos !== data.length) throw new Error(`trailing bytes at ${pos}`);
  return value;
}

export function bdict(data: Buffer): { [key: string]: BValue } {
  return bdecode(data) as { [key: string]: BValue };
}

/** Percent-encodes every byte, as clients do for info_hash and peer_id. */
export function percentBytes(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) out += `%${b.toString(16).padStart(2, '0')}`;
  return out;
}

export interface AnnounceParams {
  infoHash: Buffer;
  peerId?: Buffer;
  port: number;
  left?: number;
  event?: string;
  numwant?: number;
  compact?: 0 | 1;
  ip?: string;
}

export function announceQuery(p: AnnounceParams): string {
  const parts = [
    `info_hash=${percentBytes(p.infoHash)}`,
    `peer_id=${percentBytes(p.peerId ?? peerIdFor(p.port))}`,
    `port=${p.port}`,
    'uploaded=0',
    'downloaded=0',
    `left=${p.left ?? 100}`,
  ];
  if (p.event !== undefined) parts.push(`event=${p.event}`);
  if (p.numwant !== undefined) parts.push(`numwant=${p.numwant}`);
  if (p.compact !== undefined) parts.push(`compact=${p.compact}`);
  if (p.ip !== undefined) parts.push(`ip=${encodeURIComponent(p.ip)}`);
  return parts.join('&');
}

export function peerIdFor(n: number): Buffer {
  return Buffer.from(`-SH0001-${String(n).padStart(12, '0')}`, 'latin1');
}

export function hashOf(label: string): Buffer {
  const out = Buffer.alloc(20);
  out.write(label, 'latin1');
  return out;
}

export function silentLogger() {
  return pino({ level: 'silent' });
}

export interface TestGateway {
  gateway: Gateway;
  registry: Registry;
  storage: GatewayStorage;
  close(): Promise<void>;
}

export function makeGateway(
  env: Record<string, string> = {},
  options: {
    storage?: GatewayStorage;
    clock?: () => number;
    logger?: Logger;
    policySource?: PolicySource;
  } = {},
): TestGateway {
  const config = loadGatewayConfig({
    env: { HOST: '127.0.0.1', PORT: '0', ADMIN_HOST: '127.0.0.1', ADMIN_PORT: '0', ...env },
    argv: [],
  });
  const storage =
    options.storage ?? createMemoryStore({ peerLifetimeSeconds: config.PEER_LIFETIME_SECONDS });
  const registry = new Registry();
  const gateway = buildGateway({
    config,
    logger: options.logger ?? silentLogger(),
    registry,
    storage,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.policySource === undefined ? {} : { policySource: options.policySource }),
  });
  return {
    gateway,
    registry,
    storage,
    close: async () => {
      await gateway.close();
      await storage.close();
    },
  };
}

/** A UDP client that matches answers to requests by transaction id. */
export class UdpClient {
  readonly socket: Socket;
  readonly #waiting = new Map<number, (msg: Buffer) => void>();
  #nextTid = 0x1000;

  constructor(type: 'udp4' | 'udp6') {
    this.socket = createSocket(type);
    this.socket.on('message', (msg) => {
      if (msg.length < 8) return;
      const resolve = this.#waiting.get(msg.readUInt32BE(4));
      if (resolve !== undefined) resolve(msg);
    });
  }

  async bind(host: string): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, host, resolve));
  }

  tid(): number {
    return this.#nextTid++;
  }

  /** Sends `packet` and resolves with the answer for `tid`, or undefined after `timeoutMs`. */
  request(
    packet: Buffer,
    tid: number,
    port: number,
    host: string,
    timeoutMs = 2000,
  ): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(tid);
        resolve(undefined);
      }, timeoutMs);
      this.#waiting.set(tid, (msg) => {
        clearTimeout(timer);
        this.#waiting.delete(tid);
        resolve(msg);
      });
      this.socket.send(packet, port, host);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

const PROTOCOL_ID = 0x41727101980n;

export function connectPacket(tid: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(PROTOCOL_ID, 0);
  b.writeUInt32BE(0, 8);
  b.writeUInt32BE(tid, 12);
  return b;
}

export function announcePacket(
  connectionId: Buffer,
  tid: number,
  p: {
    infoHash: Buffer;
    port: number;
    left?: bigint;
    event?: number;
    numWant?: number;
    ip?: number;
    peerId?: Buffer;
    /** BEP 41 URLData, split into options of at most 255 bytes, then EndOfOptions. */
    urlData?: string;
  },
): Buffer {
  const url = p.urlData === undefined ? undefined : Buffer.from(p.urlData, 'latin1');
  const options: Buffer[] = [];
  for (let at = 0; url !== undefined && at < url.length; at += 255) {
    const piece = url.subarray(at, at + 255);
    options.push(Buffer.from([2, piece.length]), piece);
  }
  if (url !== undefined) options.push(Buffer.from([0]));
  const b = Buffer.alloc(98 + options.reduce((n, o) => n + o.length, 0));
  Buffer.concat(options).copy(b, 98);
  connectionId.copy(b, 0);
  b.writeUInt32BE(1, 8);
  b.writeUInt32BE(tid, 12);
  p.infoHash.copy(b, 16);
  (p.peerId ?? peerIdFor(p.port)).copy(b, 36);
  b.writeBigUInt64BE(0n, 56);
  b.writeBigUInt64BE(p.left ?? 100n, 64);
  b.writeBigUInt64BE(0n, 72);
  b.writeUInt32BE(p.event ?? 0, 80);
  b.writeUInt32BE(p.ip ?? 0, 84);
  b.writeUInt32BE(0x5eed, 88);
  b.writeInt32BE(p.numWant ?? -1, 92);
  b.writeUInt16BE(p.port, 96);
  return b;
}

export function scrapePacket(connectionId: Buffer, tid: number, hashes: Buffer[]): Buffer {
  const b = Buffer.alloc(16 + 20 * hashes.length);
  connectionId.copy(b, 0);
  b.writeUInt32BE(2, 8);
  b.writeUInt32BE(tid, 12);
  hashes.forEach((h, i) => h.copy(b, 16 + 20 * i));
  return b;
}

/** BEP 15 connect: returns the 8-byte connection id. */
export async function udpConnect(client: UdpClient, port: number, host: string): Promise<Buffer> {
  const tid = client.tid();
  const answer = await client.request(connectPacket(tid), tid, port, host);
  if (answer?.length !== 16 || answer.readUInt32BE(0) !== 0) throw new Error('connect failed');
  return Buffer.from(answer.subarray(8, 16));
}
