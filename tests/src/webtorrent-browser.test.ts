// Two WebTorrent clients in two real chromium processes move a file through
// a WebSocket tracker over WebRTC, byte for byte (docs/webtorrent.md
// "Browser test harness"). The reference run uses bittorrent-tracker's own
// server, which proves the harness; then Shoal's gateway alone (memory
// store), and two gateways on one redis-server with the seeder on A and the
// leecher on B, so offers and answers cross gateways through Redis. Each
// tracker to test is one more entry in `setups`.
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import {
  startGateway,
  startService,
  storageApiEnv,
  type GatewayProcess,
} from '@shoal/testing/launcher';
import { startRedis } from '@shoal/testing/redis';
import ReferenceTracker from 'bittorrent-tracker/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrowserUser, PageServer } from './harness/browser.ts';
import { transfer } from './harness/webtorrent-browser.ts';
import { sample } from './harness/workers.ts';

const PAYLOAD_BYTES = 3 * 1024 * 1024 + 12_345;

/** Where the seeder and the leecher announce, and how to stop it. */
interface Trackers {
  seedUrl: string;
  leechUrl: string;
  stop(): Promise<void>;
  /**
   * Shoal only: per gateway, its shoal_ws_relayed_total by scope and the one
   * scope its relays must all have (remote: they came from another gateway).
   */
  relays?: GatewayRelays[];
}

type Scope = 'local' | 'remote';

interface GatewayRelays {
  gateway: string;
  scope: Scope;
  read: () => Promise<Record<Scope, number>>;
}

async function startReference(): Promise<Trackers> {
  const server = new ReferenceTracker({ http: false, udp: false, ws: true, stats: false });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.ws?.address() as AddressInfo;
  const url = `ws://127.0.0.1:${port}`;
  return {
    seedUrl: url,
    leechUrl: url,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const wsUrl = (g: GatewayProcess): string => `ws://${g.host}:${g.httpPort}/announce`;

/** shoal_ws_relayed_total of one gateway, summed over kinds, by scope. */
async function relayedByScope(g: GatewayProcess): Promise<Record<Scope, number>> {
  const res = await fetch(g.adminUrl('/metrics'), { signal: AbortSignal.timeout(30_000) });
  expect(res.status).toBe(200);
  const text = await res.text();
  return {
    local: sample(text, 'shoal_ws_relayed_total', { scope: 'local' }),
    remote: sample(text, 'shoal_ws_relayed_total', { scope: 'remote' }),
  };
}

async function startShoalMemory(): Promise<Trackers> {
  // One worker: on the memory store each worker thread keeps its own
  // WebSocket swarms (docs/webtorrent.md "Status").
  const gateway = await startGateway({ STORAGE_DRIVER: 'memory', GATEWAY_WORKERS: '1' });
  return {
    seedUrl: wsUrl(gateway),
    leechUrl: wsUrl(gateway),
    stop: async () => {
      await gateway.stop();
    },
    relays: [{ gateway: 'the gateway', scope: 'local', read: () => relayedByScope(gateway) }],
  };
}

/** Gateways A and B on `env`, seeder on A and leecher on B; `close` stops what they use. */
async function twoGateways(
  env: Record<string, string>,
  close: () => Promise<unknown>,
): Promise<Trackers> {
  const gateways: GatewayProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const g of gateways) await g.stop();
    await close();
  };
  try {
    gateways.push(await startGateway({ ...env, GATEWAY_WORKERS: '1' }, { name: 'gateway-a' }));
    gateways.push(await startGateway({ ...env, GATEWAY_WORKERS: '1' }, { name: 'gateway-b' }));
  } catch (err) {
    await stop();
    throw err;
  }
  const [a, b] = gateways as [GatewayProcess, GatewayProcess];
  return {
    seedUrl: wsUrl(a),
    leechUrl: wsUrl(b),
    stop,
    // A gets the leecher's offer from B, B the seeder's answer from A.
    relays: [
      { gateway: 'gateway A', scope: 'remote', read: () => relayedByScope(a) },
      { gateway: 'gateway B', scope: 'remote', read: () => relayedByScope(b) },
    ],
  };
}

