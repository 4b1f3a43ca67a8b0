// Two WebTorrent clients in two real chromium processes move a file through
// a WebSocket tracker over WebRTC, byte for byte (docs/webtorrent.md
// "Browser test harness"). The reference run uses bittorrent-tracker's own
// server, which proves the harness; each tracker to test is one more entry
// in `setups`.
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import ReferenceTracker from 'bittorrent-tracker/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrowserUser, PageServer } from './harness/browser.ts';
import { transfer } from './harness/webtorrent-browser.ts';

const PAYLOAD_BYTES = 3 * 1024 * 1024 + 12_345;

/** Where the seeder and the leecher announce, and how to stop it. */
interface Trackers {
  seedUrl: string;
  leechUrl: string;
  stop(): Promise<void>;
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

const setups: [string, () => Promise<Trackers>][] = [
  ['bittorrent-tracker (reference)', startReference],
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
    const { seedUrl, leechUrl } = trackers as Trackers;
    const result = await transfer(seeder, seedUrl, leecher, leechUrl);
    expect(result.leecher.length).toBe(PAYLOAD_BYTES);
    expect(result.leecher.sha256).toBe(payloadSha256);
    expect(result.leecher.announce).toEqual([leechUrl]);
    expect(result.seeder.announce).toEqual([seedUrl]);
    expect(result.leecher.webrtcPeers).toBeGreaterThanOrEqual(1);
    expect(result.leecher.otherPeers).toBe(0);
    expect(result.seeder.webrtcPeers).toBeGreaterThanOrEqual(1);
  }, 300_000);
});
