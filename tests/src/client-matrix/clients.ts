// The real BitTorrent clients of the client matrix (docs/client-backoff.md),
// each started as its own Debian package installs it, on loopback only, with
// DHT (aria2 excepted: it needs its DHT socket for UDP trackers, with no
// node to talk to), LSD, PEX and port mapping off, and one leeching torrent
// per answer. Settings that change announce timing are named in `settings`.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bencode } from '@shoal/protocol';
import { freeTcpPort, freeTcpUdpPort } from '@shoal/testing/ports';
import { spawnManaged, type ManagedProcess } from '@shoal/testing/processes';
import type { ClientId } from './table.ts';

export interface TorrentFile {
  path: string;
  url: string;
}

/** A 16 KiB single-file torrent announcing to `url` only; no client has its data. */
export function writeTorrent(dir: string, name: string, url: string): TorrentFile {
  const piece = randomBytes(16384);
  const info = {
    length: piece.length,
    name,
    'piece length': piece.length,
    pieces: createHash('sha1').update(piece).digest(),
  };
  const path = join(dir, `${name}.torrent`);
  writeFileSync(path, bencode({ announce: url, info }));
  return { path, url };
}

export interface RunningClient {
  readonly id: ClientId;
  readonly version: string;
  /** Client settings that bear on announce timing, as the docs report them. */
  readonly settings: string;
  readonly process: ManagedProcess;
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .split('\n')[0]!
      .trim();
  } catch {
    return 'unknown';
  }
}

/** A home of its own, so no client reads or writes the user's configuration. */
function clientEnv(dir: string): Record<string, string> {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8' };
}

function debVersion(pkg: string): string {
  return firstLine('dpkg-query', ['-W', '-f=${Version}', pkg]);
}

/** libtorrent's floor on every interval (settings_pack::min_announce_interval, 300 s by default). */
export const LIBTORRENT_MIN_ANNOUNCE_INTERVAL_SECONDS = 60;

const LIBTORRENT_SCRIPT = `
import sys, time
import libtorrent as lt
save, floor = sys.argv[1], int(sys.argv[2])
s = lt.session({
    'listen_interfaces': '127.0.0.1:0',
    'enable_dht': False, 'enable_lsd': False,
    'enable_upnp': False, 'enable_natpmp': False,
    'min_announce_interval': floor,
    'active_downloads': -1, 'active_limit': -1, 'active_tracker_limit': -1,
})
for path in sys.argv[3:]:
    s.add_torrent({'ti': lt.torrent_info(path), 'save_path': save})
print('started', lt.__version__, flush=True)
while True:
    time.sleep(1)
`;

function startLibtorrent(dir: string, torrents: TorrentFile[]): Promise<RunningClient> {
  const script = join(dir, 'libtorrent-client.py');
  writeFileSync(script, LIBTORRENT_SCRIPT);
  const floor = LIBTORRENT_MIN_ANNOUNCE_INTERVAL_SECONDS;
  const args = [script, join(dir, 'data'), String(floor), ...torrents.map((t) => t.path)];
  return Promise.resolve({
    id: 'libtorrent',
    version: `python3-libtorrent ${debVersion('python3-libtorrent')}`,
    settings: `min_announce_interval=${floor} (default 300)`,
    process: spawnManaged('/usr/bin/python3', args, { name: 'libtorrent', env: clientEnv(dir) }),
  });
}

