// The policy chain (docs/policy.md "The chain in the gateway")
// through the real gateway: HTTP on a real socket (and fastify inject where a
// test needs many client addresses), UDP on real dgram sockets, the policy
// data written through createPolicyRepository on the gateway's own memory
// store, or through storage-api's admin API for the remote driver.
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPolicyRepository, type PolicyRepository, type PolicySnapshot } from '@shoal/policy';
import { createMemoryStore, type MemoryStore } from '@shoal/storage/memory';
import { buildStorageApi, loadStorageApiConfig, type StorageApi } from '@shoal/storage-api';
import { loadGatewayConfig } from './config.ts';
import { createGatewayMetrics } from './metrics.ts';
import { createPolicyCache } from './policy/cache.ts';
import { createRemotePolicySource, type PolicySource } from './policy/source.ts';
import { createStorage } from './storage.ts';
import { fitErrorText } from './udp.ts';
import {
  UdpClient,
  announcePacket,
  announceQuery,
  bdict,
  connectPacket,
  hashOf,
  makeGateway,
  percentBytes,
  scrapePacket,
  udpConnect,
  type AnnounceParams,
  type BValue,
  type TestGateway,
} from '../test/support.ts';

type Dict = { [key: string]: BValue };

const SECRET = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
const T0 = Date.parse('2025-03-01T00:00:00Z');
const LOOPBACK = '127.0.0.1';

interface Harness {
  t: TestGateway;
  memory: MemoryStore;
  repo: PolicyRepository;
  clock: { now: number };
  http: number;
  udp: number;
  admin: number;
  client: UdpClient;
  close(): Promise<void>;
}

const open: Harness[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.close()));
});

/** A gateway on the memory store, its policy seeded through the repository, first snapshot loaded. */
async function start(
  env: Record<string, string>,
  options: {
    seed?: (repo: PolicyRepository) => Promise<unknown>;
    policySource?: PolicySource;
  } = {},
): Promise<Harness> {
  const clock = { now: T0 };
  const now = () => clock.now;
  const memory = createMemoryStore({ peerLifetimeSeconds: 1860, clock: now });
  const repo = createPolicyRepository(memory, now);
  await options.seed?.(repo);
  const t = makeGateway(
    { UDP_CONNECTION_ID_SECRET: SECRET, POLICY_REFRESH_SECONDS: '3600', ...env },
    {
      storage: memory,
      clock: now,
      ...(options.policySource === undefined ? {} : { policySource: options.policySource }),
    },
  );
  const ports = await t.gateway.listen();
  // listen() started the first load; refresh() joins it (a test's own source is left alone).
  if (options.policySource === undefined) await t.gateway.policy?.refresh();
  const client = new UdpClient('udp4');
  await client.bind(LOOPBACK);
  const h: Harness = {
    t,
    memory,
    repo,
    clock,
    http: ports.httpPort!,
    udp: ports.udpPort!,
    admin: ports.adminPort,
    client,
    close: async () => {
      await client.close();
      await t.close();
    },
  };
  open.push(h);
  return h;
}

async function get(port: number, path: string): Promise<Dict> {
  const res = await fetch(`http://${LOOPBACK}:${port}${path}`);
  expect(res.status).toBe(200);
  return bdict(Buffer.from(await res.arrayBuffer()));
}

/** HTTP announce on the real socket; `route` is the path before the query. */
function httpAnnounce(h: Harness, p: AnnounceParams, route = '/announce', extra = '') {
  return get(h.http, `${route}?${announceQuery(p)}${extra}`);
}

async function injectAnnounce(h: Harness, p: AnnounceParams, remoteAddress: string) {
  const res = await h.t.gateway.http.inject({
    method: 'GET',
    url: `/announce?${announceQuery(p)}`,
    remoteAddress,
  });
  return bdict(res.rawPayload);
}

function failure(body: Dict): string | undefined {
  return (body['failure reason'] as Buffer | undefined)?.toString();
}

/** 'ok' for an announce/scrape/connect answer, else the error action's text. */
function udpOutcome(answer: Buffer | undefined): string {
  expect(answer).toBeDefined();
  const action = answer!.readUInt32BE(0);
  return action === 3 ? answer!.subarray(8).toString() : 'ok';
}

async function udpAnnounce(
  h: Harness,
  p: Parameters<typeof announcePacket>[2],
  id?: Buffer,
): Promise<Buffer | undefined> {
  const connectionId = id ?? (await udpConnect(h.client, h.udp, LOOPBACK));
  const tid = h.client.tid();
  return h.client.request(announcePacket(connectionId, tid, p), tid, h.udp, LOOPBACK);
}

