// Redis memory per stored peer for swarms of 1, 10, 100 and 1,000 peers
// (docs/redis.md "Memory": target <= 30 B per peer for 10..1,000), written through the real
// driver into a fresh redis-server started from deploy/redis/redis.conf.
// Prints one table per setting: listpack limits from the production conf
// (zset-max-listpack-entries 1024) and Redis's default (128), with and
// without stored peer_ids (REDIS_STORE_PEER_IDS).
//
//   node bench/redis-memory.ts            (about 30 s on 2 cores)
//   PEERS=50000 node bench/redis-memory.ts
import { execFileSync } from 'node:child_process';
import { createRedisStore, redisStoreConfig } from '@shoal/storage/redis';
import { startRedis, type RedisServer } from '@shoal/testing/redis';

const TOTAL_PEERS = Number(process.env.PEERS ?? 20_000);
const SIZES = [1, 10, 100, 1000];

function infoHash(n: number): Buffer {
  const b = Buffer.alloc(20, 0x5a);
  b.writeUInt32BE(n >>> 0, 0);
  b.writeUInt32BE(Math.imul(n, 0x9e3779b1) >>> 0, 16);
  return b;
}

function address(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(((10 << 24) | (n & 0xffffff)) >>> 0, 0);
  return b;
}

async function usedMemory(server: RedisServer): Promise<number> {
  const info = await server.cli('INFO', 'memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

interface Row {
  size: number;
  swarms: number;
  peers: number;
  bytesPerPeer: number;
  bytesPerSwarm: number;
  encoding: string;
}

async function measure(storePeerIds: boolean, listpackEntries: number | undefined): Promise<Row[]> {
  const server = await startRedis({
    args:
      listpackEntries === undefined ? [] : ['--zset-max-listpack-entries', String(listpackEntries)],
  });
  const rows: Row[] = [];
  try {
    const store = await createRedisStore(
      redisStoreConfig({
        REDIS_ADDRESSES: [server.address],
        REDIS_PASSWORD: server.password,
        REDIS_STORE_PEER_IDS: storePeerIds,
        REDIS_CONNECTIONS_PER_NODE: 4,
      }),
      { peerLifetimeSeconds: 1860 },
    );
    let swarmBase = 0;
    for (const size of SIZES) {
      await server.cli('FLUSHALL');
      const before = await usedMemory(server);
      const swarms = Math.max(1, Math.floor(TOTAL_PEERS / size));
      const peerId = Buffer.from('-SH0001-000000000000', 'latin1');
      for (let s = 0; s < swarms; s++) {
        const ih = infoHash(swarmBase + s);
        const batch: Array<Promise<unknown>> = [];
        for (let p = 0; p < size; p++) {
          batch.push(
            store.announce({
              infoHash: ih,
              peerId,
              family: 4,
              address: address(p),
              port: 6881,
              seeder: p % 4 === 0,
              event: 'started',
              numWant: 0,
              withPeerIds: false,
            }),
          );
          if (batch.length >= 256) await Promise.all(batch.splice(0));
        }
        await Promise.all(batch);
      }
      const after = await usedMemory(server);
      const sampleKey = `{${infoHash(swarmBase).toString('base64url')}}p4`;
      const encoding = size === 1 ? 'listpack' : await server.cli('OBJECT', 'ENCODING', sampleKey);
      swarmBase += swarms;
      const peers = swarms * size;
      rows.push({
        size,
        swarms,
        peers,
        bytesPerPeer: (after - before) / peers,
        bytesPerSwarm: (after - before) / swarms,
        encoding,
      });
    }
    await store.close();
  } finally {
    await server.close();
  }
  return rows;
}

const settings: Array<{ label: string; ids: boolean; entries: number | undefined }> = [
  {
    label: 'deploy/redis/redis.conf (zset-max-listpack-entries 1024), REDIS_STORE_PEER_IDS=false',
    ids: false,
    entries: undefined,
  },
  {
    label: 'deploy/redis/redis.conf (zset-max-listpack-entries 1024), REDIS_STORE_PEER_IDS=true',
    ids: true,
    entries: undefined,
  },
  {
    label: 'Redis default zset-max-listpack-entries 128, REDIS_STORE_PEER_IDS=false',
    ids: false,
    entries: 128,
  },
];

const version = execFileSync('redis-server', ['--version'], { encoding: 'utf8' })
  .split(' ')
  .slice(0, 3)
  .join(' ');
console.log(
  `Redis memory per stored peer (${version}, ${TOTAL_PEERS} peers per swarm size, IPv4, 1/4 seeders)`,
);
for (const s of settings) {
  const rows = await measure(s.ids, s.entries);
  console.log(`\n${s.label}`);
  console.log('| peers per swarm | swarms | bytes per peer | bytes per swarm | zset encoding |');
  console.log('|---:|---:|---:|---:|---|');
  for (const r of rows) {
    console.log(
      `| ${r.size} | ${r.swarms} | ${r.bytesPerPeer.toFixed(1)} | ${r.bytesPerSwarm.toFixed(0)} | ${r.encoding} |`,
    );
  }
}