async function startQbittorrent(dir: string, torrents: TorrentFile[]): Promise<RunningClient> {
  const profile = join(dir, 'profile');
  const conf = join(profile, 'qBittorrent', 'config');
  mkdirSync(conf, { recursive: true });
  const webui = await freeTcpPort();
  const peer = await freeTcpUdpPort();
  writeFileSync(
    join(conf, 'qBittorrent.conf'),
    [
      '[LegalNotice]',
      'Accepted=true',
      '[BitTorrent]',
      'Session\\DHTEnabled=false',
      'Session\\LSDEnabled=false',
      'Session\\PeXEnabled=false',
      'Session\\QueueingSystemEnabled=false',
      `Session\\Port=${peer}`,
      '[Network]',
      'PortForwardingEnabled=false',
      '[Preferences]',
      'Connection\\ResolvePeerCountries=false',
      'General\\UseRandomPort=false',
      'WebUI\\Address=127.0.0.1',
      `WebUI\\Port=${webui}`,
      '',
    ].join('\n'),
  );
  const args = [
    `--profile=${profile}`,
    `--webui-port=${webui}`,
    `--save-path=${join(dir, 'data')}`,
    ...torrents.map((t) => t.path),
  ];
  return {
    id: 'qbittorrent',
    version: `qbittorrent-nox ${debVersion('qbittorrent-nox')} (libtorrent ${debVersion('libtorrent-rasterbar2.0')})`,
    settings: 'defaults (min_announce_interval 300)',
    process: spawnManaged('qbittorrent-nox', args, {
      name: 'qbittorrent-nox',
      env: clientEnv(dir),
    }),
  };
}

async function startTransmission(dir: string, torrents: TorrentFile[]): Promise<RunningClient> {
  const config = join(dir, 'config');
  const watch = join(dir, 'watch');
  mkdirSync(config, { recursive: true });
  mkdirSync(watch, { recursive: true });
  for (const t of torrents) copyFileSync(t.path, join(watch, t.path.split('/').pop()!));
  const settings = {
    'dht-enabled': false,
    'lpd-enabled': false,
    'pex-enabled': false,
    'utp-enabled': false,
    'port-forwarding-enabled': false,
    'blocklist-enabled': false,
    'download-queue-enabled': false,
    'seed-queue-enabled': false,
    'queue-stalled-enabled': false,
    'peer-port': await freeTcpUdpPort(),
    'rpc-port': await freeTcpPort(),
    'rpc-bind-address': '127.0.0.1',
    'download-dir': join(dir, 'data'),
    'watch-dir': watch,
    'watch-dir-enabled': true,
    'message-level': 2,
  };
  writeFileSync(join(config, 'settings.json'), JSON.stringify(settings, null, 2));
  return {
    id: 'transmission',
    version: `transmission-daemon ${debVersion('transmission-daemon')}`,
    settings: 'defaults',
    process: spawnManaged('transmission-daemon', ['-f', '-g', config], {
      name: 'transmission-daemon',
      env: clientEnv(dir),
    }),
  };
}

async function startAria2(dir: string, torrents: TorrentFile[]): Promise<RunningClient> {
  const args = [
    '--no-conf=true',
    '--console-log-level=warn',
    '--summary-interval=0',
    `--dir=${join(dir, 'data')}`,
    '--file-allocation=none',
    '--disable-ipv6=true',
    `--listen-port=${await freeTcpPort()}`,
    '--bt-enable-lpd=false',
    '--enable-peer-exchange=false',
    // aria2 speaks UDP trackers through its DHT socket only (docs/decisions.md "Sources").
    '--enable-dht=true',
    '--enable-dht6=false',
    `--dht-listen-port=${await freeTcpUdpPort()}`,
    `--dht-file-path=${join(dir, 'dht.dat')}`,
    '--force-sequential=true',
    `--max-concurrent-downloads=${torrents.length}`,
    '--seed-time=0',
    ...torrents.map((t) => t.path),
  ];
  return {
    id: 'aria2',
    version: `aria2 ${debVersion('aria2')}`,
    settings: 'defaults (no --bt-tracker-interval)',
    process: spawnManaged('aria2c', args, { name: 'aria2c', env: clientEnv(dir) }),
  };
}

export function startClient(
  id: ClientId,
  dir: string,
  torrents: TorrentFile[],
): Promise<RunningClient> {
  mkdirSync(join(dir, 'data'), { recursive: true });
  switch (id) {
    case 'libtorrent':
      return startLibtorrent(dir, torrents);
    case 'qbittorrent':
      return startQbittorrent(dir, torrents);
    case 'transmission':
      return startTransmission(dir, torrents);
    case 'aria2':
      return startAria2(dir, torrents);
  }
}