async function udpScrape(h: Harness, hashes: Buffer[], id?: Buffer) {
  const connectionId = id ?? (await udpConnect(h.client, h.udp, LOOPBACK));
  const tid = h.client.tid();
  return h.client.request(scrapePacket(connectionId, tid, hashes), tid, h.udp, LOOPBACK);
}

/** A peer straight into the store, so a scrape has something to hide. */
async function seedPeer(h: Harness, infoHash: Buffer): Promise<void> {
  await h.memory.announce({
    infoHash,
    peerId: Buffer.from('-XX0001-000000000000'),
    family: 4,
    address: Buffer.from([192, 0, 2, 1]),
    port: 6881,
    seeder: true,
    event: 'started',
    numWant: 0,
    withPeerIds: false,
  });
}

const hex = (b: Buffer) => b.toString('hex');

describe('torrent approval', () => {
  it('deny: refuses listed torrents over HTTP and UDP, and a scrape answers zeros for them', async () => {
    const banned = hashOf('banned');
    const fine = hashOf('fine');
    const h = await start(
      { TORRENT_APPROVAL: 'deny' },
      { seed: (repo) => repo.addApproval('torrents', 'deny', hex(banned), 'dmca') },
    );
    expect(failure(await httpAnnounce(h, { infoHash: banned, port: 6881 }))).toBe(
      'torrent is banned on this tracker [POLICY_ERR_TORRENT_DENIED]',
    );
    expect(failure(await httpAnnounce(h, { infoHash: fine, port: 6881 }))).toBeUndefined();
    expect(udpOutcome(await udpAnnounce(h, { infoHash: banned, port: 6882 }))).toBe(
      'torrent is banned on this tracker [POLICY_ERR_TORRENT_DENIED]',
    );
    expect(udpOutcome(await udpAnnounce(h, { infoHash: fine, port: 6882 }))).toBe('ok');

    await seedPeer(h, banned);
    const scrape = await get(
      h.http,
      `/scrape?info_hash=${percentBytes(banned)}&info_hash=${percentBytes(fine)}`,
    );
    const files = scrape.files as { [hash: string]: Dict };
    expect(files[banned.toString('latin1')]).toEqual({
      complete: 0,
      incomplete: 0,
      downloaded: 0,
      downloaders: 0,
    });
    expect(files[fine.toString('latin1')]?.incomplete).toBe(2);
    const udp = await udpScrape(h, [banned, fine]);
    expect(udp?.readUInt32BE(0)).toBe(2);
    expect([...Array(6).keys()].map((i) => udp!.readUInt32BE(8 + 4 * i))).toEqual([
      0, 0, 0, 0, 0, 2,
    ]);

    expect(await h.t.registry.metrics()).toMatch(
      /shoal_policy_refusals_total\{code="POLICY_ERR_TORRENT_DENIED"\} 2/,
    );
  });

  it('allow: only listed torrents are tracked; unlisted ones scrape as zeros', async () => {
    const listed = hashOf('listed');
    const other = hashOf('unlisted');
    const h = await start(
      { TORRENT_APPROVAL: 'allow' },
      { seed: (repo) => repo.addApproval('torrents', 'allow', hex(listed)) },
    );
    expect(failure(await httpAnnounce(h, { infoHash: listed, port: 6881 }))).toBeUndefined();
    expect(failure(await httpAnnounce(h, { infoHash: other, port: 6881 }))).toBe(
      'torrent not registered with this tracker [POLICY_ERR_TORRENT_NOT_ALLOWED]',
    );
    expect(udpOutcome(await udpAnnounce(h, { infoHash: other, port: 6882 }))).toBe(
      'torrent not registered with this tracker [POLICY_ERR_TORRENT_NOT_ALLOWED]',
    );
    expect(udpOutcome(await udpAnnounce(h, { infoHash: listed, port: 6882 }))).toBe('ok');
    await seedPeer(h, other);
    const udp = await udpScrape(h, [other, listed]);
    expect([...Array(6).keys()].map((i) => udp!.readUInt32BE(8 + 4 * i))).toEqual([
      0, 0, 0, 0, 0, 2,
    ]);
  });
});

