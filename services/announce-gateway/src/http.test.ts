import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '@shoal/storage';
import type { GatewayStorage } from './storage.ts';
import {
  announceQuery,
  bdict,
  hashOf,
  makeGateway,
  percentBytes,
  unavailableStorage,
  type AnnounceParams,
  type BValue,
  type TestGateway,
} from '../test/support.ts';

type Dict = { [key: string]: BValue };

async function announce(
  t: TestGateway,
  p: AnnounceParams,
  remoteAddress = '127.0.0.1',
  headers: Record<string, string> = {},
) {
  const res = await t.gateway.http.inject({
    method: 'GET',
    url: `/announce?${announceQuery(p)}`,
    remoteAddress,
    headers,
  });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain');
  return bdict(res.rawPayload);
}

function compactPeers(peers: BValue, size: 6 | 18): string[] {
  const buf = peers as Buffer;
  const out: string[] = [];
  for (let i = 0; i < buf.length; i += size) {
    const port = buf.readUInt16BE(i + size - 2);
    const ip =
      size === 6
        ? [...buf.subarray(i, i + 4)].join('.')
        : (
            buf
              .subarray(i, i + 16)
              .toString('hex')
              .match(/.{4}/g) ?? []
          ).join(':');
    out.push(`${ip}:${port}`);
  }
  return out;
}

describe('HTTP announce', () => {
  let t: TestGateway;
  beforeAll(() => {
    t = makeGateway();
  });
  afterAll(() => t.close());

  it('answers an empty swarm with an empty `peers`, counts including the announcer, and the intervals', async () => {
    const body = await announce(t, { infoHash: hashOf('empty'), port: 6881 });
    expect(body.peers).toEqual(Buffer.alloc(0));
    expect(body.complete).toBe(0);
    expect(body.incomplete).toBe(1);
    expect(body.interval).toBe(1800);
    expect(body['min interval']).toBe(900);
  });

  it('returns compact IPv4 peers by default and a peer list with compact=0', async () => {
    const infoHash = hashOf('compact');
    await announce(t, { infoHash, port: 7001, left: 0 }, '192.0.2.10');
    const compact = await announce(t, { infoHash, port: 7002 }, '192.0.2.11');
    expect(compactPeers(compact.peers as Buffer, 6)).toEqual(['192.0.2.10:7001']);
    expect(compact.complete).toBe(1);
    expect(compact.incomplete).toBe(1);

    const list = await announce(t, { infoHash, port: 7003, compact: 0 }, '192.0.2.12');
    const peers = (list.peers as Dict[])
      .map((p) => `${(p.ip as Buffer).toString()}:${p.port as number}`)
      .sort();
    expect(peers).toEqual(['192.0.2.10:7001', '192.0.2.11:7002']);
    expect((list.peers as Dict[]).every((p) => (p['peer id'] as Buffer).length === 20)).toBe(true);
  });

  it('gives an IPv6 client `peers6` with 18-byte entries and still sends `peers`; IPv4-mapped clients count as IPv4', async () => {
    const infoHash = hashOf('v6');
    await announce(t, { infoHash, port: 6001, left: 0 }, '2001:db8::1');
    const body = await announce(t, { infoHash, port: 6002 }, '2001:db8::2');
    expect(compactPeers(body.peers6 as Buffer, 18)).toEqual([
      '2001:0db8:0000:0000:0000:0000:0000:0001:6001',
    ]);
    expect(body.peers).toEqual(Buffer.alloc(0));

    const mapped = await announce(t, { infoHash, port: 6003 }, '::ffff:192.0.2.50');
    expect(mapped.peers6).toBeUndefined();
    await announce(t, { infoHash, port: 6004, left: 0 }, '192.0.2.51');
    const v4 = await announce(t, { infoHash, port: 6005 }, '192.0.2.52');
    expect(compactPeers(v4.peers as Buffer, 6).sort()).toEqual([
      '192.0.2.50:6003',
      '192.0.2.51:6004',
    ]);
  });

  it('refuses port 0 with a coded failure, but accepts it on event=stopped', async () => {
    const refused = await announce(t, { infoHash: hashOf('port0'), port: 0 });
    expect((refused['failure reason'] as Buffer).toString()).toMatch(/\[GATEWAY_ERR_BAD_PORT\]/);
    const stopped = await announce(t, { infoHash: hashOf('port0'), port: 0, event: 'stopped' });
    expect(stopped['failure reason']).toBeUndefined();
  });

  it('answers malformed requests with HTTP 200 and a bencoded failure naming the error code', async () => {
    const res = await t.gateway.http.inject({
      method: 'GET',
      url: '/announce?info_hash=%00%01&peer_id=x&port=1',
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain');
    const body = bdict(res.rawPayload);
    expect((body['failure reason'] as Buffer).toString()).toMatch(/\[PROTO_ERR_[A-Z_]+\]$/);
    expect(body['retry in']).toBeUndefined();
  });

  it('serves a short text on /', async () => {
    const res = await t.gateway.http.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('/announce');
  });
});

describe('HTTP numwant', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = makeGateway({ NUMWANT_DEFAULT: '5', NUMWANT_MAX: '10' });
    for (let i = 0; i < 20; i++)
      await announce(
        t,
        { infoHash: hashOf('numwant'), port: 10_000 + i, left: 0 },
        `198.51.100.${i + 1}`,
      );
  });
  afterAll(() => t.close());

  it('defaults to NUMWANT_DEFAULT peers and caps at NUMWANT_MAX', async () => {
    const byDefault = await announce(t, { infoHash: hashOf('numwant'), port: 9000 }, '203.0.113.1');
    expect((byDefault.peers as Buffer).length).toBe(5 * 6);
    const capped = await announce(
      t,
      { infoHash: hashOf('numwant'), port: 9001, numwant: 500 },
      '203.0.113.2',
    );
    expect((capped.peers as Buffer).length).toBe(10 * 6);
    const none = await announce(
      t,
      { infoHash: hashOf('numwant'), port: 9002, numwant: 0 },
      '203.0.113.3',
    );
    expect(none.peers).toEqual(Buffer.alloc(0));
  });
});

