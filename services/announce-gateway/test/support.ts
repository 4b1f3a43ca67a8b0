// Test helpers for the gateway's own tests. The wire is read and written by
// @shoal/testing's tracker client (independent of @shoal/protocol, so the
// tests check the wire and not the codecs against themselves); what is here
// adds the defaults these tests share and builds a gateway in-process.
import { type Socket } from 'node:dgram';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { StoreError } from '@shoal/storage';
import { createMemoryStore } from '@shoal/storage/memory';
import { LOOPBACK_ENV, testUdpBatchEnv } from '@shoal/testing/launcher';
import {
  UdpTrackerClient,
  announcePacket as udpAnnouncePacket,
  connectPacket,
  percentEncodeBytes,
  scrapePacket,
  type AnnounceParams as ClientAnnounceParams,
} from '@shoal/testing/tracker-client';
import { loadGatewayConfig } from '../src/config.ts';
import { buildGateway, type Gateway, type GatewayDeps } from '../src/gateway.ts';
import type { PolicySource } from '../src/policy/source.ts';
import type { GatewayStorage } from '../src/storage.ts';

export type { BValue } from '@shoal/testing/bencode';
export {
  connectPacket,
  decodeBencodeDict as bdict,
  percentEncodeBytes as percentBytes,
} from '@shoal/testing/tracker-client';
export { scrapePacket };

export interface AnnounceParams {
  infoHash: Buffer;
  peerId?: Buffer;
  port: number;
  left?: number;
  event?: string;
  numwant?: number;
  compact?: 0 | 1;
  ip?: string;
  /** BEP 7, sent percent-encoded. */
  ipv4?: string;
  ipv6?: string;
}

/**
 * The HTTP announce query these tests send: `compact` only when given (the
 * gateway's default is under test), numbers as the tests write them; the
 * bytes are percent-encoded by the shared client's encoder.
 */
export function announceQuery(p: AnnounceParams): string {
  const parts = [
    `info_hash=${percentEncodeBytes(p.infoHash)}`,
    `peer_id=${percentEncodeBytes(p.peerId ?? peerIdFor(p.port))}`,
    `port=${p.port}`,
    'uploaded=0',
    'downloaded=0',
    `left=${p.left ?? 100}`,
  ];
  if (p.event !== undefined) parts.push(`event=${p.event}`);
  if (p.numwant !== undefined) parts.push(`numwant=${p.numwant}`);
  if (p.compact !== undefined) parts.push(`compact=${p.compact}`);
  if (p.ip !== undefined) parts.push(`ip=${encodeURIComponent(p.ip)}`);
  if (p.ipv4 !== undefined) parts.push(`ipv4=${encodeURIComponent(p.ipv4)}`);
  if (p.ipv6 !== undefined) parts.push(`ipv6=${encodeURIComponent(p.ipv6)}`);
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

/** A store whose every call fails with STORE_ERR_UNAVAILABLE, as during an outage. */
export function unavailableStorage(): GatewayStorage {
  const down = new StoreError('STORE_ERR_UNAVAILABLE', 'connection refused');
  return {
    driver: 'failing',
    announce: () => Promise.reject(down),
    scrape: () => Promise.reject(down),
    collectGarbage: () => Promise.reject(down),
    stats: () => Promise.reject(down),
    ping: () => Promise.reject(down),
    close: () => Promise.resolve(),
  };
}

/** A metric of the gateway's registry, summed over the series matching `labels`. */
export async function metricSum(
  t: TestGateway,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = await t.registry.getSingleMetric(name)?.get();
  const entries = Object.entries(labels);
  return (m?.values ?? [])
    .filter((v) => entries.every(([k, x]) => v.labels[k] === x))
    .reduce((sum, v) => sum + v.value, 0);
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
    webSocket?: GatewayDeps['webSocket'];
  } = {},
): TestGateway {
  const config = loadGatewayConfig({
    env: { ...LOOPBACK_ENV, ...testUdpBatchEnv(), ...env },
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
    ...(options.webSocket === undefined ? {} : { webSocket: options.webSocket }),
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

/** A UDP client on one loopback address talking to any port; answers are matched by transaction id. */
export class UdpClient {
  readonly #type: 'udp4' | 'udp6';
  #client: UdpTrackerClient | undefined;

  constructor(type: 'udp4' | 'udp6') {
    this.#type = type;
  }

  async bind(host: string): Promise<void> {
    if ((host.includes(':') ? 'udp6' : 'udp4') !== this.#type)
      throw new Error(`${host} is not a ${this.#type} address`);
    this.#client = await UdpTrackerClient.open(0, host);
  }

  get #bound(): UdpTrackerClient {
    if (this.#client === undefined) throw new Error('UdpClient: bind() first');
    return this.#client;
  }

  get socket(): Socket {
    return this.#bound.socket;
  }

  tid(): number {
    return this.#bound.transactionId();
  }

  /** Sends `packet` and resolves with the answer for `tid`, or undefined after `timeoutMs`. */
  async request(
    packet: Buffer,
    tid: number,
    port: number,
    host: string,
    timeoutMs = 2000,
  ): Promise<Buffer | undefined> {
    return (await this.#bound.exchange(packet, tid, timeoutMs, { port, host }))?.packet;
  }

  /** Sends the packet `build` makes for a fresh transaction id and resolves with its answer, as `request`. */
  send(
    build: (tid: number) => Buffer,
    port: number,
    host: string,
    timeoutMs?: number,
  ): Promise<Buffer | undefined> {
    const tid = this.tid();
    return this.request(build(tid), tid, port, host, timeoutMs);
  }

  /** A BEP 15 announce with `announcePacket`'s defaults. */
  announce(
    connectionId: Buffer,
    p: UdpAnnounceParams,
    port: number,
    host: string,
  ): Promise<Buffer | undefined> {
    return this.send((tid) => announcePacket(connectionId, tid, p), port, host);
  }

  /** A BEP 15 scrape of `hashes`. */
  scrape(
    connectionId: Buffer,
    hashes: Buffer[],
    port: number,
    host: string,
  ): Promise<Buffer | undefined> {
    return this.send((tid) => scrapePacket(connectionId, tid, hashes), port, host);
  }

  close(): Promise<void> {
    return this.#bound.close();
  }
}

/** What a UDP announce of these tests names; the rest comes from `announcePacket`'s defaults. */
export type UdpAnnounceParams = Pick<ClientAnnounceParams, 'infoHash' | 'port'> &
  Partial<ClientAnnounceParams>;

/** A BEP 15 announce with these tests' defaults: the peer id from the port, 100 bytes left. */
export function announcePacket(connectionId: Buffer, tid: number, p: UdpAnnounceParams): Buffer {
  return udpAnnouncePacket(connectionId, tid, { peerId: peerIdFor(p.port), left: 100n, ...p });
}

/** BEP 15 connect: returns the 8-byte connection id. */
export async function udpConnect(client: UdpClient, port: number, host: string): Promise<Buffer> {
  const tid = client.tid();
  const answer = await client.request(connectPacket(tid), tid, port, host);
  if (answer?.length !== 16 || answer.readUInt32BE(0) !== 0) throw new Error('connect failed');
  return Buffer.from(answer.subarray(8, 16));
}