describe('client approval', () => {
  const qbit = Buffer.from('-qB4650-abcdefghijkl');
  const oldQbit = Buffer.from('-qB3350-abcdefghijkl');
  const shoal = Buffer.from('-SH0001-000000000001');

  it('deny: refuses peer_ids starting with a listed prefix (HTTP and UDP)', async () => {
    const h = await start(
      { CLIENT_APPROVAL: 'deny' },
      { seed: (repo) => repo.addApproval('clients', 'deny', '-qB3') },
    );
    const infoHash = hashOf('clients-deny');
    expect(failure(await httpAnnounce(h, { infoHash, port: 1, peerId: oldQbit }))).toBe(
      'client banned on this tracker [POLICY_ERR_CLIENT_DENIED]',
    );
    expect(failure(await httpAnnounce(h, { infoHash, port: 2, peerId: qbit }))).toBeUndefined();
    expect(udpOutcome(await udpAnnounce(h, { infoHash, port: 3, peerId: oldQbit }))).toBe(
      'client banned on this tracker [POLICY_ERR_CLIENT_DENIED]',
    );
    expect(udpOutcome(await udpAnnounce(h, { infoHash, port: 4, peerId: shoal }))).toBe('ok');
  });

  it('allow: only listed prefixes pass (HTTP and UDP)', async () => {
    const h = await start(
      { CLIENT_APPROVAL: 'allow' },
      {
        seed: (repo) =>
          repo.importApproval('clients', 'allow', [{ value: '-qB4' }, { value: '-TR' }]),
      },
    );
    const infoHash = hashOf('clients-allow');
    expect(failure(await httpAnnounce(h, { infoHash, port: 1, peerId: qbit }))).toBeUndefined();
    expect(failure(await httpAnnounce(h, { infoHash, port: 2, peerId: oldQbit }))).toBe(
      'client not approved on this tracker [POLICY_ERR_CLIENT_NOT_ALLOWED]',
    );
    expect(udpOutcome(await udpAnnounce(h, { infoHash, port: 3, peerId: qbit }))).toBe('ok');
    expect(udpOutcome(await udpAnnounce(h, { infoHash, port: 4, peerId: shoal }))).toBe(
      'client not approved on this tracker [POLICY_ERR_CLIENT_NOT_ALLOWED]',
    );
  });
});

describe('private tracker: passkeys', () => {
  const forever = 'alice-passkey-0001';
  const shortLived = 'bob-passkey-0002';
  let h: Harness;
  const infoHash = hashOf('private');

  async function privateTracker(): Promise<Harness> {
    return start(
      { PASSKEY_REQUIRED: 'true' },
      {
        seed: async (repo) => {
          await repo.createPasskey({ passkey: forever, user: 'alice' });
          await repo.createPasskey({ passkey: shortLived, expiresAt: T0 + 60_000 });
        },
      },
    );
  }

  it('HTTP: /announce/<passkey> and /scrape/<passkey>; missing, unknown and expired are refused', async () => {
    h = await privateTracker();
    expect(failure(await httpAnnounce(h, { infoHash, port: 1 }))).toBe(
      'passkey required: announce at /announce/<passkey> [POLICY_ERR_PASSKEY_MISSING]',
    );
    expect(failure(await httpAnnounce(h, { infoHash, port: 1 }, '/announce/not-a-known-key'))).toBe(
      'unknown passkey [POLICY_ERR_PASSKEY_UNKNOWN]',
    );
    const ok = await httpAnnounce(h, { infoHash, port: 1 }, `/announce/${forever}`);
    expect(failure(ok)).toBeUndefined();
    expect(ok.incomplete).toBe(1);
    expect(
      failure(await httpAnnounce(h, { infoHash, port: 2 }, `/announce/${shortLived}`)),
    ).toBeUndefined();

    const scrapeQuery = `info_hash=${percentBytes(infoHash)}`;
    const scraped = await get(h.http, `/scrape/${forever}?${scrapeQuery}`);
    expect((scraped.files as { [k: string]: Dict })[infoHash.toString('latin1')]?.incomplete).toBe(
      2,
    );
    expect(failure(await get(h.http, `/scrape?${scrapeQuery}`))).toBe(
      'passkey required: announce at /announce/<passkey> [POLICY_ERR_PASSKEY_MISSING]',
    );

    // Expiry is checked against the cached expiresAt: no refresh happens here.
    const refreshes = await refreshCount(h);
    h.clock.now = T0 + 60_001;
    expect(failure(await httpAnnounce(h, { infoHash, port: 2 }, `/announce/${shortLived}`))).toBe(
      'passkey expired [POLICY_ERR_PASSKEY_EXPIRED]',
    );
    expect(
      failure(await httpAnnounce(h, { infoHash, port: 1 }, `/announce/${forever}`)),
    ).toBeUndefined();
    expect(await refreshCount(h)).toBe(refreshes);
  });

  it('UDP: the passkey rides in BEP 41 URL data; scrapes (no URL data) are refused', async () => {
    h = await privateTracker();
    expect(udpOutcome(await udpAnnounce(h, { infoHash, port: 1 }))).toBe(
      'passkey required: announce at /announce/<passkey> [POLICY_ERR_PASSKEY_MISSING]',
    );
    expect(
      udpOutcome(await udpAnnounce(h, { infoHash, port: 1, urlData: '/announce/nobody-at-all' })),
    ).toBe('unknown passkey [POLICY_ERR_PASSKEY_UNKNOWN]');
    expect(
      udpOutcome(await udpAnnounce(h, { infoHash, port: 1, urlData: `/announce/${forever}` })),
    ).toBe('ok');
    expect(
      udpOutcome(
        await udpAnnounce(h, { infoHash, port: 2, urlData: `/announce/${shortLived}?x=1` }),
      ),
    ).toBe('ok');
    expect(udpOutcome(await udpScrape(h, [infoHash]))).toBe(
      'passkey required: announce at /announce/<passkey> [POLICY_ERR_PASSKEY_MISSING]',
    );
    h.clock.now = T0 + 60_000;
    expect(
      udpOutcome(await udpAnnounce(h, { infoHash, port: 2, urlData: `/announce/${shortLived}` })),
    ).toBe('passkey expired [POLICY_ERR_PASSKEY_EXPIRED]');
  });

  it('ignores a passkey in the path when PASSKEY_REQUIRED is false', async () => {
    h = await start({});
    expect(h.t.gateway.policy).toBeUndefined();
    expect(
      failure(await httpAnnounce(h, { infoHash, port: 1 }, '/announce/whatever-key')),
    ).toBeUndefined();
    expect(
      udpOutcome(await udpAnnounce(h, { infoHash, port: 2, urlData: '/announce/whatever' })),
    ).toBe('ok');
  });
});

