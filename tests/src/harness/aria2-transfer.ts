// The end-to-end proof that real clients work against Shoal unchanged: an
// aria2c seeder and an aria2c leecher that can find each other only through
// the tracker exchange a file, byte for byte. Parameterised by the store, so
// every storage backend reruns the very same transfer.
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeTcpPort, freeTcpUdpPort } from '@shoal/testing/ports';
import { bdecode, bencode, type BencodeDict } from '@shoal/protocol';
import {
  makeTorrent,
  type Torrent,
  readAria2Log,
  sha256File,
  startAria2,
  tail,
  torrentInfoHash,
  udpAnnounceRepliesInLog,
  writeRandomFile,
} from './aria2.ts';
import {
  startGateway,
  type ServiceEnv,
  type GatewayProcess,
  type TrackerKind,
} from '@shoal/testing/launcher';
import { HarnessError, isHarnessError, type HarnessErrorCode } from '@shoal/testing/errors';
import { waitFor, type ExitStatus, type ManagedProcess } from '@shoal/testing/processes';
import { httpScrape, UdpTrackerClient, type ScrapeEntry } from '@shoal/testing/tracker-client';

/** What a store backend gives the gateway (env), and how to tear the backend down. */
export interface StoreBackend {
  env: ServiceEnv;
  stop?: () => Promise<void>;
}

export type StoreBackendFactory = () => StoreBackend | Promise<StoreBackend>;

export const memoryBackend: StoreBackendFactory = () => ({ env: { STORAGE_DRIVER: 'memory' } });

/** The tracker's ports and URLs; a GatewayProcess is one. */
export interface TrackerEndpoints {
  host: string;
  udpPort: number;
  announceUrl(kind: TrackerKind): string;
  scrapeUrl(): string;
}

export interface TransferOptions {
  tracker: TrackerEndpoints;
  kind: TrackerKind;
  workDir: string;
  payloadBytes?: number;
  /** Bound on the leecher's whole run. */
  leechTimeoutMs?: number;
  /** Called before any client starts, e.g. to put the info hash on a tracker's approval list. */
  onTorrent?: (torrent: Torrent) => Promise<void>;
}

export interface TransferResult {
  seederSha256: string;
  leecherSha256: string;
  leecherExitCode: number | null;
  /** The swarm as the tracker scraped it while only the seeder was in it. */
  scrapeWithSeederOnly: ScrapeEntry;
  /** aria2's own record of UDP announce replies (empty for HTTP). */
  leecherUdpReplies: ReturnType<typeof udpAnnounceRepliesInLog>;
}

async function scrapeOne(
  tracker: TrackerEndpoints,
  kind: TrackerKind,
  infoHash: Buffer,
): Promise<ScrapeEntry> {
  if (kind === 'http') {
    const [entry] = await httpScrape(tracker.scrapeUrl(), [infoHash]);
    if (entry === undefined) throw new HarnessError('HARNESS_ERR_BAD_REPLY', 'empty scrape');
    return entry;
  }
  const client = await UdpTrackerClient.open(tracker.udpPort, tracker.host);
  try {
    const [entry] = await client.scrape([infoHash]);
    if (entry === undefined) throw new HarnessError('HARNESS_ERR_BAD_REPLY', 'empty scrape');
    return entry;
  } finally {
    await client.close();
  }
}

/** How the tracker shows that it counts a seeder: polled until true; `what` names it in the timeout error. */
export interface SeederCounted {
  what: string;
  counted: () => Promise<boolean>;
  /** More text for the timeout error, e.g. the tail of a gateway's log. */
  diagnostics?: () => string;
}

/**
 * aria2 clients around one random payload (a few MiB in 32 KiB pieces: a
 * hundred-odd pieces, seconds on loopback), in `workDir`: torrents of that
 * payload that differ only in their announce URL, so clients announcing to
 * different gateways (or with different passkeys) are in one swarm only if
 * the tracker says so. Each client has its own directory and log, named by
 * the caller. `stop()` ends every client it started.
 */
export class Aria2Swarm {
  readonly #workDir: string;
  readonly #procs = new Map<string, ManagedProcess>();
  readonly #seedDir: string;
  readonly seederSha256: string;
  readonly #caCertificate: string | undefined;
  #first: Torrent | undefined;

  private constructor(workDir: string, seederSha256: string, caCertificate?: string) {
    this.#workDir = workDir;
    this.#seedDir = join(workDir, 'seed');
    this.seederSha256 = seederSha256;
    this.#caCertificate = caCertificate;
  }

