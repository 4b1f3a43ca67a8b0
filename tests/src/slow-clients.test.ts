// Slow clients against the real gateway process (docs/limits.md): a few
// hundred connections dripping a partial request line are cut soon after
// HTTP_REQUEST_TIMEOUT_MS, while HTTP and UDP announces keep being answered;
// an oversize header is refused and the process keeps serving. The deadline
// is made small through the environment; bounds carry wide margins.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import {
  httpAnnounce,
  randomInfoHash,
  randomPeerId,
  UdpTrackerClient,
} from '@shoal/testing/tracker-client';

const REQUEST_TIMEOUT_MS = 2000;
const MARGIN_MS = 5000;
const DRIPS = 250;

let gateway: GatewayProcess;

beforeAll(async () => {
  gateway = await startGateway({
    STORAGE_DRIVER: 'memory',
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    HTTP_MAX_HEADER_BYTES: '4096',
  });
});

afterAll(async () => {
  if (gateway?.alive()) await gateway.stop();
});

interface Drip {
  socket: Socket;
  openedAt: number;
  closedAt: number | undefined;
  received: string;
}

function openDrip(host: string, port: number): Promise<Drip> {
  return new Promise((resolve, reject) => {
    const drip: Drip = {
      socket: connect(port, host),
      openedAt: performance.now(),
      closedAt: undefined,
      received: '',
    };
    drip.socket.once('connect', () => resolve(drip));
    drip.socket.once('error', reject);
    drip.socket.on('error', () => undefined);
    drip.socket.on('data', (d: Buffer) => (drip.received += d.toString('latin1')));
    drip.socket.on('close', () => (drip.closedAt = performance.now()));
  });
}

describe('the gateway process under slow clients', () => {
  it('cuts a few hundred dripping connections after HTTP_REQUEST_TIMEOUT_MS while HTTP and UDP announces are answered', async () => {
    const drips = await Promise.all(
      Array.from({ length: DRIPS }, () => openDrip(gateway.host, gateway.httpPort)),
    );
    for (const d of drips) d.socket.write('GET /announce?info_hash=%41');
    const timer = setInterval(() => {
      for (const d of drips) if (d.closedAt === undefined) d.socket.write('A');
    }, 500);
    const udp = await UdpTrackerClient.open(gateway.udpPort, gateway.host);
    try {
      const infoHash = randomInfoHash();
      const seeder = await httpAnnounce(gateway.announceUrl('http'), {
        infoHash,
        peerId: randomPeerId(),
        port: 50_101,
        left: 0n,
        event: 'started',
      });
      expect(seeder).toMatchObject({ seeders: 1, leechers: 0, peers: [] });
      const leecher = await udp.announce({
        infoHash,
        peerId: randomPeerId(),
        port: 50_102,
        left: 100n,
        event: 'started',
      });
      expect(leecher).toMatchObject({ seeders: 1, leechers: 1, peers: ['127.0.0.1:50101'] });
      const second = await httpAnnounce(gateway.announceUrl('http'), {
        infoHash,
        peerId: randomPeerId(),
        port: 50_103,
        left: 100n,
        event: 'started',
      });
      expect(second).toMatchObject({ seeders: 1, leechers: 2 });

      const deadline = performance.now() + REQUEST_TIMEOUT_MS + 2 * MARGIN_MS;
      while (drips.some((d) => d.closedAt === undefined)) {
        if (performance.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      clearInterval(timer);
      await udp.close();
      for (const d of drips) d.socket.destroy();
    }
    const lifetimes = drips.map((d) => (d.closedAt ?? Infinity) - d.openedAt);
    const open = lifetimes.filter((ms) => ms === Infinity).length;
    expect(open, `${open} of ${DRIPS} dripping connections still open\n${gateway.describe()}`).toBe(
      0,
    );
    expect(Math.min(...lifetimes)).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    const inTime = lifetimes.filter((ms) => ms <= REQUEST_TIMEOUT_MS + MARGIN_MS).length;
    expect(inTime).toBeGreaterThanOrEqual(DRIPS * 0.9);
    expect(
      drips.filter((d) => d.received.startsWith('HTTP/1.1 408 ')).length,
    ).toBeGreaterThanOrEqual(DRIPS * 0.9);
    expect(gateway.alive()).toBe(true);
  }, 60_000);

  it('refuses an oversize header with 431 and keeps serving', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      let data = '';
      const socket = connect(gateway.httpPort, gateway.host, () =>
        socket.write(`GET /announce HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(8192)}\r\n\r\n`),
      );
      socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
      socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', () => resolve(data));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    const after = await httpAnnounce(gateway.announceUrl('http'), {
      infoHash: randomInfoHash(),
      peerId: randomPeerId(),
      port: 50_104,
      left: 100n,
      event: 'started',
    });
    expect(after).toMatchObject({ seeders: 0, leechers: 1 });
  }, 30_000);

  it('logged no errors and stops cleanly on SIGTERM', async () => {
    // A client cut for slowness is its own fault: no error (50) or fatal (60) line.
    expect(gateway.stdout.filter((l) => /"level":(50|60)/.test(l))).toEqual([]);
    expect(await gateway.stop()).toBe(0);
  }, 30_000);
});
