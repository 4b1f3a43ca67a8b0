// The real bittorrent-tracker npm client (the one WebTorrent uses) over
// Shoal's WebSocket tracker (docs/webtorrent.md), on each topology. All of
// the client's tracker code runs unchanged: announces with offers, the
// answer it sends back with offer_id and to_peer_id, scrape, completed,
// stopped, failure reasons. Only WebRTC is replaced (Node has none here):
// each client's `_createPeer` hands out a FakePeer that signals a made-up
// offer or answer, so the test can see that what one client's peer
// signalled is what the other client's peer received through Shoal.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type ClientClass from 'bittorrent-tracker/client';
import type { ScrapeEvent, UpdateEvent } from 'bittorrent-tracker/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import { HarnessError } from '@shoal/testing/errors';
import {
  announceWith,
  destroyClient,
  loadTrackerClient,
  scrapeWith,
} from './harness/bittorrent-tracker.ts';
import { waitReady } from './harness/policy.ts';
import {
  embeddedPostgres,
  embeddedRedis,
  embeddedRedisCluster,
  embeddedRedisRing,
  splitTopology,
  type Deployment,
  type TrackerEndpoint,
} from './harness/topologies.ts';

type Client = InstanceType<typeof ClientClass>;

/** Generous bound for one answer on a loaded machine (a bound, never a measured time). */
const ANSWER_MS = 60_000;

interface SessionDescription {
  type: 'offer' | 'answer';
  sdp: string;
}

/**
 * Stands in for simple-peer: the initiator signals an offer on the next
 * tick; the other side, given that offer, signals an answer and connects;
 * the initiator connects once given the answer. It records what it was given.
 */
class FakePeer extends EventEmitter {
  /** Set by the client: the other peer's peer_id, hex. */
  id: string | undefined;
  readonly sdp: string;
  received: SessionDescription | undefined;
  isConnected = false;
  destroyed = false;

  readonly initiator: boolean;

  constructor(initiator: boolean, owner: string) {
    super();
    this.initiator = initiator;
    this.sdp = `v=0\r\no=fake-${owner}-${randomBytes(6).toString('hex')} 0 0 IN IP4 127.0.0.1\r\n`;
    if (initiator) setImmediate(() => this.emit('signal', { type: 'offer', sdp: this.sdp }));
  }

  signal(description: SessionDescription): void {
    if (this.destroyed) return;
    this.received = description;
    setImmediate(() => {
      if (this.destroyed) return;
      if (!this.initiator && description.type === 'offer')
        this.emit('signal', { type: 'answer', sdp: this.sdp });
      this.isConnected = true;
      this.emit('connect');
    });
  }

  /** Resolves once connected (bounded). */
  whenConnected(): Promise<void> {
    if (this.isConnected) return Promise.resolve();
    return nextOf<void>(this, 'connect', `connect of the peer for ${this.id ?? '?'}`);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}

/** WebSocketTracker's internals this test relies on (lib/client/websocket-tracker.js, v11). */
interface WsTrackerInternals {
  announceUrl: string;
  socket: EventEmitter;
  _createPeer(opts?: { initiator?: boolean }): unknown;
}

interface WsClient {
  client: Client;
  peerIdHex: string;
  /** The URL the client announces to (its tracker's). */
  url: string;
  /** The FakePeers the client created, in order. */
  fakes: FakePeer[];
  /** Every frame the client's socket received, parsed. */
  frames: Record<string, unknown>[];
}

let Tracker: typeof ClientClass;
const clients: Client[] = [];
// Each client gets a URL of its own: the reference client shares one socket
// between clients of the same URL (its socketPool), and two peers on one
// socket would see each other's answers.
let clientSeq = 0;

function wsUrl(endpoint: { host: string; httpPort: number }): string {
  return `ws://${endpoint.host}:${endpoint.httpPort}/announce`;
}

function newClient(announce: string, infoHash: string): WsClient {
  const peerId = randomBytes(20);
  const url = `${announce}?client=${++clientSeq}`;
  const client = new Tracker({
    infoHash,
    peerId,
    announce: [url],
    port: 6881,
    wrtc: {},
  });
  clients.push(client);
  const trackers = (client as unknown as { _trackers: WsTrackerInternals[] })._trackers;
  expect(trackers.map((t) => t.announceUrl)).toEqual([url]);
  const fakes: FakePeer[] = [];
  const owner = peerId.toString('hex').slice(0, 8);
  trackers[0]!._createPeer = (opts) => {
    const peer = new FakePeer(opts?.initiator === true, owner);
    fakes.push(peer);
    return peer;
  };
  const frames: Record<string, unknown>[] = [];
  trackers[0]!.socket.on('data', (data: Uint8Array | string) => {
    frames.push(JSON.parse(Buffer.from(data).toString('utf8')) as Record<string, unknown>);
  });
  return { client, peerIdHex: peerId.toString('hex'), url, fakes, frames };
}

/** The next 'peer' event of `client` (WebSocket trackers emit peer objects). */
function nextPeer(client: Client): Promise<FakePeer> {
  return nextOf<FakePeer>(client, 'peer', 'peer');
}

/** The next 'warning' of `client`: how the reference client reports a failure reason. */
function nextWarning(client: Client): Promise<Error> {
  return nextOf<Error>(client, 'warning', 'warning');
}

function nextOf<T>(emitter: EventEmitter, event: string, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new HarnessError('HARNESS_ERR_TIMEOUT', `no ${what} within ${ANSWER_MS} ms`));
    }, ANSWER_MS);
    const on = (value: T): void => {
      clearTimeout(timer);
      resolve(value);
    };
    emitter.once(event, on);
  });
}

