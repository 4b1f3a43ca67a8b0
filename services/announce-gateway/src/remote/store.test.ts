import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STORAGE_RPC_VERSION } from '@shoal/protocol';
import { isStoreError, type PeerAnnounce } from '@shoal/storage';
import { captureLogs } from '@shoal/testing/logs';
import { loadGatewayConfig } from '../config.ts';
import {
  UdpClient,
  announcePacket,
  announceQuery,
  bdict,
  hashOf,
  makeGateway,
  udpConnect,
} from '../../test/support.ts';
import {
  FAKE_TOKEN,
  startFakeStorageApi,
  type FakeStorageApi,
} from '../../test/fake-storage-api.ts';
import { createRemoteStore, type RemoteStore } from './store.ts';

let api: FakeStorageApi;
const open: RemoteStore[] = [];

beforeAll(async () => {
  api = await startFakeStorageApi();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  api.mode = 'ok';
  api.delayMs = 0;
  api.batches.length = 0;
});
afterAll(async () => {
  await api.stop();
});

function remote(env: Record<string, string> = {}) {
  const config = loadGatewayConfig({
    env: {
      STORAGE_DRIVER: 'remote',
      STORAGE_API_URL: api.url,
      STORAGE_API_TOKEN: FAKE_TOKEN,
      ...env,
    },
    argv: [],
  });
  const { lines, stream } = captureLogs();
  const registry = new Registry();
  const store = createRemoteStore(config, { logger: pino({ level: 'info' }, stream), registry });
  open.push(store);
  return { store, registry, lines };
}

function announce(n: number, overrides: Partial<PeerAnnounce> = {}): PeerAnnounce {
  return {
    infoHash: hashOf('remote-swarm'),
    peerId: Buffer.from(`-SH0001-${String(n).padStart(12, '0')}`, 'latin1'),
    family: 4,
    address: Buffer.from([10, 0, (n >> 8) & 0xff, n & 0xff]),
    port: 6881,
    seeder: false,
    event: 'started',
    numWant: 50,
    withPeerIds: false,
    ...overrides,
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isStoreError(err)) return err.code;
    throw err;
  }
  return 'resolved';
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const metric = await registry.getSingleMetric(name)?.get();
  const hit = metric?.values.find((v) =>
    Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val),
  );
  return hit?.value ?? 0;
}

