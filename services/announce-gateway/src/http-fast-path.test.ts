// docs/decisions.md "HTTP announce beside fastify": a GET of an announce
// route is answered from node:http's request event, everything else by
// fastify's router. Over real sockets, each answer of the fast path must be
// the bytes fastify's route sends for the same request.
import { request as httpRequest } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogs } from '@shoal/testing/logs';
import { announceRouteMatcher } from './http.ts';
import {
  announceQuery,
  bdict,
  hashOf,
  makeGateway,
  unavailableStorage,
  type TestGateway,
} from '../test/support.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request over a fresh socket (no keep-alive reuse between cases). */
function get(port: number, path: string, method = 'GET', headers: Record<string, string> = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** What a client sees of an answer, without the Date and connection headers. */
function seen(a: Answer) {
  return {
    status: a.status,
    type: a.headers['content-type'],
    length: a.headers['content-length'],
    body: a.body.toString('latin1'),
  };
}

describe('announceRouteMatcher', () => {
  const match = announceRouteMatcher({
    ANNOUNCE_ROUTES: ['/announce', '/a/'],
    SCRAPE_ROUTES: ['/scrape', '/announce/scrape'],
  });
  const NOT_FAST = match('/elsewhere');

  it('takes the announce routes, one trailing slash, and their passkey routes', () => {
    expect(match('/announce?info_hash=x')).toBeUndefined();
    expect(match('/announce')).toBeUndefined();
    expect(match('/announce/?x=1')).toBeUndefined();
    expect(match('/announce/pk-1?x=1')).toBe('pk-1');
    expect(match('/announce/pk-1/')).toBe('pk-1');
    expect(match('/a')).toBeUndefined();
    expect(match('/a/')).toBeUndefined();
    expect(match('/a/key')).toBe('key');
    expect(match(`/announce/${'k'.repeat(100)}`)).toBe('k'.repeat(100));
  });

  it('leaves the router everything it decodes or matches otherwise', () => {
    expect(typeof NOT_FAST).toBe('symbol');
    for (const url of [
      undefined,
      '',
      '/',
      '/scrape?info_hash=x',
      '/announce/scrape',
      '/announce/scrape/',
      '/%61nnounce?x',
      '/announce/p%20k',
      '/announce#frag?x',
      'http://tracker/announce?x',
      '/announce//',
      '/announce/a/b',
      '/announcex',
      '/Announce',
      `/announce/${'k'.repeat(101)}`,
    ])
      expect(match(url), String(url)).toBe(NOT_FAST);
  });
});

describe('the fast path answers as the router does', () => {
  let t: TestGateway;
  let port: number;
  beforeAll(async () => {
    t = makeGateway();
    port = (await t.gateway.listen()).httpPort!;
  });
  afterAll(() => t.close());

  const cases: [string, (q: string) => string][] = [
    ['a compact announce', (q) => `/announce?${q}`],
    ['a trailing slash', (q) => `/announce/?${q}`],
    ['a passkey route (passkeys off: ignored)', (q) => `/announce/somekey?${q}`],
    ['compact=0', (q) => `/announce?${q}&compact=0`],
    ['no_peer_id', (q) => `/announce?${q}&compact=0&no_peer_id=1`],
    ['a bad port (refused)', (q) => `/announce?${q.replace(/port=\d+/, 'port=0')}`],
    ['no info_hash (refused)', () => '/announce?peer_id=-XX0001-000000000000&port=1'],
    ['a short info_hash (refused)', () => '/announce?info_hash=%00%01&peer_id=x&port=1'],
  ];

  it.each(cases)('%s: the same status, headers and body', async (_label, path) => {
    // Each side gets a swarm of its own, in the same state: one seeder there before.
    const answers = [];
    for (const side of ['fast', 'router']) {
      const infoHash = hashOf(`fast-path ${_label} ${side}`);
      await get(port, `/announce?${announceQuery({ infoHash, port: 5000, left: 0 })}`);
      const url = path(announceQuery({ infoHash, port: 5001 }));
      // A percent-escape in the path sends the same request through fastify's router.
      const answer = await get(
        port,
        side === 'fast' ? url : url.replace('/announce', '/%61nnounce'),
      );
      answers.push(seen(answer));
    }
    expect(answers[0]).toEqual(answers[1]);
    expect(answers[0]).toMatchObject({ status: 200, type: 'text/plain' });
  });

  it('answers the peer the first announce stored, over both paths', async () => {
    const infoHash = hashOf('fast-path peers');
    await get(port, `/announce?${announceQuery({ infoHash, port: 5100, left: 0 })}`);
    const fast = bdict(
      (await get(port, `/announce?${announceQuery({ infoHash, port: 5101 })}`)).body,
    );
    const routed = bdict(
      (await get(port, `/%61nnounce?${announceQuery({ infoHash, port: 5102 })}`)).body,
    );
    expect(fast.peers).toEqual(Buffer.from([127, 0, 0, 1, 0x13, 0xec]));
    expect(fast).toMatchObject({ complete: 1, incomplete: 1 });
    expect(routed).toMatchObject({ complete: 1, incomplete: 2 });
    const metrics = await t.registry.metrics();
    expect(metrics).toMatch(
      /shoal_requests_total\{protocol="http",action="announce",outcome="ok"\} \d+/,
    );
  });

  it('leaves HEAD, scrape and the home page to the router', async () => {
    const q = announceQuery({ infoHash: hashOf('fast-path head'), port: 5200 });
    const head = await get(port, `/announce?${q}`, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toBe('text/plain');
    expect(head.body).toHaveLength(0);
    const scrape = await get(port, `/scrape?info_hash=${encodeURIComponent('x'.repeat(20))}`);
    expect(Object.keys(bdict(scrape.body))).toEqual(['files']);
    const home = await get(port, '/');
    expect(home.body.toString()).toMatch(/^Shoal BitTorrent tracker/);
    expect((await get(port, '/nowhere')).status).toBe(404);
  });
});

describe('the fast path with a store that answers later', () => {
  it('answers "retry later" as the router does, and logs the failure once with the request id', async () => {
    const { lines, stream } = captureLogs();
    const t = makeGateway(
      {},
      { storage: unavailableStorage(), logger: pino({ level: 'info' }, stream) },
    );
    try {
      const port = (await t.gateway.listen()).httpPort!;
      const q = announceQuery({ infoHash: hashOf('fast-path later'), port: 5300 });
      const fast = await get(port, `/announce?${q}`, 'GET', { 'x-request-id': 'req-fast' });
      const routed = await get(port, `/%61nnounce?${q}`);
      expect(seen(fast)).toEqual(seen(routed));
      expect((bdict(fast.body)['failure reason'] as Buffer).toString()).toBe(
        'tracker storage unavailable, retry later [STORE_ERR_UNAVAILABLE]',
      );
      const errors = lines.filter((l) => (l.level as number) >= 50);
      expect(errors.map((e) => e.reqId)).toEqual(['req-fast', expect.stringMatching(/^req-/)]);
      expect(errors.every((e) => e.code === 'STORE_ERR_UNAVAILABLE')).toBe(true);
    } finally {
      await t.close();
    }
  });
});
