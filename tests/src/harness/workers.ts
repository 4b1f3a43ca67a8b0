// Helpers for the tests of a gateway with worker threads (docs/workers.md):
// which worker answered a request, read from
// shoal_gateway_worker_requests_total{worker} before and after one request
// at a time; UDP clients found per worker (each client is its own source
// port, and SO_REUSEPORT spreads source ports over the workers); UDP
// announces and scrapes that wait as long as a loaded machine needs (the
// harness client's own timeout is 2 s); HTTP announces on a connection of
// their own; the admin API with the bearer token.
import { request } from 'node:http';
import { expect } from 'vitest';
import type { GatewayProcess } from '@shoal/testing/launcher';
import {
  UdpTrackerClient,
  announcePacket,
  announceQuery,
  connectPacket,
  scrapePacket,
  decodeBencodeDict,
  decodeCompactPeers,
  randomPeerId,
  type AnnounceParams,
} from '@shoal/testing/tracker-client';

/** Clients tried before concluding that the kernel sends none to some worker: a 2^-63 chance per worker of two. */
export const MAX_CLIENTS = 64;
/** How long one UDP exchange may take: a worker of a loaded machine can be slow. */
export const PATIENCE_MS = 60_000;

export interface ScrapeCounts {
  complete: number;
  downloaded: number;
  incomplete: number;
}

export interface WorkersProbe {
  metricsText: () => Promise<string>;
  /** shoal_gateway_worker_requests_total per worker index. */
  perWorker: () => Promise<number[]>;
  /** Runs `act` alone and returns the one worker whose request count grew. */
  workerOf: (act: () => Promise<unknown>) => Promise<number>;
  /** A new UDP client (its own source port), closed by closeClients(). */
  udpClient: () => Promise<UdpTrackerClient>;
  /** One UDP client per worker, found by connecting. */
  udpClientPerWorker: () => Promise<Map<number, UdpTrackerClient>>;
  connect: (client: UdpTrackerClient) => Promise<Buffer>;
  announce: (
    client: UdpTrackerClient,
    a: AnnounceParams,
    timeoutMs?: number,
  ) => Promise<{ seeders: number; leechers: number; peers: string[] }>;
  scrape: (client: UdpTrackerClient, infoHashes: readonly Buffer[]) => Promise<ScrapeCounts[]>;
  /** Each leecher announces `completed` and then again, all at once: the second must count nothing. */
  completeTwice: (leechers: Array<[UdpTrackerClient, AnnounceParams]>) => Promise<void>;
  /** A GET of the tracker port on a connection of its own (no keep-alive pool: a fresh source port). */
  freshHttpGet: (path: string) => Promise<Buffer>;
  /** An HTTP announce on a connection of its own. */
  freshHttpAnnounce: (a: AnnounceParams) => Promise<{ peers: string[]; complete: number }>;
  /** The admin API with the bearer token, bounded at 30 s. */
  admin: (path: string, method?: string) => Promise<Response>;
  closeClients: () => Promise<void>;
}

