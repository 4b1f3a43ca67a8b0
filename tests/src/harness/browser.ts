// Real browsers for the WebTorrent tests: Debian's chromium, one process per
// simulated user, driven over the DevTools protocol by playwright-core, and
// the page they load (WebTorrent's own browser bundle from npm) served from
// loopback. What each launch flag is for: docs/webtorrent.md "Browser test
// harness".
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { HarnessError } from '@shoal/testing/errors';
import { baseEnv, spawnManaged, waitFor, type ManagedProcess } from '@shoal/testing/processes';

export const chromiumPath = '/usr/bin/chromium';

/**
 * Flags for a headless chromium with no network (docs/webtorrent.md "Browser
 * test harness"): the first group runs it as root in a container and keeps
 * it from reaching out (updates, sync, QUIC probes); the last one makes its
 * WebRTC offers carry the machine's own addresses instead of mDNS names, so
 * two browsers connect without multicast DNS.
 */
export const chromiumFlags: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

const require = createRequire(import.meta.url);
const webtorrentBundle = join(dirname(require.resolve('webtorrent/package.json')), 'dist');

/**
 * Serves the test page, WebTorrent's browser bundle and the payload the
 * seeder loads (`/payload.bin`), on 127.0.0.1 with a free port.
 */
export class PageServer {
  private readonly server: Server;
  readonly origin: string;

  private constructor(server: Server, origin: string) {
    this.server = server;
    this.origin = origin;
  }

  private payload: Buffer = Buffer.alloc(0);

  /** What `/payload.bin` serves from now on. */
  setPayload(payload: Buffer): void {
    this.payload = payload;
  }

  static async start(): Promise<PageServer> {
    const bundle = await readFile(join(webtorrentBundle, 'webtorrent.min.js'));
    const page = Buffer.from(
      '<!doctype html><meta charset="utf-8"><title>webtorrent</title>' +
        '<script type="module">import WebTorrent from "/webtorrent.min.js"; window.WebTorrent = WebTorrent;</script>',
    );
    const routes = new Map<string, [string, Buffer]>([
      ['/', ['text/html', page]],
      ['/webtorrent.min.js', ['text/javascript', bundle]],
    ]);
    let self: PageServer | undefined = undefined;
    const server = createServer((req, res) => {
      const route: [string, Buffer] | undefined =
        req.url === '/payload.bin'
          ? ['application/octet-stream', self?.payload ?? Buffer.alloc(0)]
          : routes.get(req.url ?? '');
      if (route === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': route[0], 'content-length': route[1].length });
      res.end(route[1]);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    if (addr === null || typeof addr === 'string')
      throw new HarnessError('HARNESS_ERR_FAILED', 'page server has no address');
    self = new PageServer(server, `http://127.0.0.1:${addr.port}`);
    return self;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * One chromium process with its own empty profile, in its own process
 * group so that stopping it stops every renderer and helper it forked.
 */
export class BrowserUser {
  readonly name: string;
  readonly page: Page;
  private readonly origin: string;
  private readonly proc: ManagedProcess;
  private readonly profile: string;
  private readonly browser: Browser;

  private constructor(
    name: string,
    origin: string,
    proc: ManagedProcess,
    profile: string,
    browser: Browser,
    page: Page,
  ) {
    this.name = name;
    this.origin = origin;
    this.proc = proc;
    this.profile = profile;
    this.browser = browser;
    this.page = page;
  }

  static async launch(name: string, origin: string, startMs = 120_000): Promise<BrowserUser> {
    const profile = await mkdtemp(join(tmpdir(), `shoal-chromium-${name}-`));
    const proc = spawnManaged(
      chromiumPath,
      [...chromiumFlags, `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'],
      { name: `chromium ${name}`, env: baseEnv(), group: true },
    );
    try {
      let endpoint: string | undefined;
      await waitFor(
        `chromium ${name}'s DevTools endpoint`,
        () => {
          if (!proc.alive())
            throw new HarnessError('HARNESS_ERR_EXITED', `chromium ${name}\n${proc.describe()}`);
          for (const line of proc.stderr) {
            const m = /^DevTools listening on (ws:\/\/\S+)/.exec(line);
            if (m !== null) endpoint = m[1];
          }
          return endpoint !== undefined;
        },
        startMs,
      );
      const browser = await chromium.connectOverCDP(endpoint ?? '', { timeout: startMs });
      const context = browser.contexts()[0] ?? (await browser.newContext());
      const page = await context.newPage();
      page.setDefaultTimeout(startMs);
      const user = new BrowserUser(name, origin, proc, profile, browser, page);
      await user.reload();
      return user;
    } catch (err) {
      await proc.stop(5_000);
      await rm(profile, { recursive: true, force: true });
      throw err;
    }
  }

  /** A fresh page load: no WebTorrent client left from an earlier case. */
  async reload(): Promise<void> {
    await this.page.goto(`${this.origin}/`);
    await this.page.waitForFunction(() => 'WebTorrent' in globalThis);
  }

  /** Leaves the page, closing its WebTorrent client's sockets and peers. */
  async blank(): Promise<void> {
    await this.page.goto('about:blank');
  }

  describe(): string {
    return this.proc.describe();
  }

  /** Stops the browser and its whole process group, then removes its profile. */
  async close(): Promise<void> {
    await this.browser.close().catch(() => undefined);
    await this.proc.stop(10_000);
    await rm(this.profile, { recursive: true, force: true });
  }

  /** Pids of live processes started with this browser's profile (none once closed). */
  async leftovers(): Promise<number[]> {
    return processesMentioning(this.profile);
  }
}

/** Pids of live processes whose command line contains `text`. */
export async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}