async function refreshCount(h: Harness): Promise<number> {
  const text = await h.t.registry.metrics();
  let n = 0;
  for (const m of text.matchAll(/^shoal_policy_refresh_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

describe('JWT', () => {
  const issuer = 'https://auth.example';
  let privateKey: CryptoKey;
  let jwks: string;
  const infoHash = hashOf('jwt-torrent');

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    jwks = JSON.stringify({
      keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }],
    });
  });

  function token(claims: { infohash?: string; exp?: number; iss?: string }): Promise<string> {
    return new SignJWT({ infohash: claims.infohash ?? hex(infoHash) })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(claims.iss ?? issuer)
      .setAudience('shoal')
      .setExpirationTime(claims.exp ?? Math.floor(T0 / 1000) + 3600)
      .sign(privateKey);
  }

  it('HTTP `jwt` parameter: valid passes; wrong infohash, expired, wrong issuer and missing are refused', async () => {
    const h = await start({
      JWT_REQUIRED: 'true',
      JWT_ISSUER: issuer,
      JWT_AUDIENCE: 'shoal',
      JWT_JWKS: jwks,
    });
    const announceWith = async (jwt: string | undefined, port: number) =>
      failure(
        await httpAnnounce(
          h,
          { infoHash, port },
          '/announce',
          jwt === undefined ? '' : `&jwt=${jwt}`,
        ),
      );
    expect(await announceWith(await token({}), 1)).toBeUndefined();
    expect(await announceWith(await token({ infohash: hex(hashOf('another')) }), 2)).toBe(
      'invalid jwt [POLICY_ERR_JWT_INVALID]',
    );
    expect(await announceWith(await token({ exp: Math.floor(T0 / 1000) - 10 }), 3)).toBe(
      'invalid jwt [POLICY_ERR_JWT_INVALID]',
    );
    expect(await announceWith(await token({ iss: 'https://evil.example' }), 4)).toBe(
      'invalid jwt [POLICY_ERR_JWT_INVALID]',
    );
    expect(await announceWith(undefined, 5)).toBe(
      'jwt parameter required [POLICY_ERR_JWT_MISSING]',
    );
    // A token valid now stops being valid at its exp on the gateway's clock (cached or not).
    const valid = await token({});
    expect(await announceWith(valid, 6)).toBeUndefined();
    h.clock.now = T0 + 3601_000;
    expect(await announceWith(valid, 6)).toBe('invalid jwt [POLICY_ERR_JWT_INVALID]');
  });

  it('UDP: `?jwt=` in BEP 41 URL data, several options long, after an optional passkey', async () => {
    const h = await start(
      { JWT_REQUIRED: 'true', JWT_ISSUER: issuer, JWT_JWKS: jwks, PASSKEY_REQUIRED: 'true' },
      { seed: (repo) => repo.createPasskey({ passkey: 'carol-passkey-03' }) },
    );
    const good = await token({});
    expect(good.length).toBeGreaterThan(255);
    const id = await udpConnect(h.client, h.udp, LOOPBACK);
    expect(
      udpOutcome(
        await udpAnnounce(
          h,
          { infoHash, port: 1, urlData: `/announce/carol-passkey-03?jwt=${good}` },
          id,
        ),
      ),
    ).toBe('ok');
    expect(
      udpOutcome(
        await udpAnnounce(h, { infoHash, port: 2, urlData: '/announce/carol-passkey-03' }, id),
      ),
    ).toBe('jwt parameter required [POLICY_ERR_JWT_MISSING]');
    const wrong = await token({ infohash: hex(hashOf('other')) });
    expect(
      udpOutcome(
        await udpAnnounce(
          h,
          { infoHash, port: 3, urlData: `/announce/carol-passkey-03?jwt=${wrong}` },
          id,
        ),
      ),
    ).toBe('invalid jwt [POLICY_ERR_JWT_INVALID]');
    const expired = await token({ exp: Math.floor(T0 / 1000) - 1 });
    expect(
      udpOutcome(
        await udpAnnounce(
          h,
          { infoHash, port: 4, urlData: `/announce/carol-passkey-03?jwt=${expired}` },
          id,
        ),
      ),
    ).toBe('invalid jwt [POLICY_ERR_JWT_INVALID]');
    // The passkey step comes first.
    expect(
      udpOutcome(await udpAnnounce(h, { infoHash, port: 5, urlData: `/announce?jwt=${good}` }, id)),
    ).toBe('passkey required: announce at /announce/<passkey> [POLICY_ERR_PASSKEY_MISSING]');
  });

  it('fetches the key set from JWT_JWKS_URL', async () => {
    const server: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(jwks);
    });
    await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const h = await start({
        JWT_REQUIRED: 'true',
        JWT_ISSUER: issuer,
        JWT_JWKS_URL: `http://${LOOPBACK}:${port}/.well-known/jwks.json`,
      });
      const ok = await httpAnnounce(
        h,
        { infoHash, port: 1 },
        '/announce',
        `&jwt=${await token({})}`,
      );
      expect(failure(ok)).toBeUndefined();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('interval jitter', () => {
  it('HTTP: interval varies over [base, base + N]; min interval unchanged', async () => {
    const h = await start({ ANNOUNCE_INTERVAL_JITTER_SECONDS: '5' });
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const body = await injectAnnounce(
        h,
        { infoHash: hashOf('jitter'), port: 1 + (i % 50) },
        LOOPBACK,
      );
      seen.add(body.interval as number);
      expect(body['min interval']).toBe(900);
    }
    // 300 draws miss one of 6 values with probability ~1e-23.
    expect([...seen].sort()).toEqual([1800, 1801, 1802, 1803, 1804, 1805]);
  });

  it('UDP: interval varies over [base, base + N]', async () => {
    const h = await start({ ANNOUNCE_INTERVAL_JITTER_SECONDS: '2' });
    const id = await udpConnect(h.client, h.udp, LOOPBACK);
    const seen = new Set<number>();
    for (let i = 0; i < 60; i++) {
      const answer = await udpAnnounce(h, { infoHash: hashOf('jitter-udp'), port: 1 + i }, id);
      seen.add(answer!.readUInt32BE(8));
    }
    expect([...seen].sort()).toEqual([1800, 1801, 1802]);
  });

  it('off: always the configured interval', async () => {
    const h = await start({});
    const id = await udpConnect(h.client, h.udp, LOOPBACK);
    for (let i = 0; i < 30; i++) {
      expect(
        (await injectAnnounce(h, { infoHash: hashOf('steady'), port: 1 + i }, LOOPBACK)).interval,
      ).toBe(1800);
      expect(
        (await udpAnnounce(h, { infoHash: hashOf('steady'), port: 1 + i }, id))!.readUInt32BE(8),
      ).toBe(1800);
    }
  });
});