describe('remote store against a storage-api speaking the batch codec', () => {
  it('announces and scrapes with the store semantics: counts include the announcer, peers exclude it', async () => {
    const { store } = remote();
    const hash = hashOf('semantics');
    const seeder = await store.announce(announce(1, { infoHash: hash, seeder: true }));
    expect(seeder).toMatchObject({ seeders: 1, leechers: 0, downloaded: 0 });
    expect(seeder.peers.length).toBe(0);
    const leecher = await store.announce(announce(2, { infoHash: hash, withPeerIds: true }));
    expect(leecher).toMatchObject({ seeders: 1, leechers: 1 });
    expect(leecher.peers).toEqual(Buffer.from([10, 0, 0, 1, 0x1a, 0xe1]));
    expect(leecher.peerIds?.[0]?.toString('latin1')).toBe('-SH0001-000000000001');
    const v6 = await store.announce(
      announce(3, { infoHash: hash, family: 6, address: Buffer.alloc(16, 1), seeder: true }),
    );
    // Swarms keep families apart in peers but count both.
    expect(v6).toMatchObject({ seeders: 2, leechers: 1 });
    expect(v6.peers.length).toBe(0);
    expect(await store.scrape([hash, hashOf('unknown')])).toEqual([
      { seeders: 2, leechers: 1, downloaded: 0, partialSeeds: 0 },
      { seeders: 0, leechers: 0, downloaded: 0, partialSeeds: 0 },
    ]);
    expect(await store.stats()).toMatchObject({ seeders: { v4: 1, v6: 1 }, leechers: { v4: 1 } });
    await expect(store.ping()).resolves.toBeUndefined();
    expect(await store.collectGarbage()).toEqual({ peersRemoved: 0, swarmsRemoved: 0 });
  });

  it('splits a scrape of more than 255 hashes into several ops of one batch', async () => {
    const { store } = remote({ SCRAPE_MAX_HASHES: '1000' });
    const hashes = Array.from({ length: 600 }, (_, i) => hashOf(`big-scrape-${i}`));
    await store.announce(announce(7, { infoHash: hashes[599]!, seeder: true }));
    api.batches.length = 0;
    const counts = await store.scrape(hashes);
    expect(counts).toHaveLength(600);
    expect(counts[599]).toEqual({ seeders: 1, leechers: 0, downloaded: 0, partialSeeds: 0 });
    expect(api.batches).toEqual([3]);
  });

  it('coalesces 100 concurrent announces into one batch request', async () => {
    const { store, registry } = remote();
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => store.announce(announce(100 + i))),
    );
    expect(results.every((r) => r.leechers >= 1)).toBe(true);
    expect(api.batches).toEqual([100]);
    expect(await metricValue(registry, 'shoal_storage_client_batch_size', { le: '128' })).toBe(1);
    expect(
      await metricValue(registry, 'shoal_storage_client_requests_total', { outcome: 'ok' }),
    ).toBe(100);
  });

  it('cuts batches at REMOTE_BATCH_MAX_OPS', async () => {
    const { store } = remote({ REMOTE_BATCH_MAX_OPS: '30' });
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.announce(announce(300 + i))));
    expect(api.batches).toEqual([30, 30, 30, 10]);
  });

  it('REMOTE_BATCHING=false sends one op per request', async () => {
    const { store } = remote({ REMOTE_BATCHING: 'false' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.announce(announce(500 + i))));
    expect(api.batches).toEqual(Array.from({ length: 20 }, () => 1));
  });

  it('refuses at once with STORE_ERR_UNAVAILABLE past REMOTE_QUEUE_MAX', async () => {
    const { store, registry } = remote({ REMOTE_QUEUE_MAX: '10' });
    api.delayMs = 50;
    const all = Array.from({ length: 15 }, (_, i) => codeOf(store.announce(announce(700 + i))));
    const codes = await Promise.all(all);
    expect(codes.filter((c) => c === 'resolved')).toHaveLength(10);
    expect(codes.filter((c) => c === 'STORE_ERR_UNAVAILABLE')).toHaveLength(5);
    expect(
      await metricValue(registry, 'shoal_storage_client_requests_total', { outcome: 'queue_full' }),
    ).toBe(5);
  });

  it('fails with STORE_ERR_TIMEOUT when storage-api does not answer within REMOTE_TIMEOUT_MS', async () => {
    const { store, registry } = remote({ REMOTE_TIMEOUT_MS: '50' });
    // The answer would come after 3 s: failing before it (the code says which
    // timer ended it) is the timeout at work, however loaded the machine.
    api.delayMs = 3000;
    const started = performance.now();
    expect(await codeOf(store.announce(announce(800)))).toBe('STORE_ERR_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(api.delayMs);
    expect(
      await metricValue(registry, 'shoal_storage_client_requests_total', { outcome: 'timeout' }),
    ).toBe(1);
  });

  it('passes a backend error reported per op on as its store code', async () => {
    const { store, registry } = remote();
    api.mode = 'backend-down';
    expect(await codeOf(store.announce(announce(900)))).toBe('STORE_ERR_UNAVAILABLE');
    expect(await codeOf(store.scrape([hashOf('x')]))).toBe('STORE_ERR_UNAVAILABLE');
    await expect(store.ping()).rejects.toMatchObject({ code: 'STORE_ERR_UNAVAILABLE' });
    expect(
      await metricValue(registry, 'shoal_storage_client_requests_total', { outcome: 'error' }),
    ).toBe(2);
    // Answered per op: storage-api itself is reachable, so the breaker stays closed.
    expect(store.circuitState).toBe('closed');
  });

  it('a wrong token answers STORE_ERR_UNAVAILABLE and is logged once as an error', async () => {
    const { store, lines } = remote({ STORAGE_API_TOKEN: 'not-the-right-token-at-all' });
    expect(await codeOf(store.announce(announce(950)))).toBe('STORE_ERR_UNAVAILABLE');
    expect(await codeOf(store.announce(announce(951)))).toBe('STORE_ERR_UNAVAILABLE');
    const errors = lines.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(String(errors[0]?.msg)).toContain('401 RPC_ERR_UNAUTHORIZED');
  });

  it('another batch version: one clear error naming both versions, clients get STORE_ERR_UNAVAILABLE', async () => {
    const { store, lines } = remote();
    api.mode = 'version';
    for (let i = 0; i < 3; i++)
      expect(await codeOf(store.announce(announce(960 + i)))).toBe('STORE_ERR_UNAVAILABLE');
    const errors = lines.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      gatewayVersion: STORAGE_RPC_VERSION,
      storageApiVersions: [2],
    });
    expect(String(errors[0]?.msg)).toContain(`version ${STORAGE_RPC_VERSION}`);
  });

  it('opens the circuit while storage-api is down: refusals in milliseconds, then recovers by itself', async () => {
    const { store, registry, lines } = remote({
      REMOTE_BREAKER_FAILURES: '3',
      REMOTE_BREAKER_OPEN_MS: '200',
    });
    await store.announce(announce(1000));
    await api.stop();
    try {
      for (let i = 0; i < 3; i++)
        expect(await codeOf(store.announce(announce(1001 + i)))).toBe('STORE_ERR_UNAVAILABLE');
      expect(store.circuitState).toBe('open');
      const transportFailures = () =>
        metricValue(registry, 'shoal_storage_client_requests_total', { outcome: 'error' });
      const failuresBefore = await transportFailures();
      const codes = await Promise.all(
        Array.from({ length: 50 }, (_, i) => codeOf(store.announce(announce(1010 + i)))),
      );
      expect(new Set(codes)).toEqual(new Set(['STORE_ERR_UNAVAILABLE']));
      // Refused without a connection attempt: each counted as rejected by the open
      // circuit, none as a transport failure (no wall-clock bound: those fail under load).
      expect(
        await metricValue(registry, 'shoal_storage_client_requests_total', {
          outcome: 'rejected_open_circuit',
        }),
      ).toBe(50);
      expect(await transportFailures()).toBe(failuresBefore);
      expect(await metricValue(registry, 'shoal_storage_client_circuit_state')).toBe(2);
    } finally {
      await api.start();
    }
    await new Promise((r) => setTimeout(r, 220));
    // The first operation after the open period is the half-open probe; it succeeds and closes the circuit.
    const back = await store.announce(announce(1100));
    expect(back.leechers).toBeGreaterThanOrEqual(1);
    expect(store.circuitState).toBe('closed');
    expect(await metricValue(registry, 'shoal_storage_client_circuit_state')).toBe(0);
    const messages = lines.map((l) => l.msg);
    expect(messages).toContain('storage-api unreachable');
    expect(messages).toContain('storage-api circuit closed');
  });

  it('503 "unavailable" answers count as failures and open the circuit', async () => {
    const { store } = remote({ REMOTE_BREAKER_FAILURES: '2', REMOTE_BREAKER_OPEN_MS: '60000' });
    api.mode = 'http-503';
    expect(await codeOf(store.announce(announce(1200)))).toBe('STORE_ERR_UNAVAILABLE');
    await codeOf(store.announce(announce(1201)));
    expect(store.circuitState).toBe('open');
    api.mode = 'ok';
    api.batches.length = 0;
    expect(await codeOf(store.announce(announce(1202)))).toBe('STORE_ERR_UNAVAILABLE');
    expect(api.batches).toEqual([]);
  });
});