/** The sum of the samples of `name` whose labels include `labels`. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const wanted = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (wanted) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export function peer(port: number, left: bigint, infoHash: Buffer): AnnounceParams {
  return { infoHash, peerId: randomPeerId(), port, left };
}

export function workersProbe(
  gateway: () => GatewayProcess,
  workers: number,
  token: string,
): WorkersProbe {
  const clients: UdpTrackerClient[] = [];

  async function metricsText(): Promise<string> {
    const res = await fetch(gateway().adminUrl('/metrics'), {
      signal: AbortSignal.timeout(30_000),
    });
    expect(res.status).toBe(200);
    return res.text();
  }

  async function perWorker(): Promise<number[]> {
    const text = await metricsText();
    return Array.from({ length: workers }, (_, w) =>
      sample(text, 'shoal_gateway_worker_requests_total', { worker: String(w) }),
    );
  }

  async function workerOf(act: () => Promise<unknown>): Promise<number> {
    const before = await perWorker();
    await act();
    const after = await perWorker();
    const grew = after.map((n, w) => n - (before[w] ?? 0)).flatMap((d, w) => (d > 0 ? [w] : []));
    expect(grew, `requests per worker ${String(before)} -> ${String(after)}`).toHaveLength(1);
    return grew[0]!;
  }

  async function udpClient(): Promise<UdpTrackerClient> {
    const client = await UdpTrackerClient.open(gateway().udpPort, gateway().host);
    clients.push(client);
    return client;
  }

  async function connect(client: UdpTrackerClient): Promise<Buffer> {
    const tid = client.transactionId();
    const reply = await client.exchange(connectPacket(tid), tid, PATIENCE_MS);
    if (reply?.action !== 0) throw new Error(`no connect answer: ${String(reply?.action)}`);
    return Buffer.from(reply.packet.subarray(8, 16));
  }

  async function udpClientPerWorker(): Promise<Map<number, UdpTrackerClient>> {
    const found = new Map<number, UdpTrackerClient>();
    for (let i = 0; i < MAX_CLIENTS && found.size < workers; i++) {
      const client = await udpClient();
      const w = await workerOf(() => connect(client));
      if (!found.has(w)) found.set(w, client);
    }
    return found;
  }

  async function announce(
    client: UdpTrackerClient,
    a: AnnounceParams,
    timeoutMs = PATIENCE_MS,
  ): Promise<{ seeders: number; leechers: number; peers: string[] }> {
    const conn = await connect(client);
    const tid = client.transactionId();
    const reply = await client.exchange(announcePacket(conn, tid, a), tid, timeoutMs);
    if (reply?.action !== 1)
      throw new Error(
        `no announce answer: action ${String(reply?.action)} ${reply?.packet.subarray(8).toString('latin1') ?? ''}`,
      );
    return {
      leechers: reply.packet.readUInt32BE(12),
      seeders: reply.packet.readUInt32BE(16),
      peers: decodeCompactPeers(reply.packet.subarray(20)),
    };
  }

  async function scrape(
    client: UdpTrackerClient,
    infoHashes: readonly Buffer[],
  ): Promise<ScrapeCounts[]> {
    const conn = await connect(client);
    const tid = client.transactionId();
    const reply = await client.exchange(scrapePacket(conn, tid, infoHashes), tid, PATIENCE_MS);
    if (reply?.action !== 2)
      throw new Error(
        `no scrape answer: action ${String(reply?.action)} ${reply?.packet.subarray(8).toString('latin1') ?? ''}`,
      );
    return infoHashes.map((_, i) => ({
      complete: reply.packet.readUInt32BE(8 + 12 * i),
      downloaded: reply.packet.readUInt32BE(12 + 12 * i),
      incomplete: reply.packet.readUInt32BE(16 + 12 * i),
    }));
  }

  async function completeTwice(leechers: Array<[UdpTrackerClient, AnnounceParams]>): Promise<void> {
    for (const event of ['completed', 'none'] as const)
      await Promise.all(leechers.map(([c, a]) => announce(c, { ...a, left: 0n, event })));
  }

  function freshHttpGet(path: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: gateway().host,
          port: gateway().httpPort,
          path,
          agent: false,
          headers: { connection: 'close' },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
        },
      );
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error(`HTTP GET ${path} timed out`)));
      req.end();
    });
  }

  async function freshHttpAnnounce(
    a: AnnounceParams,
  ): Promise<{ peers: string[]; complete: number }> {
    const body = await freshHttpGet(`/announce?${announceQuery(a)}`);
    const dict = decodeBencodeDict(body);
    const peers = dict.peers;
    if (!Buffer.isBuffer(peers)) throw new Error(`no peers: ${body.toString('latin1')}`);
    return { peers: decodeCompactPeers(peers), complete: Number(dict.complete) };
  }

  const admin = (path: string, method = 'GET'): Promise<Response> =>
    fetch(gateway().adminUrl(path), {
      method,
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(30_000),
    });

  return {
    metricsText,
    perWorker,
    workerOf,
    udpClient,
    udpClientPerWorker,
    connect,
    announce,
    scrape,
    completeTwice,
    freshHttpGet,
    freshHttpAnnounce,
    admin,
    closeClients: async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
    },
  };
}