describe('HTTP client address', () => {
  let t: TestGateway;
  let open: TestGateway;
  beforeAll(() => {
    t = makeGateway({ TRUSTED_PROXIES: '10.0.0.0/8,fd00::/8' });
    open = makeGateway({ ALLOW_IP_PARAM: 'true' });
  });
  afterAll(async () => {
    await t.close();
    await open.close();
  });

  async function seenAs(
    g: TestGateway,
    label: string,
    remote: string,
    headers: Record<string, string>,
    ip?: string,
  ) {
    const infoHash = hashOf(label);
    await announce(
      g,
      { infoHash, port: 5555, left: 0, ...(ip === undefined ? {} : { ip }) },
      remote,
      headers,
    );
    const body = await announce(g, { infoHash, port: 5556 }, '192.0.2.200');
    return compactPeers(body.peers as Buffer, 6);
  }

  it('uses the rightmost untrusted X-Forwarded-For entry when the socket peer is a trusted proxy', async () => {
    expect(
      await seenAs(t, 'xff', '10.1.2.3', { 'x-forwarded-for': '1.1.1.1, 203.0.113.9, 10.0.0.5' }),
    ).toEqual(['203.0.113.9:5555']);
    expect(await seenAs(t, 'xff6', 'fd00::1', { 'x-forwarded-for': '203.0.113.10' })).toEqual([
      '203.0.113.10:5555',
    ]);
  });

  it('falls back to X-Real-IP from a trusted proxy', async () => {
    expect(await seenAs(t, 'realip', '10.9.9.9', { 'x-real-ip': '203.0.113.77' })).toEqual([
      '203.0.113.77:5555',
    ]);
  });

  it('ignores forwarding headers from an untrusted peer', async () => {
    expect(
      await seenAs(t, 'untrusted', '198.51.100.7', { 'x-forwarded-for': '203.0.113.50' }),
    ).toEqual(['198.51.100.7:5555']);
  });

  it('ignores the ip parameter unless ALLOW_IP_PARAM is set', async () => {
    expect(await seenAs(t, 'ipparam', '198.51.100.8', {}, '203.0.113.66')).toEqual([
      '198.51.100.8:5555',
    ]);
    expect(await seenAs(open, 'ipparam', '198.51.100.8', {}, '203.0.113.66')).toEqual([
      '203.0.113.66:5555',
    ]);
  });
});