describe('rate limits', () => {
  const LIMITED = 'too many requests from your address, slow down [POLICY_ERR_RATE_LIMITED]';

  it('HTTP: a burst per address, then refused until tokens refill on the clock', async () => {
    const h = await start({ RATE_LIMIT_ANNOUNCES_PER_SECOND: '1', RATE_LIMIT_ANNOUNCE_BURST: '3' });
    const p = { infoHash: hashOf('busy'), port: 1 };
    for (let i = 0; i < 3; i++) expect(failure(await httpAnnounce(h, p))).toBeUndefined();
    expect(failure(await httpAnnounce(h, p))).toBe(LIMITED);
    // Scrapes draw on the same bucket.
    expect(failure(await get(h.http, `/scrape?info_hash=${percentBytes(p.infoHash)}`))).toBe(
      LIMITED,
    );
    // Another address has its own bucket; an IPv6 /64 is one client.
    expect(failure(await injectAnnounce(h, p, '192.0.2.7'))).toBeUndefined();
    for (let i = 0; i < 3; i++)
      expect(failure(await injectAnnounce(h, p, `2001:db8::${i + 1}`))).toBeUndefined();
    expect(failure(await injectAnnounce(h, p, '2001:db8::ffff'))).toBe(LIMITED);

    h.clock.now += 1000;
    expect(failure(await httpAnnounce(h, p))).toBeUndefined();
    expect(failure(await httpAnnounce(h, p))).toBe(LIMITED);
    expect(await h.t.registry.metrics()).toMatch(
      /shoal_policy_refusals_total\{code="POLICY_ERR_RATE_LIMITED"\} 4/,
    );
  });

  it('UDP: connects are limited before a connection id is issued', async () => {
    const h = await start({ RATE_LIMIT_CONNECTS_PER_SECOND: '1', RATE_LIMIT_CONNECT_BURST: '2' });
    const connect = async () => {
      const tid = h.client.tid();
      return h.client.request(connectPacket(tid), tid, h.udp, LOOPBACK);
    };
    expect((await connect())?.readUInt32BE(0)).toBe(0);
    expect((await connect())?.readUInt32BE(0)).toBe(0);
    const refused = await connect();
    // A connect proves no address: the refusal is no larger than its 16 bytes (docs/limits.md).
    expect(refused?.length).toBeLessThanOrEqual(16);
    expect(udpOutcome(refused)).toBe(fitErrorText(LIMITED, 8));
    h.clock.now += 1000;
    expect((await connect())?.readUInt32BE(0)).toBe(0);
    expect(await h.t.registry.metrics()).toMatch(
      /shoal_requests_total\{protocol="udp",action="connect",outcome="rejected"\} 1/,
    );
  });

  it('UDP: announces and scrapes share a bucket per address', async () => {
    const h = await start({ RATE_LIMIT_ANNOUNCES_PER_SECOND: '2', RATE_LIMIT_ANNOUNCE_BURST: '2' });
    const id = await udpConnect(h.client, h.udp, LOOPBACK);
    const infoHash = hashOf('udp-busy');
    expect(udpOutcome(await udpAnnounce(h, { infoHash, port: 1 }, id))).toBe('ok');
    expect(udpOutcome(await udpScrape(h, [infoHash], id))).toBe('ok');
    expect(udpOutcome(await udpAnnounce(h, { infoHash, port: 1 }, id))).toBe(LIMITED);
    expect(udpOutcome(await udpScrape(h, [infoHash], id))).toBe(LIMITED);
    h.clock.now += 500;
    expect(udpOutcome(await udpAnnounce(h, { infoHash, port: 1 }, id))).toBe('ok');
    expect(udpOutcome(await udpAnnounce(h, { infoHash, port: 1 }, id))).toBe(LIMITED);
  });
});

