// Bad input never crashes or stalls the gateway (docs/decisions.md "Tracker semantics": "Malformed
// packets are dropped or answered with an error action, never crash or stall
// the socket"; docs/conventions.md: "Bad input gets a clear answer and nothing else").
// A running gateway process takes thousands of random, truncated and mutated
// UDP packets and HTTP requests, then must still be alive, healthy and right.
// Failures print the fuzz seed; SHOAL_FUZZ_SEED=<seed> replays a run.
import { Agent, request as httpRequest } from 'node:http';
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng, mutate, type Rng } from './harness/fuzz.ts';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import { decodeBencode, isDict, type BDict } from '@shoal/testing/bencode';
import {
  announcePacket,
  announceQuery,
  connectPacket,
  httpAnnounce,
  randomInfoHash,
  randomPeerId,
  scrapePacket,
  UDP_ACTION,
  UDP_ANNOUNCE_LENGTH,
  UdpTrackerClient,
  type AnnounceParams,
  type UdpReply,
} from '@shoal/testing/tracker-client';

const rng: Rng = createRng();
const seedNote = `fuzz seed ${rng.seed} (SHOAL_FUZZ_SEED=${rng.seed} replays it)`;

let gateway: GatewayProcess;

beforeAll(async () => {
  gateway = await startGateway({ STORAGE_DRIVER: 'memory' });
});

afterAll(async () => {
  if (gateway?.alive()) await gateway.stop();
});

function validAnnounce(overrides: Partial<AnnounceParams> = {}): AnnounceParams {
  return {
    infoHash: randomInfoHash(),
    peerId: randomPeerId(),
    port: rng.int(1024, 65535),
    left: BigInt(rng.int(0, 1_000_000)),
    event: rng.pick(['none', 'started', 'completed', 'stopped'] as const),
    numWant: rng.pick([-1, 0, 5, 50]),
    ...overrides,
  };
}

// --- UDP ----------------------------------------------------------------------

type UdpCategory =
  | 'random junk'
  | 'large junk'
  | 'truncated connect'
  | 'truncated announce'
  | 'unknown action'
  | 'odd-length scrape'
  | 'oversized scrape'
  | 'mutated announce body'
  | 'mutated header'
  | 'bad connection id'
  | 'connect without protocol id';

interface UdpCase {
  category: UdpCategory;
  packet: Buffer;
  /** Replies this packet may get (empty: none may match it, it has no transaction id). */
  allowed: readonly number[];
  /** A valid connection id and an action we serve: an answer is owed (BEP 15 error action at least). */
  answerOwed: boolean;
}