describe('HTTP BEP 7 ipv4= and ipv6=', () => {
  let off: TestGateway;
  let on: TestGateway;
  beforeAll(() => {
    off = makeGateway({ TRUSTED_PROXIES: '10.0.0.0/8' });
    on = makeGateway({ ALLOW_IPV4_IPV6_PARAMS: 'true', TRUSTED_PROXIES: '10.0.0.0/8' });
  });
  afterAll(async () => {
    await off.close();
    await on.close();
  });

  async function scrape(g: TestGateway, infoHash: Buffer): Promise<Dict> {
    const res = await g.gateway.http.inject({
      method: 'GET',
      url: `/scrape?info_hash=${percentBytes(infoHash)}`,
    });
    return (bdict(res.rawPayload).files as { [key: string]: Dict })[infoHash.toString('latin1')]!;
  }

  it('are ignored by default: no second entry, no peers6, counted as ignored', async () => {
    const infoHash = hashOf('bep7-off');
    const body = await announce(
      off,
      { infoHash, port: 7101, left: 0, ipv6: '2001:db8::71', ipv4: 'junk' },
      '192.0.2.71',
    );
    expect(body['failure reason']).toBeUndefined();
    expect(body.peers6).toBeUndefined();
    const v6 = await announce(off, { infoHash, port: 7102 }, '2001:db8::72');
    expect(v6.peers6).toEqual(Buffer.alloc(0));
    expect(await scrape(off, infoHash)).toMatchObject({ complete: 1, incomplete: 1 });
    expect(await off.registry.metrics()).toMatch(
      /^shoal_bep7_address_announces_total\{outcome="ignored"\} 1$/m,
    );
  });

  it('take the family of the address after trusted-proxy resolution; the same-family value is not used', async () => {
    const infoHash = hashOf('bep7-proxy');
    // The proxy is IPv4, the client behind it IPv6: `ipv4=` is the other family.
    const body = await announce(
      on,
      { infoHash, port: 7111, left: 0, ipv4: '198.51.100.11', ipv6: '2001:db8::99' },
      '10.0.0.1',
      { 'x-forwarded-for': '2001:db8::11' },
    );
    expect(body.peers).toEqual(Buffer.alloc(0));
    expect(body.peers6).toEqual(Buffer.alloc(0));
    const v4 = await announce(on, { infoHash, port: 7112 }, '192.0.2.12');
    expect(compactPeers(v4.peers as Buffer, 6)).toEqual(['198.51.100.11:7111']);
    const v6 = await announce(on, { infoHash, port: 7113 }, '2001:db8::13');
    expect(compactPeers(v6.peers6 as Buffer, 18)).toEqual([
      '2001:0db8:0000:0000:0000:0000:0000:0011:7111',
    ]);
    expect(await on.registry.metrics()).toMatch(
      /^shoal_bep7_address_announces_total\{outcome="used"\} 1$/m,
    );
  });

  it('use the port of an [address]:port endpoint, and count a completed download once', async () => {
    const infoHash = hashOf('bep7-done');
    await announce(
      on,
      { infoHash, port: 7121, left: 0, event: 'completed', ipv6: '[2001:db8::21]:7999' },
      '192.0.2.21',
    );
    const v6 = await announce(on, { infoHash, port: 7122 }, '2001:db8::22');
    expect(compactPeers(v6.peers6 as Buffer, 18)).toEqual([
      '2001:0db8:0000:0000:0000:0000:0000:0021:7999',
    ]);
    expect(await scrape(on, infoHash)).toMatchObject({ complete: 2, incomplete: 1, downloaded: 1 });
  });

  it('refuse junk with a coded failure that writes nothing', async () => {
    const infoHash = hashOf('bep7-junk');
    for (const ipv6 of ['2001:db8::zz', '192.0.2.1', '[2001:db8::1]:0', '::']) {
      const body = await announce(on, { infoHash, port: 7131, ipv6 }, '192.0.2.31');
      expect((body['failure reason'] as Buffer).toString()).toMatch(
        /^invalid address parameter: ipv6 \[PROTO_ERR_BAD_ADDRESS_PARAM\]$/,
      );
    }
    // A junk value of the family the client was seen in is refused too.
    const same = await announce(on, { infoHash, port: 7131, ipv4: '1.2.3' }, '192.0.2.31');
    expect((same['failure reason'] as Buffer).toString()).toMatch(
      /ipv4 \[PROTO_ERR_BAD_ADDRESS_PARAM\]/,
    );
    expect(await scrape(on, infoHash)).toMatchObject({ complete: 0, incomplete: 0 });
  });
});