describe('what the circuit breaker counts', () => {
  it('answered failures never open it: a 500 about the request, 400 refusals, per-op error codes', async () => {
    const { store } = remote({ REMOTE_BREAKER_FAILURES: '2', REMOTE_BREAKER_OPEN_MS: '60000' });
    for (const mode of ['http-500', 'bad-request', 'backend-down'] as const) {
      api.mode = mode;
      for (let i = 0; i < 6; i++)
        expect(await codeOf(store.announce(announce(1300 + i)))).toBe('STORE_ERR_UNAVAILABLE');
      expect(store.circuitState, mode).toBe('closed');
    }
    api.mode = 'ok';
    expect((await store.announce(announce(1310))).leechers).toBeGreaterThanOrEqual(1);
  });

  it('an op the batch cannot carry is refused alone with STORE_ERR_BAD_INPUT; its neighbours are answered', async () => {
    const { store } = remote({ REMOTE_BREAKER_FAILURES: '1', REMOTE_BREAKER_OPEN_MS: '60000' });
    const hash = hashOf('one-bad-op');
    const bad: Array<Partial<PeerAnnounce>> = [
      { port: 70_000 },
      { numWant: -1 },
      { address: Buffer.alloc(16) },
      { infoHash: Buffer.alloc(19) },
    ];
    const codes = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) =>
        codeOf(store.announce(announce(1400 + i, { infoHash: hash }))),
      ),
      ...bad.map((b) => codeOf(store.announce(announce(1450, b)))),
      codeOf(store.scrape([Buffer.alloc(3)])),
    ]);
    expect(codes).toEqual([
      ...Array<string>(10).fill('resolved'),
      ...Array<string>(5).fill('STORE_ERR_BAD_INPUT'),
    ]);
    expect(api.batches).toEqual([10]);
    expect(store.circuitState).toBe('closed');
    // numWant past what one answer carries (u16) is capped, as a store caps it, not refused.
    const many = await store.announce(announce(1460, { infoHash: hash, numWant: 100_000 }));
    expect(many.peers.length).toBe(10 * 6);
  });
});