function udpCases(connectionId: Buffer): UdpCase[] {
  const cases: UdpCase[] = [];
  const add = (
    category: UdpCategory,
    count: number,
    make: () => Omit<UdpCase, 'category'>,
  ): void => {
    for (let i = 0; i < count; i++) cases.push({ category, ...make() });
  };
  const anyTid = (): number => rng.int(0, 2 ** 32 - 1);
  const fullAnnounce = (): Buffer => announcePacket(connectionId, anyTid(), validAnnounce());

  add('random junk', 1500, () => ({
    packet: rng.bytes(rng.int(0, 120)),
    allowed: [UDP_ACTION.error],
    answerOwed: false,
  }));
  add('large junk', 50, () => ({
    packet: rng.bytes(rng.int(1_000, 9_000)),
    allowed: [UDP_ACTION.error],
    answerOwed: false,
  }));
  add('truncated connect', 200, () => ({
    packet: connectPacket(anyTid()).subarray(0, rng.int(0, 15)),
    allowed: [],
    answerOwed: false,
  }));
  add('truncated announce', 1000, () => ({
    packet: fullAnnounce().subarray(0, rng.int(16, UDP_ANNOUNCE_LENGTH - 1)),
    allowed: [UDP_ACTION.error],
    answerOwed: true,
  }));
  add('unknown action', 500, () => {
    const p = Buffer.concat([fullAnnounce().subarray(0, 16), rng.bytes(rng.int(0, 100))]);
    p.writeUInt32BE(rng.int(4, 2 ** 32 - 1), 8);
    return { packet: p, allowed: [UDP_ACTION.error], answerOwed: true };
  });
  add('odd-length scrape', 400, () => {
    const hashes = Array.from({ length: rng.int(0, 3) }, randomInfoHash);
    const p = scrapePacket(connectionId, anyTid(), hashes);
    // Zero hashes, or a hash cut short: either way not whole 20-byte hashes.
    const extra = hashes.length === 0 ? 0 : rng.int(1, 19);
    return {
      packet: hashes.length === 0 ? p : p.subarray(0, p.length - extra),
      allowed: [UDP_ACTION.scrape, UDP_ACTION.error],
      answerOwed: true,
    };
  });
  add('oversized scrape', 50, () => ({
    packet: scrapePacket(
      connectionId,
      anyTid(),
      Array.from({ length: rng.int(75, 400) }, randomInfoHash),
    ),
    allowed: [UDP_ACTION.scrape, UDP_ACTION.error],
    answerOwed: true,
  }));
  add('mutated announce body', 2000, () => {
    let p = mutate(rng, fullAnnounce(), 6, 16);
    // BEP 41 options after the fixed part: random option bytes must not break the announce.
    if (rng.chance(0.3)) p = Buffer.concat([p, rng.bytes(rng.int(1, 60))]);
    return { packet: p, allowed: [UDP_ACTION.announce, UDP_ACTION.error], answerOwed: true };
  });
  add('mutated header', 500, () => {
    const base = rng.chance(0.5)
      ? fullAnnounce()
      : scrapePacket(connectionId, anyTid(), [randomInfoHash()]);
    const p = Buffer.from(base);
    p[rng.int(0, 11)] = rng.int(0, 255);
    return {
      packet: p,
      allowed: [UDP_ACTION.announce, UDP_ACTION.scrape, UDP_ACTION.error],
      answerOwed: false,
    };
  });
  add('bad connection id', 500, () => {
    const p = rng.chance(0.5)
      ? fullAnnounce()
      : scrapePacket(connectionId, anyTid(), [randomInfoHash()]);
    rng.bytes(8).copy(p, 0);
    return { packet: p, allowed: [UDP_ACTION.error], answerOwed: false };
  });
  add('connect without protocol id', 200, () => {
    const p = connectPacket(anyTid());
    rng.bytes(8).copy(p, 0);
    return { packet: p, allowed: [UDP_ACTION.error], answerOwed: false };
  });
  return cases;
}

interface UdpOutcome {
  c: UdpCase;
  reply: UdpReply | undefined;
}

/**
 * Windows of at most 32 packets and 16 KiB. The kernel charges each datagram
 * its buffer's true size (kilobytes, even for a 20-byte packet) against the
 * gateway socket's receive buffer (208 KiB by default), so a bigger burst on a
 * loaded machine is dropped by the kernel before the gateway sees it.
 */