describe('HTTP external ip (BEP 24)', () => {
  let proxied: TestGateway;
  let open: TestGateway;
  let off: TestGateway;
  beforeAll(() => {
    proxied = makeGateway({ TRUSTED_PROXIES: '10.0.0.0/8' });
    open = makeGateway({ ALLOW_IP_PARAM: 'true' });
    off = makeGateway({ HTTP_EXTERNAL_IP: 'false' });
  });
  afterAll(async () => {
    await proxied.close();
    await open.close();
    await off.close();
  });

  it('is the address after trusted-proxy resolution, 4 or 16 bytes, IPv4-mapped as IPv4', async () => {
    const viaProxy = await announce(proxied, { infoHash: hashOf('ext-a'), port: 1 }, '10.1.1.1', {
      'x-forwarded-for': '203.0.113.9',
    });
    expect(viaProxy['external ip']).toEqual(Buffer.from([203, 0, 113, 9]));
    const v6 = await announce(proxied, { infoHash: hashOf('ext-b'), port: 1 }, '2001:db8::7');
    expect(v6['external ip']).toEqual(Buffer.from('20010db8000000000000000000000007', 'hex'));
    const mapped = await announce(
      proxied,
      { infoHash: hashOf('ext-c'), port: 1 },
      '::ffff:198.51.100.4',
    );
    expect(mapped['external ip']).toEqual(Buffer.from([198, 51, 100, 4]));
  });

  it('is never the `ip` parameter, which only says where the peer is stored', async () => {
    const body = await announce(
      open,
      { infoHash: hashOf('ext-d'), port: 1, ip: '203.0.113.66' },
      '198.51.100.8',
    );
    expect(body['external ip']).toEqual(Buffer.from([198, 51, 100, 8]));
  });

  it('is left out with HTTP_EXTERNAL_IP=false, and failures never carry it', async () => {
    const body = await announce(off, { infoHash: hashOf('ext-e'), port: 1 });
    expect(body['external ip']).toBeUndefined();
    expect(body.peers).toEqual(Buffer.alloc(0));
    const refused = await announce(proxied, { infoHash: hashOf('ext-f'), port: 0 });
    expect(refused['external ip']).toBeUndefined();
  });
});