  /** `caCertificate`: the CA every client trusts, for a tracker at an https URL. */
  static async create(
    workDir: string,
    payloadBytes = 4 * 1024 * 1024,
    opts: { caCertificate?: string } = {},
  ): Promise<Aria2Swarm> {
    const seedDir = join(workDir, 'seed');
    await mkdir(seedDir, { recursive: true });
    const sha = await writeRandomFile(join(seedDir, 'payload.bin'), payloadBytes);
    return new Aria2Swarm(workDir, sha, opts.caCertificate);
  }

  /** The payload's torrent announcing only to `announceUrl`; every one has the first one's info hash. */
  async torrent(name: string, announceUrl: string): Promise<Torrent> {
    const out = join(this.#workDir, `${name}.torrent`);
    if (this.#first === undefined) {
      this.#first = await makeTorrent({
        source: join(this.#seedDir, 'payload.bin'),
        announceUrl,
        out,
        pieceLengthLog2: 15,
      });
      return this.#first;
    }
    const meta = bdecode(await readFile(this.#first.path)) as BencodeDict;
    await writeFile(out, bencode({ ...meta, announce: announceUrl }));
    const infoHash = await torrentInfoHash(out);
    if (!infoHash.equals(this.#first.infoHash))
      throw new HarnessError('HARNESS_ERR_FAILED', 'rewriting announce changed the info hash');
    return { path: out, infoHash };
  }

  logFile(name: string): string {
    return join(this.#workDir, `${name}.log`);
  }

  log(name: string): Promise<string> {
    return readAria2Log(this.logFile(name));
  }

  /** The sha256 of what client `name` downloaded, undefined when it has no file. */
  async payloadSha256(name: string): Promise<string | undefined> {
    const path = join(this.#workDir, name, 'payload.bin');
    return (await stat(path).catch(() => undefined)) === undefined ? undefined : sha256File(path);
  }

  /** Starts aria2 as client `name` of `torrent` ('seeder' seeds the payload). */
  async start(
    name: string,
    torrent: Torrent,
    role: 'seeder' | 'leecher',
    kind: TrackerKind = 'http',
  ): Promise<ManagedProcess> {
    if (this.#procs.has(name))
      throw new HarnessError('HARNESS_ERR_FAILED', `aria2 client ${name} started twice`);
    const dir = role === 'seeder' ? this.#seedDir : join(this.#workDir, name);
    await mkdir(dir, { recursive: true });
    const proc = startAria2({
      torrent: torrent.path,
      dir,
      role,
      kind,
      listenPort: await freeTcpPort(),
      logFile: this.logFile(name),
      ...(this.#caCertificate === undefined ? {} : { caCertificate: this.#caCertificate }),
      ...(kind === 'udp'
        ? { dhtPort: await freeTcpUdpPort(), dhtFile: join(this.#workDir, `${name}-dht.dat`) }
        : {}),
    });
    this.#procs.set(name, proc);
    return proc;
  }

  /** Starts the seeder ('seeder') of `torrent` and waits up to 30 s until the tracker counts it. */
  async seed(torrent: Torrent, until: SeederCounted, kind?: TrackerKind): Promise<ManagedProcess> {
    const seeder = await this.start('seeder', torrent, 'seeder', kind);
    try {
      await waitFor(
        until.what,
        async () => {
          if (!seeder.alive()) throw new HarnessError('HARNESS_ERR_EXITED', 'seeder exited');
          return until.counted();
        },
        30_000,
        250,
      );
    } catch (err) {
      const code = isHarnessError(err) ? err.code : 'HARNESS_ERR_FAILED';
      const more = until.diagnostics === undefined ? '' : `\n${until.diagnostics()}`;
      throw await this.#failure(code, `seeder never counted: ${String(err)}${more}`, 'seeder', err);
    }
    return seeder;
  }

  /** Runs client `name` as a leecher of `torrent` until it exits (HARNESS_ERR_TIMEOUT after `timeoutMs`). */
  async leech(
    name: string,
    torrent: Torrent,
    kind?: TrackerKind,
    timeoutMs = 90_000,
  ): Promise<{ status: ExitStatus; log: string }> {
    const leecher = await this.start(name, torrent, 'leecher', kind);
    let status: ExitStatus;
    try {
      status = await leecher.waitForExit(timeoutMs);
    } catch (err) {
      throw await this.#failure('HARNESS_ERR_TIMEOUT', `${name} never finished`, name, err);
    }
    return { status, log: await this.log(name) };
  }

  /** An error about client `name`, with its process output and the tail of its aria2 log. */
  async #failure(
    code: HarnessErrorCode,
    what: string,
    name: string,
    cause?: unknown,
  ): Promise<HarnessError> {
    const proc = this.#procs.get(name);
    return new HarnessError(
      code,
      `${what}\n${proc?.describe() ?? ''}\n--- aria2 log (tail)\n${tail(await this.log(name))}`,
      { cause },
    );
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#procs.values()].map((p) => p.stop(5_000)));
  }
}

/**
 * Across two gateways of one topology: a seeder announcing only to `a`, a
 * leecher announcing only to `b` (after `b` counts the seeder); expects the
 * leecher to exit 0 with the payload byte for byte.
 */
export async function expectTransferAcross(
  workDir: string,
  a: { httpAnnounce: string },
  b: { httpAnnounce: string; scrape: string },
): Promise<void> {
  const swarm = await Aria2Swarm.create(workDir);
  try {
    const toA = await swarm.torrent('a', a.httpAnnounce);
    const toB = await swarm.torrent('b', b.httpAnnounce);
    // Counted on B although it announced only to A.
    await swarm.seed(toA, {
      what: 'gateway B to count the seeder announced to A',
      counted: async () => {
        const [e] = await httpScrape(b.scrape, [toA.infoHash]);
        return (e?.complete ?? 0) >= 1;
      },
    });
    const { status, log } = await swarm.leech('leecher', toB);
    expect(status.code, tail(log)).toBe(0);
    expect(await swarm.payloadSha256('leecher')).toBe(swarm.seederSha256);
  } finally {
    await swarm.stop();
  }
}

/** Seeds a fresh random payload, waits until the tracker counts the seeder, then leeches it. */
export async function runAria2Transfer(o: TransferOptions): Promise<TransferResult> {
  const swarm = await Aria2Swarm.create(o.workDir, o.payloadBytes);
  try {
    const torrent = await swarm.torrent(o.kind, o.tracker.announceUrl(o.kind));
    await o.onTorrent?.(torrent);
    let scrapeWithSeederOnly: ScrapeEntry = { complete: 0, incomplete: 0, downloaded: 0 };
    await swarm.seed(
      torrent,
      {
        what: 'the tracker to count the seeder',
        counted: async () => {
          scrapeWithSeederOnly = await scrapeOne(o.tracker, o.kind, torrent.infoHash);
          return scrapeWithSeederOnly.complete >= 1;
        },
      },
      o.kind,
    );
    const { status, log } = await swarm.leech('leecher', torrent, o.kind, o.leechTimeoutMs);
    if (status.code !== 0) {
      const how = String(status.code ?? status.signal);
      throw new HarnessError(
        'HARNESS_ERR_FAILED',
        `leecher exited with ${how}\n--- aria2 log (tail)\n${tail(log)}`,
      );
    }
    return {
      seederSha256: swarm.seederSha256,
      leecherSha256: (await swarm.payloadSha256('leecher')) ?? '',
      leecherExitCode: status.code,
      scrapeWithSeederOnly,
      leecherUdpReplies: udpAnnounceRepliesInLog(log),
    };
  } finally {
    await swarm.stop();
  }
}

/**
 * The aria2 transfer suite against a Shoal gateway whose store comes from
 * `backend` (memory here; the Redis and PostgreSQL suites pass theirs).
 */
export function describeAria2Transfer(
  label: string,
  backend: StoreBackendFactory,
  kinds: readonly TrackerKind[] = ['http', 'udp'],
): void {
  describe(`aria2 through Shoal (${label})`, () => {
    let store: StoreBackend | undefined;
    let gateway: GatewayProcess | undefined;
    let workRoot = '';

    beforeAll(async () => {
      workRoot = await mkdtemp(join(tmpdir(), 'shoal-aria2-'));
      store = await backend();
      gateway = await startGateway(store.env);
    });

    afterAll(async () => {
      await gateway?.stop();
      await store?.stop?.();
      if (workRoot !== '') await rm(workRoot, { recursive: true, force: true });
    });

    it.each(kinds)(
      'over %s, an aria2 leecher downloads a byte-identical file from a seeder it found only through the tracker',
      async (kind) => {
        if (gateway === undefined) throw new HarnessError('HARNESS_ERR_EXITED', 'no gateway');
        const workDir = join(workRoot, kind);
        const r = await runAria2Transfer({ tracker: gateway, kind, workDir });
        expect(r.scrapeWithSeederOnly).toMatchObject({ complete: 1, incomplete: 0 });
        expect(r.leecherExitCode).toBe(0);
        expect(r.leecherSha256).toBe(r.seederSha256);
        if (kind === 'udp') {
          // aria2 logs each UDP announce reply: the seeder was announced to it by Shoal.
          expect(r.leecherUdpReplies.length).toBeGreaterThan(0);
          expect(r.leecherUdpReplies[0]).toMatchObject({ seeders: 1 });
          expect(r.leecherUdpReplies[0]?.numPeers).toBeGreaterThanOrEqual(1);
        }
        expect(gateway.alive()).toBe(true);
      },
      150_000,
    );
  });
}