function windows(cases: readonly UdpCase[]): UdpCase[][] {
  const out: UdpCase[][] = [];
  let current: UdpCase[] = [];
  let bytes = 0;
  for (const c of cases) {
    if (
      current.length > 0 &&
      (current.length === 32 ||
        bytes + c.packet.length > 16 * 1024 ||
        current[0]?.category !== c.category)
    ) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(c);
    bytes += c.packet.length;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Sends the cases window by window; waits for owed answers up to 3 s, for optional ones 300 ms. */
async function fireUdp(client: UdpTrackerClient, cases: readonly UdpCase[]): Promise<UdpOutcome[]> {
  const used = new Set<number>();
  const out: UdpOutcome[] = [];
  for (const window of windows(cases)) {
    const results = await Promise.all(
      window.map(async (c): Promise<UdpOutcome> => {
        if (c.packet.length < 16) {
          client.send(c.packet);
          return { c, reply: undefined };
        }
        // Transaction ids must be unique to attribute replies; random ones rarely collide, but can.
        let tid = c.packet.readUInt32BE(12);
        while (used.has(tid)) {
          tid = client.transactionId();
          c.packet.writeUInt32BE(tid, 12);
        }
        used.add(tid);
        return { c, reply: await client.exchange(c.packet, tid, c.answerOwed ? 3_000 : 300) };
      }),
    );
    out.push(...results);
  }
  return out;
}

// --- HTTP ---------------------------------------------------------------------

const PRINTABLE =
  "!$&'()*+,-./0123456789:;=?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~%";

function randomText(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += PRINTABLE[rng.int(0, PRINTABLE.length - 1)];
  return s;
}

const BAD_ENCODINGS = [
  '%',
  '%z',
  '%zz',
  '%4',
  '%%41',
  '%G0',
  '%0',
  'abc',
  '%00'.repeat(19),
  '%00'.repeat(21),
  '%FF'.repeat(40),
  '%u0041',
];
const HUGE_VALUES = [
  '99999999999999999999999999',
  '-1',
  '-99999999999',
  '1e400',
  'NaN',
  '0x10',
  '18446744073709551616',
  '9'.repeat(2_000),
  '',
  '+',
  '%20',
  '%00',
];

type HttpCategory =
  | 'random query'
  | 'truncated'
  | 'bad percent-encoding'
  | 'huge values'
  | 'mutated'
  | 'bad scrape'
  | 'odd routes';

interface HttpCase {
  category: HttpCategory;
  method: string;
  path: string;
  /** Tracker routes answer every GET with 200 and a bencoded body (failure reason or a real answer). */
  trackerRoute: boolean;
}

function httpCases(): HttpCase[] {
  const cases: HttpCase[] = [];
  const add = (
    category: HttpCategory,
    count: number,
    make: () => Omit<HttpCase, 'category'>,
  ): void => {
    for (let i = 0; i < count; i++) cases.push({ category, ...make() });
  };
  const announce = '/announce';
  const scrape = '/scrape';
  add('random query', 500, () => ({
    method: 'GET',
    path: `${announce}?${randomText(rng.int(0, 400))}`,
    trackerRoute: true,
  }));
  add('truncated', 400, () => {
    const q = announceQuery(validAnnounce());
    return {
      method: 'GET',
      path: `${announce}?${q.slice(0, rng.int(0, q.length - 1))}`,
      trackerRoute: true,
    };
  });
  add('bad percent-encoding', 300, () => {
    const q = announceQuery(validAnnounce());
    const field = rng.pick(['info_hash', 'peer_id'] as const);
    const bad = q.replace(new RegExp(`${field}=[^&]*`), `${field}=${rng.pick(BAD_ENCODINGS)}`);
    return { method: 'GET', path: `${announce}?${bad}`, trackerRoute: true };
  });
  add('huge values', 300, () => {
    const q = announceQuery(validAnnounce());
    const field = rng.pick([
      'port',
      'left',
      'uploaded',
      'downloaded',
      'numwant',
      'compact',
      'event',
      'key',
    ] as const);
    const value = rng.pick(HUGE_VALUES);
    const replaced = q.includes(`${field}=`)
      ? q.replace(new RegExp(`${field}=[^&]*`), `${field}=${value}`)
      : `${q}&${field}=${value}`;
    // Repeated parameters, too.
    const repeated = rng.chance(0.2)
      ? `${replaced}&${`${field}=${value.slice(0, 20)}&`.repeat(rng.int(2, 200))}`
      : replaced;
    return { method: 'GET', path: `${announce}?${repeated}`, trackerRoute: true };
  });
  add('mutated', 400, () => {
    const q = announceQuery(validAnnounce()).split('');
    for (let i = rng.int(1, 5); i > 0; i--)
      q[rng.int(0, q.length - 1)] = PRINTABLE[rng.int(0, PRINTABLE.length - 1)] ?? '';
    return { method: 'GET', path: `${announce}?${q.join('')}`, trackerRoute: true };
  });
  add('bad scrape', 200, () => {
    const kind = rng.int(0, 3);
    const query =
      kind === 0
        ? randomText(rng.int(0, 300))
        : kind === 1
          ? `info_hash=${rng.pick(BAD_ENCODINGS)}`
          : kind === 2
            ? // More hashes than SCRAPE_MAX_HASHES (64), yet under Node's 16 KiB header limit.
              Array.from({ length: rng.int(65, 150) }, () => `info_hash=${'%41'.repeat(20)}`).join(
                '&',
              )
            : '';
    return { method: 'GET', path: `${scrape}?${query}`, trackerRoute: true };
  });
  add('odd routes', 100, () => ({
    method: rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH']),
    path: rng.pick([
      '/announce/x',
      '//announce',
      '/%00',
      '/..%2f..%2fetc/passwd',
      `/${randomText(rng.int(1, 3000))}`,
      '/announce?',
      '/scrape/',
    ]),
    trackerRoute: false,
  }));
  return cases;
}

interface HttpOutcome {
  c: HttpCase;
  status: number;
  body: Buffer;
  error?: Error;
}

/** Sends one request; resolves with the answer, or with the transport error (status 0). */
function send(agent: Agent, c: HttpCase, body?: Buffer): Promise<HttpOutcome> {
  return new Promise((resolve) => {
    const failed = (err: Error): void =>
      resolve({ c, status: 0, body: Buffer.alloc(0), error: err });
    const req = httpRequest(
      {
        host: gateway.host,
        port: gateway.httpPort,
        method: c.method,
        path: c.path,
        agent,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({ c, status: res.statusCode ?? 0, body: Buffer.concat(chunks) }),
        );
        res.on('error', failed);
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`no answer within 10 s to ${c.method} ${c.path.slice(0, 200)}`)),
    );
    req.on('error', failed);
    req.end(body);
  });
}