describe('HTTP scrape', () => {
  let t: TestGateway;
  beforeAll(() => {
    t = makeGateway();
  });
  afterAll(() => t.close());

  it('answers several hashes at once, zeros for unknown ones', async () => {
    const a = hashOf('scrape-a');
    const b = hashOf('scrape-b');
    const unknown = hashOf('scrape-none');
    await announce(t, { infoHash: a, port: 1, left: 0 });
    await announce(t, { infoHash: a, port: 2 });
    await announce(t, { infoHash: b, port: 3, event: 'completed', left: 0 });
    const res = await t.gateway.http.inject({
      method: 'GET',
      url: `/scrape?info_hash=${percentBytes(a)}&info_hash=${percentBytes(b)}&info_hash=${percentBytes(unknown)}`,
    });
    expect(res.statusCode).toBe(200);
    const files = bdict(res.rawPayload).files as { [key: string]: Dict };
    expect(files[a.toString('latin1')]).toEqual({
      complete: 1,
      incomplete: 1,
      downloaded: 0,
      downloaders: 1,
    });
    expect(files[b.toString('latin1')]).toEqual({
      complete: 1,
      incomplete: 0,
      downloaded: 1,
      downloaders: 0,
    });
    expect(files[unknown.toString('latin1')]).toEqual({
      complete: 0,
      incomplete: 0,
      downloaded: 0,
      downloaders: 0,
    });
  });
});

describe('HTTP over a real socket', () => {
  let t: TestGateway;
  let base: string;
  beforeAll(async () => {
    t = makeGateway();
    const { httpPort } = await t.gateway.listen();
    base = `http://127.0.0.1:${httpPort}`;
  });
  afterAll(() => t.close());

  it('keeps every byte of a binary info_hash from announce to scrape', async () => {
    const infoHash = Buffer.from(
      '00ff25263d2b3f2320090a0d7f80c3a9e28282ff00112233',
      'hex',
    ).subarray(0, 20);
    const first = await fetch(
      `${base}/announce?${announceQuery({ infoHash, port: 4001, left: 0 })}`,
    );
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('text/plain');
    const second = bdict(
      Buffer.from(
        await (
          await fetch(`${base}/announce?${announceQuery({ infoHash, port: 4002 })}`)
        ).arrayBuffer(),
      ),
    );
    expect(compactPeers(second.peers as Buffer, 6)).toEqual(['127.0.0.1:4001']);

    const scrape = bdict(
      Buffer.from(
        await (await fetch(`${base}/scrape?info_hash=${percentBytes(infoHash)}`)).arrayBuffer(),
      ),
    );
    const files = scrape.files as { [key: string]: Dict };
    expect(Object.keys(files).map((k) => Buffer.from(k, 'latin1'))).toEqual([infoHash]);
    expect(files[infoHash.toString('latin1')]).toEqual({
      complete: 1,
      incomplete: 1,
      downloaded: 0,
      downloaders: 1,
    });
  });

  it('counts an event=paused leecher as a BEP 21 partial seed: incomplete, not a downloader', async () => {
    const infoHash = hashOf('partial-seed');
    const get = async (path: string) =>
      bdict(Buffer.from(await (await fetch(`${base}${path}`)).arrayBuffer()));
    await get(`/announce?${announceQuery({ infoHash, port: 4101, left: 0 })}`);
    await get(`/announce?${announceQuery({ infoHash, port: 4102 })}`);
    const paused = await get(
      `/announce?${announceQuery({ infoHash, port: 4103, left: 500 })}&event=paused`,
    );
    // A partial seed is given the downloading leecher only, never the seeder.
    expect(compactPeers(paused.peers as Buffer, 6)).toEqual(['127.0.0.1:4102']);
    expect(paused).toMatchObject({ complete: 1, incomplete: 2 });
    const scrape = await get(`/scrape?info_hash=${percentBytes(infoHash)}`);
    expect((scrape.files as { [key: string]: Dict })[infoHash.toString('latin1')]).toEqual({
      complete: 1,
      incomplete: 2,
      downloaded: 0,
      downloaders: 1,
    });
    expect(await t.registry.metrics()).toMatch(/^shoal_partial_seed_announces_total 1$/m);
  });

  it('tells the client the address it came from as BEP 24 `external ip`', async () => {
    const res = await fetch(
      `${base}/announce?${announceQuery({ infoHash: hashOf('external-ip'), port: 4003 })}`,
    );
    const body = bdict(Buffer.from(await res.arrayBuffer()));
    expect(body['external ip']).toEqual(Buffer.from([127, 0, 0, 1]));
  });

  it('answers a failure over the wire as HTTP 200 with a bencoded body', async () => {
    const res = await fetch(`${base}/announce?port=1`);
    expect(res.status).toBe(200);
    const body = bdict(Buffer.from(await res.arrayBuffer()));
    expect((body['failure reason'] as Buffer).toString()).toMatch(/\[PROTO_ERR_[A-Z_]+\]/);
  });
});

