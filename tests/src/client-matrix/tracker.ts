// A tracker driven into one answer per listener, for the client matrix
// (docs/client-backoff.md). Every answer is made by @shoal/protocol's own
// encoders, so what a client sees here is what a gateway would send. Each
// (client, answer) pair gets its own listener on 127.0.0.1 port 0, so the
// announce times it records belong to one client and one answer only.
import { createServer, type Server } from 'node:http';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { buildGateway, loadGatewayConfig, type GatewayStorage } from '@shoal/announce-gateway';
import { StoreError } from '@shoal/storage';
import { LOOPBACK_ENV } from '@shoal/testing/launcher';
import {
  UDP_ACTION_ANNOUNCE,
  UDP_ACTION_CONNECT,
  UDP_ACTION_SCRAPE,
  encodeConnectResponseInto,
  encodeErrorResponseInto,
  encodeFailure,
  encodeHttpAnnounceResponse,
  encodeUdpAnnounceResponseInto,
  encodeUdpScrapeResponseInto,
} from '@shoal/protocol';
import type { CaseId } from './table.ts';

export interface Timings {
  /** `interval` and `min interval` of the failure that carries them. */
  retryLaterSeconds: number;
  /** `interval` and `min interval` of the shed answer (a normal answer, no peers). */
  shedSeconds: number;
}

/** What each answer is, for the docs' legend. */
export function describeCase(c: CaseId, t: Timings): string {
  switch (c) {
    case 'http-failure':
      return 'HTTP 200, `failure reason` and BEP 31 `retry in` 1, no `interval` (Shoal before)';
    case 'http-failure-interval':
      return `HTTP 200, \`failure reason\`, \`interval\` and \`min interval\` ${t.retryLaterSeconds}, \`retry in\` ${Math.ceil(t.retryLaterSeconds / 60)}`;
    case 'http-503':
      return 'HTTP 503, empty body';
    case 'http-shed':
      return `HTTP 200, a normal answer with \`interval\` and \`min interval\` ${t.shedSeconds} and no peers`;
    case 'udp-error':
      return 'UDP: connect answered, announce answered with an error action (BEP 15 action 3)';
    case 'udp-silence':
      return 'UDP: connect answered, announce never answered (every packet counted)';
    case 'udp-shed':
      return `UDP: a normal announce answer with interval ${t.shedSeconds} and no peers`;
    case 'gateway-http-outage':
      return `Shoal's gateway over HTTP, its store down: its retry later with RETRY_LATER_INTERVAL_SECONDS ${t.retryLaterSeconds}`;
  }
}

const REASON = 'tracker storage unavailable, retry later [STORE_ERR_UNAVAILABLE]';

export interface Listener {
  readonly answer: CaseId;
  /** The announce URL a torrent names. */
  readonly url: string;
  /** Seconds (since `t0`) at which announces arrived, up to `stop()`. */
  readonly times: number[];
  /** Stops recording: clients send `stopped` when they are shut down. */
  stop(): void;
  close(): Promise<void>;
}

function httpBody(c: CaseId, t: Timings): { status: number; body: Buffer } {
  if (c === 'http-503') return { status: 503, body: Buffer.alloc(0) };
  if (c === 'http-failure')
    return { status: 200, body: encodeFailure(REASON, { retryInSeconds: 60 }) };
  if (c === 'http-failure-interval') {
    const s = t.retryLaterSeconds;
    return {
      status: 200,
      body: encodeFailure(REASON, { intervalSeconds: s, minIntervalSeconds: s, retryInSeconds: s }),
    };
  }
  return {
    status: 200,
    body: encodeHttpAnnounceResponse({
      interval: t.shedSeconds,
      minInterval: t.shedSeconds,
      complete: 0,
      incomplete: 0,
      downloaded: 0,
      family: 4,
      peers: Buffer.alloc(0),
      peerIds: undefined,
      compact: true,
      noPeerId: true,
    }),
  };
}