describe('policy loading and refresh', () => {
  it('is not ready and answers POLICY_ERR_NOT_LOADED until the first load; a failed refresh keeps the snapshot', async () => {
    const banned = hashOf('banned-early');
    let failing = true;
    let loads = 0;
    const snapshot: PolicySnapshot = {
      revision: 'r1',
      torrents: { allow: [], deny: [hex(banned)] },
      clients: { allow: [], deny: [] },
      passkeys: [],
    };
    const source: PolicySource = {
      load: () => {
        loads++;
        return failing ? Promise.reject(new Error('storage down')) : Promise.resolve(snapshot);
      },
      close: () => Promise.resolve(),
    };
    const h = await start({ TORRENT_APPROVAL: 'deny' }, { policySource: source });
    expect(loads).toBe(1);
    const ready = await fetch(`http://${LOOPBACK}:${h.admin}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({
      status: 'not ready',
      code: 'POLICY_ERR_NOT_LOADED',
      message: 'approval lists and passkeys not loaded yet',
    });
    const early = await httpAnnounce(h, { infoHash: hashOf('any'), port: 1 });
    expect(failure(early)).toBe('tracker starting, retry later [POLICY_ERR_NOT_LOADED]');
    expect(early['retry in']).toBe(5); // BEP 31 minutes of RETRY_LATER_INTERVAL_SECONDS
    expect(early['interval']).toBe(300);
    expect(failure(await get(h.http, `/scrape?info_hash=${percentBytes(banned)}`))).toBe(
      'tracker starting, retry later [POLICY_ERR_NOT_LOADED]',
    );
    expect(udpOutcome(await udpAnnounce(h, { infoHash: hashOf('any'), port: 1 }))).toBe(
      'tracker starting, retry later [POLICY_ERR_NOT_LOADED]',
    );

    failing = false;
    expect(await h.t.gateway.policy?.refresh()).toBe('changed');
    expect((await fetch(`http://${LOOPBACK}:${h.admin}/readyz`)).status).toBe(200);
    expect(failure(await httpAnnounce(h, { infoHash: hashOf('any'), port: 1 }))).toBeUndefined();

    failing = true;
    expect(await h.t.gateway.policy?.refresh()).toBe('failed');
    expect((await fetch(`http://${LOOPBACK}:${h.admin}/readyz`)).status).toBe(200);
    expect(failure(await httpAnnounce(h, { infoHash: banned, port: 1 }))).toBe(
      'torrent is banned on this tracker [POLICY_ERR_TORRENT_DENIED]',
    );
    const metrics = await h.t.registry.metrics();
    expect(metrics).toMatch(/shoal_policy_refresh_total\{outcome="failed"\} 2/);
    expect(metrics).toMatch(/shoal_policy_refresh_total\{outcome="changed"\} 1/);
    expect(metrics).toMatch(/shoal_policy_entries\{list="torrents"\} 1/);
  });

  it('embedded store: a change made through the repository is enforced after the next refresh', async () => {
    const h = await start(
      { TORRENT_APPROVAL: 'deny', PASSKEY_REQUIRED: 'true' },
      {
        seed: (repo) => repo.createPasskey({ passkey: 'dave-passkey-04' }),
      },
    );
    const route = '/announce/dave-passkey-04';
    const target = hashOf('soon-banned');
    expect(failure(await httpAnnounce(h, { infoHash: target, port: 1 }, route))).toBeUndefined();
    await h.repo.addApproval('torrents', 'deny', hex(target));
    await h.repo.removePasskey('dave-passkey-04');
    await h.repo.createPasskey({ passkey: 'erin-passkey-05' });
    // Cached until the refresh.
    expect(failure(await httpAnnounce(h, { infoHash: target, port: 1 }, route))).toBeUndefined();
    h.clock.now += 5000;
    expect(await h.t.registry.metrics()).toMatch(/shoal_policy_revision_age_seconds 5\n/);
    expect(await h.t.gateway.policy?.refresh()).toBe('changed');
    expect(await h.t.registry.metrics()).toMatch(/shoal_policy_revision_age_seconds 0\n/);
    expect(failure(await httpAnnounce(h, { infoHash: target, port: 1 }, route))).toBe(
      'unknown passkey [POLICY_ERR_PASSKEY_UNKNOWN]',
    );
    expect(
      failure(await httpAnnounce(h, { infoHash: target, port: 1 }, '/announce/erin-passkey-05')),
    ).toBe('torrent is banned on this tracker [POLICY_ERR_TORRENT_DENIED]');
    expect(await h.t.gateway.policy?.refresh()).toBe('unchanged');
    const metrics = await h.t.registry.metrics();
    expect(metrics).toMatch(/shoal_policy_entries\{list="passkeys"\} 1/);
    expect(metrics).toMatch(/shoal_policy_entries\{list="torrents"\} 1/);
  });

  it('refreshes on its own every POLICY_REFRESH_SECONDS', async () => {
    const h = await start({ TORRENT_APPROVAL: 'deny', POLICY_REFRESH_SECONDS: '1' });
    const target = hashOf('timer-banned');
    await h.repo.addApproval('torrents', 'deny', hex(target));
    let refused: string | undefined;
    // Bounded: the timer fires within 1 s; allow 4 s.
    for (let i = 0; i < 40 && refused === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100));
      refused = failure(await injectAnnounce(h, { infoHash: target, port: 1 }, LOOPBACK));
    }
    expect(refused).toBe('torrent is banned on this tracker [POLICY_ERR_TORRENT_DENIED]');
  });
});