describe('HTTP with a failing store', () => {
  const failing = unavailableStorage();

  let t: TestGateway;
  beforeAll(() => {
    t = makeGateway({}, { storage: failing });
  });
  afterAll(() => t.close());

  it("gives the store's failure reason with a BEP 31 retry hint, and counts it as failed", async () => {
    const body = await announce(t, { infoHash: hashOf('down'), port: 1 });
    expect((body['failure reason'] as Buffer).toString()).toBe(
      'tracker storage unavailable, retry later [STORE_ERR_UNAVAILABLE]',
    );
    expect(body['retry in']).toBe(5); // BEP 31 counts minutes: RETRY_LATER_INTERVAL_SECONDS 300
    expect(body['interval']).toBe(300);
    const metrics = await t.registry.metrics();
    expect(metrics).toMatch(
      /shoal_requests_total\{protocol="http",action="announce",outcome="failed"\} 1/,
    );
    expect(metrics).toMatch(
      /shoal_request_errors_total\{protocol="http",code="STORE_ERR_UNAVAILABLE"\} 1/,
    );
  });

  it('reports not ready on /readyz while the store is unreachable', async () => {
    await t.gateway.listen();
    const res = await t.gateway.admin.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'not ready', code: 'STORE_ERR_UNAVAILABLE' });
  });
});

describe('readiness after the store has answered once', () => {
  const down = new StoreError('STORE_ERR_UNAVAILABLE', 'connection refused');
  let up = true;
  const flaky: GatewayStorage = {
    driver: 'flaky',
    announce: () => Promise.reject(down),
    scrape: () => Promise.reject(down),
    collectGarbage: () => Promise.reject(down),
    stats: () => Promise.reject(down),
    ping: () => (up ? Promise.resolve() : Promise.reject(down)),
    close: () => Promise.resolve(),
  };
  let t: TestGateway;
  beforeAll(async () => {
    t = makeGateway({}, { storage: flaky });
    await t.gateway.listen();
  });
  afterAll(() => t.close());

  it('stays ready through a later outage, saying so, so clients keep getting "retry later"', async () => {
    const readyz = async (): Promise<{ statusCode: number; body: unknown }> => {
      const res = await t.gateway.admin.inject({ method: 'GET', url: '/readyz' });
      return { statusCode: res.statusCode, body: res.json() };
    };
    const ready = {
      statusCode: 200,
      body: { status: 'ready', checks: { storage: { ok: true, driver: 'flaky' } } },
    };
    expect(await readyz()).toEqual(ready);
    up = false;
    expect(await readyz()).toEqual({
      statusCode: 200,
      body: {
        status: 'degraded',
        code: 'STORE_ERR_UNAVAILABLE',
        message: 'storage unavailable (STORE_ERR_UNAVAILABLE), answering retry later',
        checks: { storage: { ok: false, driver: 'flaky', code: 'STORE_ERR_UNAVAILABLE' } },
      },
    });
    up = true;
    expect(await readyz()).toEqual(ready);
  });
});