/** Announce times since `t0`, recorded until stopped. */
function recorder(t0: number): { times: number[]; record: () => void; stop: () => void } {
  const times: number[] = [];
  let on = true;
  return {
    times,
    record: () => {
      if (on) times.push((performance.now() - t0) / 1000);
    },
    stop: () => {
      on = false;
    },
  };
}

async function httpListener(c: CaseId, t: Timings, t0: number): Promise<Listener> {
  const { times, record, stop } = recorder(t0);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const announce = path.startsWith('/announce');
    if (announce) record();
    // Scrapes (Transmission sends them) fail as announces do, as in an
    // outage: Transmission forgets its failure count on a scrape that works.
    const { status, body } =
      announce || c !== 'http-shed'
        ? httpBody(c, t)
        : { status: 200, body: Buffer.from('d5:filesdee', 'latin1') };
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  return {
    answer: c,
    url: `http://127.0.0.1:${addr.port}/announce`,
    times,
    stop,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function udpListener(c: CaseId, t: Timings, t0: number): Promise<Listener> {
  const { times, record, stop } = recorder(t0);
  const socket: Socket = createSocket('udp4');
  const out = Buffer.alloc(2048);
  socket.on('message', (msg, rinfo) => {
    if (msg.length < 16) return;
    const action = msg.readUInt32BE(8);
    const tid = msg.readUInt32BE(12);
    let size = 0;
    if (action === UDP_ACTION_CONNECT) size = encodeConnectResponseInto(out, tid, randomBytes(8));
    else if (action === UDP_ACTION_SCRAPE && c === 'udp-error')
      size = encodeErrorResponseInto(out, tid, REASON);
    else if (action === UDP_ACTION_SCRAPE && c === 'udp-shed') {
      const hashes = Math.floor((msg.length - 16) / 20);
      const zero = { complete: 0, incomplete: 0, downloaded: 0 };
      size = encodeUdpScrapeResponseInto(
        out,
        tid,
        Array.from({ length: hashes }, () => zero),
      );
    } else if (action === UDP_ACTION_ANNOUNCE) {
      record();
      if (c === 'udp-error') size = encodeErrorResponseInto(out, tid, REASON);
      else if (c === 'udp-shed')
        size = encodeUdpAnnounceResponseInto(out, tid, t.shedSeconds, 0, 0, Buffer.alloc(0));
    }
    if (size > 0) socket.send(out.subarray(0, size), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    answer: c,
    url: `udp://127.0.0.1:${socket.address().port}/announce`,
    times,
    stop,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

/**
 * Shoal's own gateway, built as its tests build it, whose store is down: what
 * it answers is the code under test, not the scripted answers above, over
 * HTTP (`times` come from its log of failures, one line per HTTP failure).
 */
async function gatewayListener(c: CaseId, t: Timings, t0: number): Promise<Listener> {
  const { times, record, stop } = recorder(t0);
  const down = () => Promise.reject(new StoreError('STORE_ERR_UNAVAILABLE', 'client matrix'));
  const storage: GatewayStorage = {
    ...{ driver: 'down', announce: down, scrape: down, collectGarbage: down },
    ...{ stats: down, ping: down, close: () => Promise.resolve() },
  };
  const config = loadGatewayConfig({
    env: {
      ...LOOPBACK_ENV,
      UDP_CONNECTION_ID_SECRET: randomBytes(32).toString('hex'),
      RETRY_LATER_INTERVAL_SECONDS: String(t.retryLaterSeconds),
    },
    argv: [],
  });
  // Every failed announce is logged once with its action: that line is the record.
  const logger = pino(
    { level: 'error' },
    { write: (line: string) => line.includes('"action":"announce"') && record() },
  );
  const gateway = buildGateway({ config, logger, registry: new Registry(), storage });
  const ports = await gateway.listen();
  return {
    answer: c,
    url: `http://127.0.0.1:${ports.httpPort}/announce`,
    times,
    stop,
    close: () => gateway.close(),
  };
}

export function listen(c: CaseId, t: Timings, t0: number): Promise<Listener> {
  if (c.startsWith('gateway-')) return gatewayListener(c, t, t0);
  return c.startsWith('udp-') ? udpListener(c, t, t0) : httpListener(c, t, t0);
}