/** A tracker body is one bencoded dictionary: a failure reason, an announce answer, or a scrape answer. */
function trackerBodyKind(body: Buffer): 'failure' | 'announce' | 'scrape' | 'invalid' {
  let dict: BDict;
  try {
    const { value } = decodeBencode(body);
    if (!isDict(value)) return 'invalid';
    dict = value;
  } catch {
    return 'invalid';
  }
  if (Buffer.isBuffer(dict['failure reason'])) return 'failure';
  if (typeof dict.interval === 'number' && Buffer.isBuffer(dict.peers)) return 'announce';
  if (isDict(dict.files)) return 'scrape';
  return 'invalid';
}

/** Opens a TCP connection, writes `data`, then ends or drops it; resolves with what came back and whether the server closed. */
function rawTcp(
  data: Buffer,
  then: 'end' | 'destroy' | 'wait',
  waitMs: number,
): Promise<{ response: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = tcpConnect({ host: gateway.host, port: gateway.httpPort });
    let settled = false;
    const finish = (closedByServer: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ response: Buffer.concat(chunks).toString('latin1'), closedByServer });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', () => {
      socket.write(data);
      if (then === 'end') socket.end();
      else if (then === 'destroy') setTimeout(() => finish(true), rng.int(0, 20));
    });
  });
}

async function inBatches<T, R>(
  items: readonly T[],
  size: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size)
    out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

// --- the tests ------------------------------------------------------------------

