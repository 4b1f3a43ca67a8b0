// A WebTorrent transfer between two real browsers through a WebSocket
// tracker: one page seeds the payload, the other downloads it by magnet
// link, and the downloader hashes what it received. The pages hold their
// state in `window.shoal` and the test polls it, so a slow machine only
// makes the test slower (docs/testing.md "WebTorrent in a real browser").
import type { Page } from 'playwright-core';
import { HarnessError } from '@shoal/testing/errors';
import { sleep } from '@shoal/testing/processes';
import type { BrowserUser } from './browser.ts';

/** What a page reports about its torrent. */
export interface PageState {
  phase: 'starting' | 'seeding' | 'downloading' | 'done' | 'error';
  magnetURI?: string;
  infoHash?: string;
  error?: string;
  warnings: string[];
  /** Peers connected over WebRTC (wire type "webrtc"). */
  webrtcPeers: number;
  /** Peers connected any other way (a browser has none; kept to prove it). */
  otherPeers: number;
  downloaded: number;
  length?: number;
  /** SHA-256 of the downloaded file, hex (the downloader, once done). */
  sha256?: string;
  trackerUpdates: number;
  /** The trackers the torrent announces to. */
  announce: string[];
}

interface PageGlobals {
  WebTorrent: new (opts: unknown) => unknown;
  shoal: PageState;
}

// Runs in the page: the WebTorrent client, no STUN or TURN server (loopback
// host candidates only), announcing to the given tracker only.
interface StartArgs {
  role: 'seed' | 'leech';
  trackerUrl: string;
  magnetURI?: string;
}

async function startInPage(args: StartArgs): Promise<void> {
  /* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any */
  const state: PageState = {
    phase: 'starting',
    warnings: [],
    webrtcPeers: 0,
    otherPeers: 0,
    downloaded: 0,
    trackerUpdates: 0,
    announce: [],
  };
  const page = globalThis as unknown as PageGlobals;
  page.shoal = state;
  const client: any = new page.WebTorrent({
    tracker: { rtcConfig: { iceServers: [] } },
    dht: false,
    lsd: false,
    webSeeds: false,
  });
  client.on('error', (err: Error) => {
    state.phase = 'error';
    state.error = String(err.message);
  });
  // Listens from the torrent's creation: its first announce may be answered
  // before the seed callback runs.
  const watch = (torrent: any): void => {
    const trackers = (): void => {
      state.announce = [...torrent.announce];
    };
    torrent.on('infoHash', trackers);
    torrent.on('ready', trackers);
    torrent.on('warning', (err: Error) => {
      if (state.warnings.length < 50) state.warnings.push(String(err.message));
    });
    torrent.on('trackerAnnounce', () => {
      state.trackerUpdates++;
    });
    torrent.on('wire', (wire: any) => {
      if (wire.type === 'webrtc') state.webrtcPeers++;
      else state.otherPeers++;
    });
    torrent.on('download', () => {
      state.downloaded = torrent.downloaded;
    });
  };
  if (args.role === 'seed') {
    const bytes = await (await fetch('/payload.bin')).blob();
    const file = new File([bytes], 'payload.bin');
    const seeded = client.seed(
      file,
      { announce: [args.trackerUrl], private: false },
      (torrent: any) => {
        state.infoHash = torrent.infoHash;
        state.magnetURI = torrent.magnetURI;
        state.length = torrent.length;
        state.phase = 'seeding';
      },
    );
    watch(seeded);
    return;
  }
  const torrent = client.add(args.magnetURI, { announce: [args.trackerUrl] });
  watch(torrent);
  state.phase = 'downloading';
  torrent.on('done', () => {
    void (async () => {
      const data: ArrayBuffer = await torrent.files[0].arrayBuffer();
      const digest = await crypto.subtle.digest('SHA-256', data);
      state.length = data.byteLength;
      state.sha256 = Array.from(new Uint8Array(digest), (b) =>
        b.toString(16).padStart(2, '0'),
      ).join('');
      state.phase = 'done';
    })().catch((err: unknown) => {
      state.phase = 'error';
      state.error = String(err);
    });
  });
  /* eslint-enable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any */
}

export function readState(page: Page): Promise<PageState> {
  return page.evaluate(() => (globalThis as unknown as PageGlobals).shoal);
}

/** Polls the page until `done(state)` or an error; rejects with both pages' states after `timeoutMs`. */
async function pollPage(
  user: BrowserUser,
  what: string,
  done: (s: PageState) => boolean,
  timeoutMs: number,
  other?: BrowserUser,
): Promise<PageState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await readState(user.page);
    if (state.phase === 'error')
      throw new HarnessError('HARNESS_ERR_FAILED', `${user.name}: ${JSON.stringify(state)}`);
    if (done(state)) return state;
    if (Date.now() > deadline) {
      const otherState = other === undefined ? '' : JSON.stringify(await readState(other.page));
      throw new HarnessError(
        'HARNESS_ERR_TIMEOUT',
        `${what} (${timeoutMs} ms): ${user.name} ${JSON.stringify(state)} ${other?.name ?? ''} ${otherState}\n${user.describe()}`,
      );
    }
    await sleep(250);
  }
}

export interface TransferResult {
  seeder: PageState;
  leecher: PageState;
}

/**
 * Seeds `/payload.bin` in `seeder`'s page announcing to `seedTracker`, then
 * downloads it in `leecher`'s page announcing to `leechTracker`; resolves
 * once the leecher hashed the whole file.
 */
export async function transfer(
  seeder: BrowserUser,
  seedTracker: string,
  leecher: BrowserUser,
  leechTracker: string,
  timeoutMs = 240_000,
): Promise<TransferResult> {
  const seedArgs: StartArgs = { role: 'seed', trackerUrl: seedTracker };
  await seeder.page.evaluate(startInPage, seedArgs);
  const seeding = await pollPage(
    seeder,
    'seeder ready and announced',
    (s) => s.phase === 'seeding' && s.trackerUpdates > 0,
    timeoutMs,
  );
  // The info hash alone: the seeder's magnet link also names the seeder's
  // tracker, and WebTorrent would announce there too.
  const leechArgs: StartArgs = {
    role: 'leech',
    trackerUrl: leechTracker,
    magnetURI: `magnet:?xt=urn:btih:${seeding.infoHash ?? ''}`,
  };
  await leecher.page.evaluate(startInPage, leechArgs);
  const leecherState = await pollPage(
    leecher,
    'download complete',
    (s) => s.phase === 'done',
    timeoutMs,
    seeder,
  );
  return { seeder: await readState(seeder.page), leecher: leecherState };
}
