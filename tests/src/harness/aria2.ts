// Real BitTorrent clients for end-to-end tests: mktorrent makes the torrent,
// aria2c seeds and leeches. Peer discovery other than the tracker is off, so
// a finished download proves the tracker introduced the peers.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { decodeBencode } from '@shoal/testing/bencode';
import { HarnessError } from '@shoal/testing/errors';
import { baseEnv, runBounded, spawnManaged, type ManagedProcess } from '@shoal/testing/processes';
import type { TrackerKind } from '@shoal/testing/launcher';

export interface Torrent {
  path: string;
  /** 20 raw bytes: SHA-1 of the bencoded info dictionary (BEP 3). */
  infoHash: Buffer;
}

/** Writes `bytes` of random data to `path` and resolves with its sha256 (hex). */
export async function writeRandomFile(path: string, bytes: number): Promise<string> {
  const data = randomBytes(bytes);
  await writeFile(path, data);
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** Reads the info hash straight from the .torrent bytes. */
export async function torrentInfoHash(torrentPath: string): Promise<Buffer> {
  const raw = await readFile(torrentPath);
  const span = decodeBencode(raw).spans.get('info');
  if (span === undefined)
    throw new HarnessError('HARNESS_ERR_BAD_REPLY', `${torrentPath} has no info dictionary`);
  return createHash('sha1').update(raw.subarray(span[0], span[1])).digest();
}

export interface MakeTorrentOptions {
  /** File or directory to describe. */
  source: string;
  announceUrl: string;
  out: string;
  /** log2 of the piece length; 15 = 32 KiB, so a few MiB make a hundred-odd pieces. */
  pieceLengthLog2?: number;
}

export async function makeTorrent(o: MakeTorrentOptions): Promise<Torrent> {
  await runBounded(
    'mktorrent',
    ['-a', o.announceUrl, '-l', String(o.pieceLengthLog2 ?? 15), '-o', o.out, o.source],
    {
      name: 'mktorrent',
      env: baseEnv(),
      timeoutMs: 30_000,
    },
  );
  return { path: o.out, infoHash: await torrentInfoHash(o.out) };
}

export interface Aria2Options {
  torrent: string;
  /** Where the payload is (seeder) or goes (leecher). */
  dir: string;
  role: 'seeder' | 'leecher';
  /** The tracker protocol in the torrent; aria2 only speaks UDP trackers with DHT on. */
  kind: TrackerKind;
  listenPort: number;
  /** Required for kind 'udp': aria2 sends UDP tracker traffic from its DHT socket. */
  dhtPort?: number;
  /** Required for kind 'udp': a fresh file, so no routing table from another run is loaded. */
  dhtFile?: string;
  logFile: string;
  /** PEM file of the CA that signed an https tracker's certificate. */
  caCertificate?: string;
  /** Seconds between announces; overrides the tracker's interval so a missed first announce is retried soon. */
  trackerIntervalSeconds?: number;
}

export function aria2Args(o: Aria2Options): string[] {
  const args = [
    '--no-conf=true',
    '--console-log-level=warn',
    `--log=${o.logFile}`,
    '--log-level=info',
    '--summary-interval=0',
    `--dir=${o.dir}`,
    '--allow-overwrite=true',
    '--file-allocation=none',
    '--disable-ipv6=true',
    `--listen-port=${o.listenPort}`,
    '--bt-require-crypto=false',
    // Discovery other than the tracker stays off: LPD multicasts, PEX passes peers along.
    '--bt-enable-lpd=false',
    '--enable-peer-exchange=false',
    '--enable-dht6=false',
    `--bt-tracker-interval=${o.trackerIntervalSeconds ?? 2}`,
    '--bt-tracker-connect-timeout=10',
    '--bt-tracker-timeout=10',
  ];
  if (o.caCertificate !== undefined) args.push(`--ca-certificate=${o.caCertificate}`);
  if (o.kind === 'udp') {
    if (o.dhtPort === undefined || o.dhtFile === undefined) {
      throw new HarnessError(
        'HARNESS_ERR_FAILED',
        'aria2 needs a DHT port and file to use a UDP tracker',
      );
    }
    // DHT on with no bootstrap node and an empty routing table: the socket
    // exists for the UDP tracker client, and the DHT itself finds nobody.
    args.push(
      '--enable-dht=true',
      `--dht-listen-port=${o.dhtPort}`,
      `--dht-file-path=${o.dhtFile}`,
    );
  } else {
    args.push('--enable-dht=false');
  }
  if (o.role === 'seeder') {
    // Verify the payload, then seed until the test kills it.
    args.push('--check-integrity=true', '--seed-ratio=0.0');
  } else {
    // Exit once the download is complete; give up after 60 s without progress.
    args.push('--seed-time=0', '--bt-stop-timeout=60');
  }
  args.push(o.torrent);
  return args;
}

export function startAria2(o: Aria2Options): ManagedProcess {
  return spawnManaged('aria2c', aria2Args(o), {
    name: `aria2c ${o.role} (${o.kind})`,
    env: baseEnv(),
  });
}

/** The aria2 log, for assertion messages (tail) and for what the client says it got from the tracker. */
export async function readAria2Log(logFile: string): Promise<string> {
  return readFile(logFile, 'utf8').catch(() => '');
}

export interface Aria2UdpAnnounceReply {
  seeders: number;
  leechers: number;
  numPeers: number;
}

/** aria2's own record of the UDP announce replies it received (UDPTrackerClient, log level info). */
export function udpAnnounceRepliesInLog(log: string): Aria2UdpAnnounceReply[] {
  const out: Aria2UdpAnnounceReply[] = [];
  for (const m of log.matchAll(
    /UDPT received ANNOUNCE reply .*?leechers=(\d+), seeders=(\d+), num_peers=(\d+)/g,
  )) {
    out.push({ leechers: Number(m[1]), seeders: Number(m[2]), numPeers: Number(m[3]) });
  }
  return out;
}

export function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}