const counts = (u: UpdateEvent | ScrapeEvent): { complete: number; incomplete: number } => ({
  complete: u.complete,
  incomplete: u.incomplete,
});

/** Where the seeder and the leecher of a case announce. */
interface Trackers {
  seedUrl: string;
  leechUrl: string;
  /** The seeder and the leecher are on two gateways. */
  crossing: boolean;
  describe(): string;
  stop(): Promise<void>;
}

function fromDeployment(d: Deployment, leecherOn: 0 | 1): Trackers {
  const [a, b] = d.replicas;
  const pick = (i: 0 | 1): TrackerEndpoint => (i === 0 ? a : b);
  return {
    seedUrl: wsUrl(a),
    leechUrl: wsUrl(pick(leecherOn)),
    crossing: leecherOn === 1,
    describe: () => d.describe(),
    stop: () => d.stop(),
  };
}

async function oneMemoryGateway(): Promise<Trackers> {
  const g = await startGateway({ STORAGE_DRIVER: 'memory', GATEWAY_WORKERS: '1' });
  return {
    seedUrl: wsUrl(g),
    leechUrl: wsUrl(g),
    crossing: false,
    describe: () => g.describe(),
    stop: async () => {
      await g.stop();
    },
  };
}

// docs/webtorrent.md "Status": WebSocket swarms cross gateways on an
// embedded Redis (every mode) and behind storage-api; on PostgreSQL each
// gateway keeps its own, so there both clients use the same gateway.
const setups: [string, () => Promise<Trackers>][] = [
  ['one gateway, memory store', oneMemoryGateway],
  [
    'two gateways on one redis-server (seeder on A, leecher on B)',
    async () => fromDeployment(await embeddedRedis.start({ ipv6: false }), 1),
  ],
  [
    'two gateways on one Redis Cluster (seeder on A, leecher on B)',
    async () => fromDeployment(await embeddedRedisCluster.start({ ipv6: false }), 1),
  ],
  [
    'two gateways on one Redis ring (seeder on A, leecher on B)',
    async () => fromDeployment(await embeddedRedisRing.start({ ipv6: false }), 1),
  ],
  [
    'embedded postgres, both on one gateway',
    async () => fromDeployment(await embeddedPostgres.start({ ipv6: false }), 0),
  ],
  [
    'split topology, two gateways on storage-api on Redis Sentinel (seeder on A, leecher on B)',
    async () => fromDeployment(await splitTopology.start({ ipv6: false }), 1),
  ],
];

beforeAll(async () => {
  Tracker = await loadTrackerClient();
});

afterAll(async () => {
  await Promise.all(clients.map(destroyClient));
}, 120_000);