async function startShoalTwoGateways(): Promise<Trackers> {
  const redis = await startRedis();
  return twoGateways(
    {
      STORAGE_DRIVER: 'redis',
      REDIS_ADDRESSES: redis.address,
      REDIS_PASSWORD: redis.password ?? '',
    },
    () => redis.close(),
  );
}

/** docs/webtorrent.md "The split topology": both gateways on one storage-api (memory). */
async function startShoalSplit(): Promise<Trackers> {
  const token = randomBytes(24).toString('hex');
  const api = await startService({ service: 'storage-api', env: storageApiEnv(token, 'memory') });
  return twoGateways(
    {
      STORAGE_DRIVER: 'remote',
      STORAGE_API_URL: `http://127.0.0.1:${Number(api.listening.port)}`,
      STORAGE_API_TOKEN: token,
    },
    () => api.stop(),
  );
}

const setups: [string, () => Promise<Trackers>][] = [
  ['bittorrent-tracker (reference)', startReference],
  ["Shoal's gateway (memory store, one worker)", startShoalMemory],
  ['two Shoal gateways on one redis-server, seeder on A, leecher on B', startShoalTwoGateways],
  ['two Shoal gateways on one storage-api (split), seeder on A, leecher on B', startShoalSplit],
];

// One chromium per user for the whole file; each case reloads the pages.
const users: BrowserUser[] = [];
let pages: PageServer | undefined;

beforeAll(async () => {
  pages = await PageServer.start();
  users.push(await BrowserUser.launch('seeder', pages.origin));
  users.push(await BrowserUser.launch('leecher', pages.origin));
}, 300_000);

afterAll(async () => {
  const leftovers: number[] = [];
  for (const user of users) {
    await user.close();
    leftovers.push(...(await user.leftovers()));
  }
  await pages?.close();
  expect(leftovers).toEqual([]);
}, 120_000);

describe.each(setups)('WebTorrent between two chromium processes through %s', (_name, start) => {
  let trackers: Trackers | undefined;
  // A payload of its own per case: another info hash, so nothing a browser
  // kept from an earlier case (WebTorrent stores pieces in the origin's
  // private file system) can stand in for the transfer.
  const payload = randomBytes(PAYLOAD_BYTES);
  const payloadSha256 = createHash('sha256').update(payload).digest('hex');

  beforeAll(async () => {
    pages?.setPayload(payload);
    trackers = await start();
    for (const user of users) await user.reload();
  }, 300_000);

  afterAll(async () => {
    // The pages' WebSocket connections go first: a tracker's server closes
    // once its connections have.
    for (const user of users) await user.blank();
    await trackers?.stop();
  }, 120_000);

  it('moves a few MiB byte-identical over WebRTC', async () => {
    const [seeder, leecher] = users as [BrowserUser, BrowserUser];
    const { seedUrl, leechUrl, relays } = trackers as Trackers;
    const result = await transfer(seeder, seedUrl, leecher, leechUrl);
    expect(result.leecher.length).toBe(PAYLOAD_BYTES);
    expect(result.leecher.sha256).toBe(payloadSha256);
    expect(result.leecher.announce).toEqual([leechUrl]);
    expect(result.seeder.announce).toEqual([seedUrl]);
    expect(result.leecher.webrtcPeers).toBeGreaterThanOrEqual(1);
    expect(result.leecher.otherPeers).toBe(0);
    expect(result.seeder.webrtcPeers).toBeGreaterThanOrEqual(1);
    // The leecher's offer reached the seeder and the seeder's answer the
    // leecher through Shoal, and with two gateways only by way of the other
    // one. A counter moves as the message is handed to the recipient's
    // socket, before the browser can have read it, so both are set once the
    // transfer is done.
    for (const { gateway, scope, read } of relays ?? []) {
      const counted = await read();
      const why = `${gateway}: shoal_ws_relayed_total ${JSON.stringify(counted)}`;
      expect(counted[scope], why).toBeGreaterThan(0);
      if (scope === 'remote') expect(counted.local, why).toBe(0);
    }
  }, 300_000);
});
