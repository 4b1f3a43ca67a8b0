// One client must never take a gateway down through the split topology
// (gateway -> storage-api -> Redis). Regression: with Redis keeping no peer
// ids (REDIS_STORE_PEER_IDS=false, the default), an HTTP announce with
// compact=0 on a swarm with peers made storage-api answer its whole batch
// with a 500; every announce of that batch failed, and about 30 such
// requests opened the gateway's circuit breaker, so every announce on any
// torrent got "retry later" for seconds. Now that announce gets a valid
// non-compact answer without `peer id` (as an embedded gateway gives), and a
// flood of it leaves the breaker closed and other torrents served
// (docs/storage-api.md "Errors per op").
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStorageApi, loadStorageApiConfig, type StorageApi } from '@shoal/storage-api';
import { createCompositeStore } from '@shoal/storage/composite';
import { createRedisStore, redisStoreConfig, type RedisStore } from '@shoal/storage/redis';
import { startRedis, type RedisServer } from '@shoal/testing/redis';
import { startGateway, type GatewayProcess, storageApiEnv } from '@shoal/testing/launcher';
import {
  decodeDictPeers,
  httpAnnounce,
  httpAnnounceDict,
  randomInfoHash,
  randomPeerId,
} from '@shoal/testing/tracker-client';

const token = randomBytes(24).toString('hex');
let redis: RedisServer;
let store: RedisStore;
let api: StorageApi;
let remote: GatewayProcess;
let embedded: GatewayProcess;

beforeAll(async () => {
  redis = await startRedis();
  // Redis as storage-api opens it by default: no peer ids kept.
  store = await createRedisStore(
    redisStoreConfig({ REDIS_ADDRESSES: [redis.address], REDIS_PASSWORD: redis.password }),
    { peerLifetimeSeconds: 1860 },
  );
  api = buildStorageApi({
    config: loadStorageApiConfig({
      env: storageApiEnv(token, 'redis'),
      argv: [],
    }),
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
    store: createCompositeStore({ peers: store, data: store, dataDriver: 'redis' }),
  });
  const { port } = await api.listen();
  [remote, embedded] = await Promise.all([
    startGateway({
      STORAGE_DRIVER: 'remote',
      STORAGE_API_URL: `http://127.0.0.1:${port}`,
      STORAGE_API_TOKEN: token,
      // The default threshold; a breaker that opened stays open for the whole test.
      REMOTE_BREAKER_OPEN_MS: '600000',
    }),
    // The same Redis, embedded in a gateway: the answer the split topology must match.
    startGateway({
      STORAGE_DRIVER: 'redis',
      REDIS_ADDRESSES: redis.address,
      ...(redis.password === undefined ? {} : { REDIS_PASSWORD: redis.password }),
    }),
  ]);
}, 90_000);

afterAll(async () => {
  await Promise.all([remote?.stop(), embedded?.stop()]);
  await api?.close();
  await store?.close();
  await redis?.close();
});

async function circuitState(): Promise<number | undefined> {
  const text = await (await fetch(remote.adminUrl('/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith('shoal_storage_client_circuit_state '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

/** A swarm of three seeders announced through the remote gateway. */
async function swarmWithSeeders(firstPort: number): Promise<Buffer> {
  const infoHash = randomInfoHash();
  for (let i = 0; i < 3; i++)
    await httpAnnounce(remote.announceUrl('http'), {
      infoHash,
      peerId: randomPeerId(),
      port: firstPort + i,
      left: 0n,
      event: 'started',
    });
  return infoHash;
}

function nonCompact(gateway: GatewayProcess, infoHash: Buffer, port: number) {
  return httpAnnounceDict(
    gateway.announceUrl('http'),
    { infoHash, peerId: randomPeerId(), port, left: 100n, event: 'started' },
    { compact: false },
  );
}

describe('split topology, Redis keeping no peer ids', () => {
  it('compact=0 on a swarm with peers: a valid non-compact answer without peer id, as embedded gives', async () => {
    const infoHash = await swarmWithSeeders(52_001);
    const viaRemote = await nonCompact(remote, infoHash, 52_101);
    expect(viaRemote['failure reason']).toBeUndefined();
    expect(viaRemote).toMatchObject({ complete: 3, incomplete: 1 });
    const viaEmbedded = await nonCompact(embedded, infoHash, 52_102);
    expect(viaEmbedded['failure reason']).toBeUndefined();
    const peers = (d: Record<string, unknown>) =>
      decodeDictPeers(d.peers as never).sort((a, b) => a.port - b.port);
    const expected = [52_001, 52_002, 52_003].map((port) => ({ ip: '127.0.0.1', port }));
    expect(peers(viaRemote)).toEqual(expected);
    // Leechers get leechers too: the embedded gateway's leecher also gets the first one.
    expect(peers(viaEmbedded)).toEqual([...expected, { ip: '127.0.0.1', port: 52_101 }]);
  });

  it('a flood of that request, past the breaker threshold, leaves other torrents served', async () => {
    const infoHash = await swarmWithSeeders(53_001);
    // Ten waves of six: far more failed batches than REMOTE_BREAKER_FAILURES (5) once needed.
    const flood: Array<Record<string, unknown>> = [];
    for (let wave = 0; wave < 10; wave++) {
      flood.push(
        ...(await Promise.all(
          Array.from({ length: 6 }, (_, i) => nonCompact(remote, infoHash, 53_100 + wave * 6 + i)),
        )),
      );
    }
    const others = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        httpAnnounce(remote.announceUrl('http'), {
          infoHash: randomInfoHash(),
          peerId: randomPeerId(),
          port: 54_000 + i,
          left: 100n,
          event: 'started',
        }),
      ),
    );
    for (const r of others) expect(r).toMatchObject({ seeders: 0, leechers: 1 });
    expect(await circuitState()).toBe(0);
    expect(flood.filter((a) => a['failure reason'] !== undefined)).toEqual([]);
    expect(remote.alive()).toBe(true);
  });
});