describe.each(setups)('bittorrent-tracker client over WebSocket: %s', (_name, start) => {
  let trackers: Trackers | undefined;

  beforeAll(async () => {
    trackers = await start();
  }, 300_000);

  afterAll(async () => {
    await trackers?.stop();
  }, 120_000);

  it('a seeder and a leecher meet through relayed offers and answers; counts, scrape, completed and stopped follow', async () => {
    const { seedUrl, leechUrl, crossing } = trackers!;
    expect(seedUrl !== leechUrl).toBe(crossing);
    const infoHash = randomBytes(20).toString('hex');
    const seeder = newClient(seedUrl, infoHash);
    const leecher = newClient(leechUrl, infoHash);

    const seeded = await announceWith(seeder.client, 'start', { left: 0 }, ANSWER_MS);
    expect(counts(seeded.update), trackers!.describe()).toEqual({ complete: 1, incomplete: 0 });
    expect(seeded.update.announce).toBe(seeder.url);

    // The leecher's offers go to the seeder (the only other peer); the
    // seeder's client answers through its peer, and Shoal relays the answer
    // back to the leecher's offer.
    const seederSees = nextPeer(seeder.client);
    const leecherSees = nextPeer(leecher.client);
    const leeched = await announceWith(leecher.client, 'start', { left: 1_000 }, ANSWER_MS);
    expect(counts(leeched.update)).toEqual({ complete: 1, incomplete: 1 });

    const atSeeder = await seederSees;
    expect(atSeeder.id).toBe(leecher.peerIdHex);
    expect(atSeeder.initiator).toBe(false);
    const atLeecher = await leecherSees;
    expect(atLeecher.id).toBe(seeder.peerIdHex);
    expect(atLeecher.initiator).toBe(true);
    // What each fake was handed is exactly what the other one signalled.
    expect(leecher.fakes).toContain(atLeecher);
    expect(atSeeder.received).toEqual({ type: 'offer', sdp: atLeecher.sdp });
    expect(atLeecher.received).toEqual({ type: 'answer', sdp: atSeeder.sdp });
    await atSeeder.whenConnected();
    await atLeecher.whenConnected();

    const scraped = await scrapeWith(leecher.client, ANSWER_MS);
    expect(scraped).toMatchObject({ infoHash, complete: 1, incomplete: 1, downloaded: 0 });

    const done = await announceWith(leecher.client, 'complete', { left: 0 }, ANSWER_MS);
    expect(counts(done.update)).toEqual({ complete: 2, incomplete: 0 });
    expect(await scrapeWith(seeder.client, ANSWER_MS)).toMatchObject({
      complete: 2,
      incomplete: 0,
      downloaded: 1,
    });

    await announceWith(leecher.client, 'stop', { left: 0 }, ANSWER_MS);
    const after = await scrapeWith(seeder.client, ANSWER_MS);
    expect(after).toMatchObject({ complete: 1, incomplete: 0, downloaded: 1 });
    const seederAgain = await announceWith(seeder.client, 'update', { left: 0 }, ANSWER_MS);
    expect(counts(seederAgain.update)).toEqual({ complete: 1, incomplete: 0 });
  }, 300_000);
});

describe('bittorrent-tracker client over WebSocket: refusals', () => {
  const gateways: GatewayProcess[] = [];

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
  }, 120_000);

  async function refusingGateway(env: Record<string, string>): Promise<GatewayProcess> {
    const g = await startGateway({ STORAGE_DRIVER: 'memory', ...env });
    gateways.push(g);
    // docs/policy.md: not ready before the first policy snapshot.
    await waitReady(g.adminUrl('/readyz'), ANSWER_MS);
    return g;
  }

  // A refused scrape: TORRENT_APPROVAL answers zeros (docs/configuration.md);
  // a missing passkey gets a failure reason, which the reference client does
  // not read on scrapes (websocket-tracker.js `_onScrapeResponse` finds no
  // `files` and warns "invalid scrape response").
  const zeros = { complete: 0, incomplete: 0 };
  it.each([
    [
      'an unapproved torrent',
      { TORRENT_APPROVAL: 'allow' },
      /\[POLICY_ERR_TORRENT_NOT_ALLOWED\]/,
      zeros as object | RegExp,
    ],
    [
      'no passkey where one is required',
      { PASSKEY_REQUIRED: 'true' },
      /\[POLICY_ERR_PASSKEY_MISSING\]/,
      /invalid scrape response/,
    ],
  ])(
    'shows %s as the client warning carrying the failure reason, and joins nobody',
    async (_what, env, reason, scrapeAnswer) => {
      const g = await refusingGateway(env);
      const infoHash = randomBytes(20).toString('hex');
      const refused = newClient(wsUrl(g), infoHash);
      const warned = nextWarning(refused.client);
      let updates = 0;
      refused.client.on('update', () => updates++);
      refused.client.start({ left: 1_000 });
      expect((await warned).message).toMatch(reason);
      const scraped = await scrapeWith(refused.client, ANSWER_MS).then(
        counts,
        (e: Error) => e.message,
      );
      if (scrapeAnswer instanceof RegExp) expect(scraped).toMatch(scrapeAnswer);
      else expect(scraped).toEqual(scrapeAnswer);
      // What Shoal sent: the announce's failure names the torrent (so the
      // client shows it for that torrent); a refused scrape's names its code.
      const failures = refused.frames.filter((f) => 'failure reason' in f);
      expect(failures[0]).toMatchObject({
        action: 'announce',
        info_hash: Buffer.from(infoHash, 'hex').toString('latin1'),
      });
      expect(failures[0]!['failure reason']).toMatch(reason);
      if (scrapeAnswer instanceof RegExp)
        expect(failures.at(-1)!['failure reason']).toMatch(/\[POLICY_ERR_PASSKEY_MISSING\]/);
      expect(updates).toBe(0);
    },
    120_000,
  );
});