describe('remote driver: GET /v1/policy on a real storage-api', () => {
  const TOKEN = 'gateway-token-0123456789';
  const ADMIN_TOKEN = 'admin-token-0123456789ab';
  let api: StorageApi;
  let apiUrl: string;
  let gw: TestGateway;

  beforeAll(async () => {
    api = buildStorageApi({
      config: loadStorageApiConfig({
        env: {
          HOST: LOOPBACK,
          PORT: '0',
          ADMIN_HOST: LOOPBACK,
          ADMIN_PORT: '0',
          STORAGE_API_TOKEN: TOKEN,
          STORAGE_API_ADMIN_TOKEN: ADMIN_TOKEN,
          PEER_STORE_DRIVER: 'memory',
          DATA_STORE_DRIVER: 'memory',
        },
        argv: [],
      }),
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
    });
    apiUrl = `http://${LOOPBACK}:${(await api.listen()).port}`;
  });
  afterAll(async () => {
    await gw.close();
    await api.close();
  });

  it('loads before ready, then picks up an admin API change on refresh (304 while unchanged)', async () => {
    const target = hashOf('remote-banned');
    const admin = (method: string, path: string) =>
      fetch(`${apiUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(method === 'PUT' ? { 'content-type': 'application/json' } : {}),
        },
        body: method === 'PUT' ? '{}' : null,
      });
    const config = loadGatewayConfig({
      env: {
        HOST: LOOPBACK,
        PORT: '0',
        ADMIN_HOST: LOOPBACK,
        ADMIN_PORT: '0',
        STORAGE_DRIVER: 'remote',
        STORAGE_API_URL: apiUrl,
        STORAGE_API_TOKEN: TOKEN,
        TORRENT_APPROVAL: 'deny',
        POLICY_REFRESH_SECONDS: '3600',
      },
      argv: [],
    });
    const storage = await createStorage(config, pino({ level: 'silent' }));
    gw = makeGateway(
      {
        STORAGE_DRIVER: 'remote',
        STORAGE_API_URL: apiUrl,
        STORAGE_API_TOKEN: TOKEN,
        TORRENT_APPROVAL: 'deny',
        POLICY_REFRESH_SECONDS: '3600',
      },
      { storage: storage.store },
    );
    const { httpPort } = await gw.gateway.listen();
    expect(await gw.gateway.policy?.refresh()).toBe('changed');
    const announce = async () =>
      failure(await get(httpPort!, `/announce?${announceQuery({ infoHash: target, port: 1 })}`));
    expect(await announce()).toBeUndefined();

    expect((await admin('PUT', `/v1/admin/approval/torrents/deny/${hex(target)}`)).status).toBe(
      200,
    );
    expect(await announce()).toBeUndefined();
    expect(await gw.gateway.policy?.refresh()).toBe('changed');
    expect(await announce()).toBe('torrent is banned on this tracker [POLICY_ERR_TORRENT_DENIED]');
    expect(await gw.gateway.policy?.refresh()).toBe('unchanged');

    expect((await admin('DELETE', `/v1/admin/approval/torrents/deny/${hex(target)}`)).status).toBe(
      200,
    );
    expect(await gw.gateway.policy?.refresh()).toBe('changed');
    expect(await announce()).toBeUndefined();
  });

  it('keeps the snapshot and counts failures when storage-api rejects the token', async () => {
    const registry = new Registry();
    const policy = createPolicyCache({
      source: createRemotePolicySource({
        url: apiUrl,
        token: 'wrong-token-0123456789',
        timeoutMs: 2000,
      }),
      refreshSeconds: 3600,
      metrics: createGatewayMetrics(registry),
      logger: pino({ level: 'silent' }),
      clock: Date.now,
    });
    try {
      expect(await policy.refresh()).toBe('failed');
      expect(policy.current).toBeUndefined();
      expect(await registry.metrics()).toMatch(/shoal_policy_refresh_total\{outcome="failed"\} 1/);
    } finally {
      await policy.close();
    }
  });
});

describe('policy admin API on the admin port (embedded store, ADMIN_API_TOKEN)', () => {
  const TOKEN = 'gateway-admin-token-0123';

  it('needs the bearer token, changes the lists, and the change is enforced at once', async () => {
    const h = await start({ TORRENT_APPROVAL: 'deny', ADMIN_API_TOKEN: TOKEN });
    const target = hashOf('admin-banned');
    const call = (method: string, path: string, token?: string, body?: unknown) =>
      fetch(`http://${LOOPBACK}:${h.admin}${path}`, {
        method,
        headers: {
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? null : JSON.stringify(body),
      });

    const anonymous = await call(
      'PUT',
      `/v1/admin/approval/torrents/deny/${hex(target)}`,
      undefined,
      {},
    );
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { code: string }).code).toBe('GATEWAY_ERR_UNAUTHORIZED');
    expect((await call('GET', '/v1/admin/stats', 'wrong-token-0123456789')).status).toBe(401);
    expect((await call('GET', '/healthz')).status).toBe(200);

    const put = await call('PUT', `/v1/admin/approval/torrents/deny/${hex(target)}`, TOKEN, {
      note: 'spam',
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ added: true });
    let refused: string | undefined;
    for (let i = 0; i < 20 && refused === undefined; i++) {
      refused = failure(await injectAnnounce(h, { infoHash: target, port: 1 }, LOOPBACK));
      if (refused === undefined) await new Promise((r) => setTimeout(r, 10));
    }
    expect(refused).toBe('torrent is banned on this tracker [POLICY_ERR_TORRENT_DENIED]');

    const list = await call('GET', '/v1/admin/approval/torrents/deny', TOKEN);
    expect(
      ((await list.json()) as { entries: Array<{ value: string; note: string }> }).entries,
    ).toEqual([expect.objectContaining({ value: hex(target), note: 'spam' })]);
    const created = await call('POST', '/v1/admin/passkeys', TOKEN, { user: 'frank' });
    expect(created.status).toBe(201);
    expect(((await created.json()) as { user: string }).user).toBe('frank');
    const stats = await call('GET', '/v1/admin/stats', TOKEN);
    expect(stats.status).toBe(200);
    expect(await stats.json()).toHaveProperty('torrents');
  });

  it('is not mounted without ADMIN_API_TOKEN', async () => {
    const h = await start({});
    const res = await fetch(`http://${LOOPBACK}:${h.admin}/v1/admin/stats`);
    expect(res.status).toBe(404);
  });
});
