// The end-to-end proof that real clients work against Shoal unchanged: an
// aria2c seeder and an aria2c leecher that can find each other only through
// the tracker exchange a file, byte for byte. Parameterised by the store, so
// every storage backend reruns the very same transfer.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeTcpPort, freeTcpUdpPort } from '@shoal/testing/ports';
import {
  makeTorrent,
  type Torrent,
  readAria2Log,
  sha256File,
  startAria2,
  tail,
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

/** Seeds a fresh random payload, waits until the tracker counts the seeder, then leeches it. */
export async function runAria2Transfer(o: TransferOptions): Promise<TransferResult> {
  const seedDir = join(o.workDir, 'seed');
  const leechDir = join(o.workDir, 'leech');
  await mkdir(seedDir, { recursive: true });
  await mkdir(leechDir, { recursive: true });
  // A few MiB in 32 KiB pieces: a hundred-odd pieces, seconds on loopback.
  const seederSha256 = await writeRandomFile(
    join(seedDir, 'payload.bin'),
    o.payloadBytes ?? 4 * 1024 * 1024,
  );
  const torrent = await makeTorrent({
    source: join(seedDir, 'payload.bin'),
    announceUrl: o.tracker.announceUrl(o.kind),
    out: join(o.workDir, `${o.kind}.torrent`),
    pieceLengthLog2: 15,
  });
  await o.onTorrent?.(torrent);
  const udp = o.kind === 'udp';
  const seederLog = join(o.workDir, 'seeder.log');
  const leecherLog = join(o.workDir, 'leecher.log');
  const procs: ManagedProcess[] = [];
  try {
    const seeder = startAria2({
      torrent: torrent.path,
      dir: seedDir,
      role: 'seeder',
      kind: o.kind,
      listenPort: await freeTcpPort(),
      logFile: seederLog,
      ...(udp
        ? { dhtPort: await freeTcpUdpPort(), dhtFile: join(o.workDir, 'seeder-dht.dat') }
        : {}),
    });
    procs.push(seeder);
    const withLog = async (
      code: HarnessErrorCode,
      what: string,
      proc: ManagedProcess,
      logFile: string,
      cause?: unknown,
    ): Promise<HarnessError> =>
      new HarnessError(
        code,
        `${what}\n${proc.describe()}\n--- aria2 log (tail)\n${tail(await readAria2Log(logFile))}`,
        { cause },
      );

    let scrapeWithSeederOnly: ScrapeEntry = { complete: 0, incomplete: 0, downloaded: 0 };
    try {
      await waitFor(
        'the tracker to count the seeder',
        async () => {
          if (!seeder.alive()) throw new HarnessError('HARNESS_ERR_EXITED', 'seeder exited');
          scrapeWithSeederOnly = await scrapeOne(o.tracker, o.kind, torrent.infoHash);
          return scrapeWithSeederOnly.complete >= 1;
        },
        30_000,
        250,
      );
    } catch (err) {
      const code = isHarnessError(err) ? err.code : 'HARNESS_ERR_FAILED';
      throw await withLog(code, `seeder never counted: ${String(err)}`, seeder, seederLog, err);
    }

    const leecher = startAria2({
      torrent: torrent.path,
      dir: leechDir,
      role: 'leecher',
      kind: o.kind,
      listenPort: await freeTcpPort(),
      logFile: leecherLog,
      ...(udp
        ? { dhtPort: await freeTcpUdpPort(), dhtFile: join(o.workDir, 'leecher-dht.dat') }
        : {}),
    });
    procs.push(leecher);
    let status: ExitStatus;
    try {
      status = await leecher.waitForExit(o.leechTimeoutMs ?? 90_000);
    } catch (err) {
      throw await withLog(
        'HARNESS_ERR_TIMEOUT',
        'leecher never finished',
        leecher,
        leecherLog,
        err,
      );
    }
    if (status.code !== 0) {
      const how = String(status.code ?? status.signal);
      throw await withLog('HARNESS_ERR_FAILED', `leecher exited with ${how}`, leecher, leecherLog);
    }
    const leecherSha256 = await sha256File(join(leechDir, 'payload.bin'));
    return {
      seederSha256,
      leecherSha256,
      leecherExitCode: status.code,
      scrapeWithSeederOnly,
      leecherUdpReplies: udpAnnounceRepliesInLog(await readAria2Log(leecherLog)),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop(5_000)));
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
