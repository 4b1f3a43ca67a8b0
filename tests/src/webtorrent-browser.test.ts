// Two WebTorrent clients in two real chromium processes move a file through
// a WebSocket tracker over WebRTC, byte for byte (docs/webtorrent.md).
// The reference run uses bittorrent-tracker's own server, which proves the
// harness; the same transfer then runs through Shoal's gateway.
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import ReferenceTracker from 'bittorrent-tracker/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrowserUser, PageServer } from './harness/browser.ts';
import { transfer } from './harness/webtorrent-browser.ts';

const PAYLOAD_BYTES = 3 * 1024 * 1024 + 12_345;

describe('WebTorrent between two chromium processes through bittorrent-tracker (reference)', () => {
  const payload = randomBytes(PAYLOAD_BYTES);
  const payloadSha256 = createHash('sha256').update(payload).digest('hex');
  let pages: PageServer | undefined;
  let tracker: ReferenceTracker | undefined;
  let trackerUrl = '';
  const users: BrowserUser[] = [];

  beforeAll(async () => {
    pages = await PageServer.start(payload);
    const server = new ReferenceTracker({ http: false, udp: false, ws: true, stats: false });
    tracker = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.ws?.address() as AddressInfo;
    trackerUrl = `ws://127.0.0.1:${port}`;
    users.push(await BrowserUser.launch('seeder', pages.origin));
    users.push(await BrowserUser.launch('leecher', pages.origin));
  }, 300_000);

  afterAll(async () => {
    const leftovers: number[] = [];
    for (const user of users) {
      await user.close();
      leftovers.push(...(await user.leftovers()));
    }
    await new Promise<void>((resolve) => (tracker ? tracker.close(() => resolve()) : resolve()));
    await pages?.close();
    expect(leftovers).toEqual([]);
  }, 120_000);

  it('moves a few MiB byte-identical over WebRTC', async () => {
    const [seeder, leecher] = users as [BrowserUser, BrowserUser];
    const result = await transfer(seeder, trackerUrl, leecher, trackerUrl);
    expect(result.leecher.length).toBe(PAYLOAD_BYTES);
    expect(result.leecher.sha256).toBe(payloadSha256);
    expect(result.leecher.webrtcPeers).toBeGreaterThanOrEqual(1);
    expect(result.leecher.otherPeers).toBe(0);
    expect(result.seeder.webrtcPeers).toBeGreaterThanOrEqual(1);
  }, 300_000);
});