describe('gateway with the remote store', () => {
  it('answers HTTP and UDP clients "retry later" at once while storage-api is down', async () => {
    const store = createRemoteStore(
      loadGatewayConfig({
        env: {
          STORAGE_DRIVER: 'remote',
          STORAGE_API_URL: api.url,
          STORAGE_API_TOKEN: FAKE_TOKEN,
          REMOTE_BREAKER_FAILURES: '1',
          REMOTE_BREAKER_OPEN_MS: '60000',
        },
        argv: [],
      }),
      { logger: pino({ level: 'silent' }), registry: new Registry() },
    );
    const t = makeGateway({}, { storage: store });
    const { httpPort, udpPort } = await t.gateway.listen();
    const udp = new UdpClient('udp4');
    await udp.bind('127.0.0.1');
    try {
      const hash = hashOf('gateway-remote');
      const ok = bdict(
        Buffer.from(
          await (
            await fetch(
              `http://127.0.0.1:${httpPort}/announce?${announceQuery({ infoHash: hash, port: 7001 })}`,
            )
          ).arrayBuffer(),
        ),
      );
      expect(ok.incomplete).toBe(1);
      await api.stop();
      try {
        for (let i = 0; i < 3; i++) {
          const started = performance.now();
          const res = await fetch(
            `http://127.0.0.1:${httpPort}/announce?${announceQuery({ infoHash: hash, port: 7002 })}`,
          );
          const body = bdict(Buffer.from(await res.arrayBuffer()));
          expect(res.status).toBe(200);
          expect((body['failure reason'] as Buffer).toString('utf8')).toContain('retry later');
          expect(typeof body['retry in']).toBe('number');
          // The product's promise: a coded retry-later within 1 s (RELIABILITY.md).
          expect(performance.now() - started).toBeLessThan(1000);
        }
        const connectionId = await udpConnect(udp, udpPort!, '127.0.0.1');
        const tid = udp.tid();
        const started = performance.now();
        const answer = await udp.request(
          announcePacket(connectionId, tid, { infoHash: hash, port: 7003 }),
          tid,
          udpPort!,
          '127.0.0.1',
        );
        expect(performance.now() - started).toBeLessThan(1000);
        expect(answer?.readUInt32BE(0)).toBe(3);
        expect(answer?.subarray(8).toString('utf8')).toContain('retry later');
      } finally {
        await api.start();
      }
    } finally {
      await udp.close();
      await t.close();
    }
  });
});
