// The full scrape over real HTTP sockets (docs/full-scrape.md): off by
// default; on, every live swarm from a cache rebuilt at most every
// FULL_SCRAPE_REFRESH_SECONDS, gzip only when the client accepts it, the
// largest swarms kept when over FULL_SCRAPE_MAX_TORRENTS, and a per-address
// rate limit.
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '@shoal/testing/processes';
import { announceQuery, bdict, hashOf, makeGateway, type TestGateway } from '../test/support.ts';

interface Answer {
  encoding: string | undefined;
  body: Buffer;
}

/** GET with exactly the headers given (fetch would ask for gzip and decode it itself). */
function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const encoding = res.headers['content-encoding'];
        resolve({ encoding, body: Buffer.concat(chunks) });
      });
    })
      .on('error', reject)
      .end();
  });
}

/** The files of a scrape answer as hex -> [complete, incomplete, downloaded]. */
function files(body: Buffer): Record<string, number[]> {
  const dict = bdict(body);
  const out: Record<string, number[]> = {};
  const f = dict.files as Record<string, Record<string, number>>;
  for (const [key, v] of Object.entries(f))
    out[Buffer.from(key, 'latin1').toString('hex')] = [v.complete!, v.incomplete!, v.downloaded!];
  return out;
}

describe('full scrape', () => {
  let t: TestGateway | undefined;
  let now = Date.UTC(2030, 0, 1);
  const clock = () => now;

  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  async function start(env: Record<string, string>): Promise<string> {
    t = makeGateway({ UDP_ENABLED: 'false', ...env }, { clock });
    const { httpPort } = await t.gateway.listen();
    return `http://127.0.0.1:${httpPort}`;
  }

  async function fill(base: string, swarms: Array<[label: string, leechers: number]>) {
    let port = 7000;
    for (const [label, n] of swarms)
      for (let i = 0; i < n; i++)
        await get(`${base}/announce?${announceQuery({ infoHash: hashOf(label), port: port++ })}`);
  }

  const hex = (label: string) => hashOf(label).toString('hex');

  it('is off by default: a scrape without info_hash lists nothing', async () => {
    const base = await start({});
    await fill(base, [['a', 1]]);
    const answer = await get(`${base}/scrape`);
    expect(bdict(answer.body).files ?? {}).toEqual({});
  });

  it('lists every live swarm, gzipped only for a client that accepts it, with BEP 48 flags', async () => {
    const base = await start({
      FULL_SCRAPE_ENABLED: 'true',
      FULL_SCRAPE_REFRESH_SECONDS: '60',
      FULL_SCRAPE_BURST: '10',
    });
    await fill(base, [
      ['a', 3],
      ['b', 1],
    ]);
    const plain = await get(`${base}/scrape`);
    expect(plain.encoding).toBeUndefined();
    expect(files(plain.body)).toEqual({ [hex('a')]: [0, 3, 0], [hex('b')]: [0, 1, 0] });
    expect(bdict(plain.body).flags).toEqual({ min_request_interval: 60 });
    const zipped = await get(`${base}/scrape`, { 'accept-encoding': 'br, gzip;q=0.5' });
    expect(zipped.encoding).toBe('gzip');
    expect(gunzipSync(zipped.body)).toEqual(plain.body);
    const refused = await get(`${base}/scrape`, { 'accept-encoding': 'gzip;q=0' });
    expect(refused.encoding).toBeUndefined();
    // A scrape with hashes is the ordinary one.
    const one = await get(
      `${base}/scrape?info_hash=${encodeURIComponent(hashOf('b').toString('latin1'))}`,
    );
    expect(Object.keys(files(one.body)).length).toBeLessThanOrEqual(1);
    const metrics = await t!.registry.metrics();
    expect(metrics).toContain('shoal_full_scrape_served_total{encoding="gzip"} 1');
    expect(metrics).toContain('shoal_full_scrape_served_total{encoding="identity"} 2');
    expect(metrics).toContain('shoal_full_scrape_refreshes_total{outcome="ok"} 1');
    expect(metrics).toContain('shoal_full_scrape_torrents 2');
  });

  it('is rebuilt at most once a refresh period, and a stale answer is served while it is', async () => {
    const base = await start({
      FULL_SCRAPE_ENABLED: 'true',
      FULL_SCRAPE_REFRESH_SECONDS: '60',
      FULL_SCRAPE_BURST: '10',
    });
    await fill(base, [['a', 1]]);
    expect(Object.keys(files((await get(`${base}/scrape`)).body))).toEqual([hex('a')]);
    await fill(base, [['b', 1]]);
    now += 59_000;
    expect(Object.keys(files((await get(`${base}/scrape`)).body))).toEqual([hex('a')]);
    now += 1_000;
    // This request starts the rebuild and is answered from the old cache.
    expect(Object.keys(files((await get(`${base}/scrape`)).body))).toEqual([hex('a')]);
    await waitFor(
      'the rebuild',
      async () =>
        (await t!.registry.metrics()).includes('shoal_full_scrape_refreshes_total{outcome="ok"} 2'),
      5_000,
      10,
    );
    expect(Object.keys(files((await get(`${base}/scrape`)).body)).sort()).toEqual(
      [hex('a'), hex('b')].sort(),
    );
  });

  it('keeps the swarms with the most peers when over FULL_SCRAPE_MAX_TORRENTS, and says so', async () => {
    const base = await start({ FULL_SCRAPE_ENABLED: 'true', FULL_SCRAPE_MAX_TORRENTS: '2' });
    await fill(base, [
      ['small', 1],
      ['big', 3],
      ['mid', 2],
    ]);
    const answer = await get(`${base}/scrape`);
    expect(files(answer.body)).toEqual({ [hex('big')]: [0, 3, 0], [hex('mid')]: [0, 2, 0] });
    expect(bdict(answer.body).flags).toEqual({ min_request_interval: 300, truncated: 1 });
    expect(await t!.registry.metrics()).toContain('shoal_full_scrape_truncated 1');
  });

  it('refuses a client over FULL_SCRAPE_PER_MINUTE with a coded failure, and serves it again later', async () => {
    const base = await start({
      FULL_SCRAPE_ENABLED: 'true',
      FULL_SCRAPE_PER_MINUTE: '1',
      FULL_SCRAPE_BURST: '2',
    });
    await fill(base, [['a', 1]]);
    expect(bdict((await get(`${base}/scrape`)).body).files).toBeDefined();
    expect(bdict((await get(`${base}/scrape`)).body).files).toBeDefined();
    const refused = bdict((await get(`${base}/scrape`)).body);
    const reason = refused['failure reason'];
    expect(Buffer.isBuffer(reason) ? reason.toString() : reason).toContain(
      'POLICY_ERR_RATE_LIMITED',
    );
    // Announces are not limited by it.
    await fill(base, [['b', 1]]);
    now += 60_000;
    expect(bdict((await get(`${base}/scrape`)).body).files).toBeDefined();
    expect(await t!.registry.metrics()).toContain('shoal_full_scrape_rate_limited_total 1');
  });
});