describe('the gateway under malformed input', () => {
  it('takes thousands of random, truncated and mutated UDP packets, answering those it owes an answer with an error action', async () => {
    const client = await UdpTrackerClient.open(gateway.udpPort, gateway.host);
    try {
      const cases = udpCases(await client.connect());
      const outcomes = await fireUdp(client, cases);
      expect(gateway.alive(), `${seedNote}\n${gateway.describe()}`).toBe(true);

      const byCategory = new Map<UdpCategory, { sent: number; answered: number; errors: number }>();
      for (const { c, reply } of outcomes) {
        const row = byCategory.get(c.category) ?? { sent: 0, answered: 0, errors: 0 };
        row.sent++;
        if (reply !== undefined) row.answered++;
        if (reply?.action === UDP_ACTION.error) row.errors++;
        byCategory.set(c.category, row);
      }
      const table = [...byCategory]
        .map(([k, v]) => `${k}: sent ${v.sent}, answered ${v.answered}, errors ${v.errors}`)
        .join('\n');

      for (const { c, reply } of outcomes) {
        const what = `${c.category} packet ${c.packet.toString('hex').slice(0, 200)}\n${seedNote}\n${table}`;
        if (c.answerOwed) expect(reply, `no answer to ${what}`).toBeDefined();
        if (reply === undefined) continue;
        expect(c.allowed, `action ${reply.action} answered ${what}`).toContain(reply.action);
        if (reply.action === UDP_ACTION.error) {
          // BEP 15: action, transaction id, then a message for the user.
          expect(reply.packet.length, `empty error message for ${what}`).toBeGreaterThan(8);
        }
        if (reply.action === UDP_ACTION.announce) {
          expect(reply.packet.length, `announce answer to ${what}`).toBeGreaterThanOrEqual(20);
          // The packet came over IPv4: IPv4 peers only, 6 bytes each [torrust#1366].
          expect((reply.packet.length - 20) % 6, `peer list of ${what}`).toBe(0);
        }
        if (reply.action === UDP_ACTION.scrape) {
          expect((reply.packet.length - 8) % 12, `scrape answer to ${what}`).toBe(0);
          // Never more entries than whole hashes asked for, nor than fit a datagram (74).
          expect((reply.packet.length - 8) / 12).toBeLessThanOrEqual(
            Math.min(74, Math.floor((c.packet.length - 16) / 20)),
          );
        }
      }
      // Packets that are clearly malformed yet carry a valid connection id and a transaction id get a BEP 15 error back.
      for (const category of ['truncated announce', 'unknown action'] as const) {
        const row = byCategory.get(category);
        expect(row?.errors, `${category}\n${table}\n${seedNote}`).toBe(row?.sent);
      }
      // Replies that matched no packet (late, or to a packet without a transaction id) are still well-formed.
      for (const stray of client.unmatched) {
        expect(stray.length).toBeGreaterThanOrEqual(8);
        expect(stray.readUInt32BE(0)).toBeLessThanOrEqual(UDP_ACTION.error);
      }
      expect(outcomes.length).toBe(cases.length);
    } finally {
      await client.close();
    }
  }, 120_000);

  it('takes thousands of bad HTTP requests, raw junk and unfinished requests without crashing or stalling', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    try {
      const cases = httpCases();
      const outcomes = await inBatches(cases, 64, (c) =>
        send(
          agent,
          c,
          c.method === 'POST' || c.method === 'PUT' ? rng.bytes(rng.int(0, 5_000)) : undefined,
        ),
      );
      expect(gateway.alive(), `${seedNote}\n${gateway.describe()}`).toBe(true);
      for (const { c, status, body, error } of outcomes) {
        if (!c.trackerRoute) {
          // A server may close rather than read an unwanted body; it must not leave the client hanging.
          const code = (error as NodeJS.ErrnoException | undefined)?.code;
          if (code === 'ECONNRESET' || code === 'EPIPE') continue;
          expect(
            status,
            `${c.method} ${c.path.slice(0, 200)}: ${error?.message}`,
          ).toBeGreaterThanOrEqual(200);
          continue;
        }
        const kind = trackerBodyKind(body);
        // Clients ignore bodies of non-200 answers, so refusals are 200 + bencoded failure reason.
        expect(
          { status, kind },
          `${c.category}: ${c.method} ${c.path.slice(0, 300)}: ${error?.message}\n${body.toString('latin1').slice(0, 300)}\n${seedNote}`,
        ).toEqual({
          status: 200,
          kind: expect.stringMatching(/^(failure|announce|scrape)$/) as unknown,
        });
      }
      expect(outcomes.length).toBe(cases.length);
    } finally {
      agent.destroy();
    }

    // Raw junk on the socket: the server answers 400 or closes; it never keeps the socket open.
    const junk = await inBatches(Array.from({ length: 300 }), 50, () =>
      rawTcp(rng.bytes(rng.int(1, 2_000)), 'end', 5_000),
    );
    for (const j of junk) {
      expect(j.closedByServer, `junk socket left open; answer: ${j.response.slice(0, 100)}`).toBe(
        true,
      );
      if (j.response !== '') expect(j.response).toMatch(/^HTTP\/1\.[01] \d{3} /);
    }
    // Requests cut off mid-way and dropped by the client.
    const q = announceQuery(validAnnounce());
    const full = `GET /announce?${q} HTTP/1.1\r\nHost: x\r\nUser-Agent: fuzz\r\n\r\n`;
    await inBatches(Array.from({ length: 300 }), 50, () =>
      rawTcp(Buffer.from(full.slice(0, rng.int(1, full.length - 1))), 'destroy', 1_000),
    );
    // A header far beyond Node's 16 KiB limit gets 431, not a hang.
    const huge = await rawTcp(
      Buffer.from(`GET /announce?${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
      'wait',
      5_000,
    );
    expect(huge.closedByServer).toBe(true);
    expect(huge.response).toMatch(/^HTTP\/1\.1 (414|431|400) /);
    expect(gateway.alive(), `${seedNote}\n${gateway.describe()}`).toBe(true);
  }, 120_000);

  it('afterwards is alive, healthy, and answers valid UDP and HTTP announces right, even with unfinished requests held open', async () => {
    // Slow clients holding half-sent requests must not stall anyone else.
    const held: TcpSocket[] = await Promise.all(
      Array.from(
        { length: 50 },
        () =>
          new Promise<TcpSocket>((resolve, reject) => {
            const s = tcpConnect({ host: gateway.host, port: gateway.httpPort }, () => {
              s.write('GET /announce?info_hash=');
              resolve(s);
            });
            s.on('error', reject);
          }),
      ),
    );
    try {
      expect(gateway.alive()).toBe(true);
      const health = await fetch(gateway.adminUrl('/healthz'), {
        signal: AbortSignal.timeout(5_000),
      });
      expect(health.status).toBe(200);

      const client = await UdpTrackerClient.open(gateway.udpPort, gateway.host);
      try {
        const infoHash = randomInfoHash();
        const seeder = await client.announce({
          infoHash,
          peerId: randomPeerId(),
          port: 50_001,
          left: 0n,
          event: 'started',
        });
        expect(seeder).toMatchObject({ seeders: 1, leechers: 0, peers: [] });
        const leecher = await client.announce({
          infoHash,
          peerId: randomPeerId(),
          port: 50_002,
          left: 100n,
          event: 'started',
        });
        expect(leecher).toMatchObject({ seeders: 1, leechers: 1, peers: ['127.0.0.1:50001'] });
        expect(await client.scrape([infoHash])).toEqual([
          { complete: 1, incomplete: 1, downloaded: 0 },
        ]);
      } finally {
        await client.close();
      }

      const infoHash = randomInfoHash();
      const url = gateway.announceUrl('http');
      const seeder = await httpAnnounce(url, {
        infoHash,
        peerId: randomPeerId(),
        port: 50_003,
        left: 0n,
        event: 'started',
      });
      expect(seeder).toMatchObject({ seeders: 1, leechers: 0, peers: [] });
      const leecher = await httpAnnounce(url, {
        infoHash,
        peerId: randomPeerId(),
        port: 50_004,
        left: 100n,
        event: 'started',
      });
      expect(leecher).toMatchObject({ seeders: 1, leechers: 1, peers: ['127.0.0.1:50003'] });

      const metrics = await fetch(gateway.adminUrl('/metrics'), {
        signal: AbortSignal.timeout(5_000),
      });
      expect(metrics.status).toBe(200);
    } finally {
      for (const s of held) s.destroy();
    }
  }, 60_000);

  it('then shuts down cleanly on SIGTERM', async () => {
    // Bad input is the client's fault: a refusal, never an internal error (pino level 50) or a fatal one (60).
    const errors = gateway.stdout.filter((l) => /"level":(50|60)/.test(l));
    expect(errors).toEqual([]);
    expect(await gateway.stop()).toBe(0);
  }, 30_000);
});
