// Latency of the postgres driver over a large peers table (docs/postgres.md's
// scale run; MoChi claims ~10 million peer rows on default PostgreSQL settings).
// bench/pg-scale.sh loads the rows and runs this; alone it needs a loaded
// database:
//   DATABASE_URL=... ROWS=... SWARMS=... HOT_PEERS=... node bench/pg-scale.ts
// Prints one JSON object. Not part of `make test`.
import { performance } from 'node:perf_hooks';
import { createPostgresStore } from '@shoal/storage/postgres';

const env = (k: string, d: number): number =>
  process.env[k] === undefined ? d : Number(process.env[k]);
const ROWS = env('ROWS', 10_000_000);
const SWARMS = env('SWARMS', Math.max(1, Math.floor(ROWS / 50)));
const HOT_PEERS = env('HOT_PEERS', 100_000);
const ANNOUNCES = env('ANNOUNCES', 20_000);
const SCRAPES = env('SCRAPES', 5_000);
const HOT_ANNOUNCES = env('HOT_ANNOUNCES', 500);
const CONCURRENCY = env('CONCURRENCY', 8);
const POOL = env('PG_POOL_SIZE', 4);
const HOT_SWARM = 0xffffffff;
const url = process.env.DATABASE_URL;
if (url === undefined) throw new Error('DATABASE_URL is required');

/** Same bytes as the loader's SQL: 4-byte big-endian swarm number, then 16 x 0xa5. */
function infoHash(swarm: number): Buffer {
  const b = Buffer.alloc(20, 0xa5);
  b.writeUInt32BE(swarm >>> 0, 0);
  return b;
}
function address(i: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(i >>> 0, 0);
  return b;
}
const peerId = Buffer.from('-SH0001-benchbenchbe', 'latin1');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measure(n: number, op: (i: number) => Promise<unknown>) {
  const lat: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        const t = performance.now();
        await op(i);
        lat.push(performance.now() - t);
      }
    }),
  );
  const secs = (performance.now() - started) / 1000;
  lat.sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    n,
    perSecond: Math.round(n / secs),
    p50ms: r(percentile(lat, 50)),
    p99ms: r(percentile(lat, 99)),
  };
}

const rand = (n: number) => Math.floor(Math.random() * n);
const store = await createPostgresStore(
  { DATABASE_URL: url, PG_MIGRATE_ON_START: false, PG_POOL_SIZE: POOL, PG_STATEMENT_TIMEOUT_MS: 0 },
  { peerLifetimeSeconds: 1860 },
);
try {
  const announce = (swarm: number, i: number) =>
    store.announce({
      infoHash: infoHash(swarm),
      peerId,
      family: 4,
      address: address(i),
      port: 6881 + (i % 1000),
      seeder: false,
      event: 'none',
      numWant: 50,
      withPeerIds: false,
    });
  // Half re-announces of loaded peers, half new peers (addresses above the loaded range).
  const typical = (k: number) => {
    const swarm = rand(SWARMS);
    const loaded = swarm + SWARMS * rand(Math.max(1, Math.floor(ROWS / SWARMS)));
    return announce(
      swarm,
      k % 2 === 0 && loaded >= 1 && loaded <= ROWS ? loaded : ROWS + 1 + rand(1 << 28),
    );
  };
  await measure(500, typical);
  const announces = await measure(ANNOUNCES, typical);
  const hot =
    HOT_PEERS > 0
      ? await measure(HOT_ANNOUNCES, () => announce(HOT_SWARM, ROWS + 1 + rand(1 << 28)))
      : null;
  const scrape1 = await measure(SCRAPES, () => store.scrape([infoHash(rand(SWARMS))]));
  const scrape10 = await measure(SCRAPES, () =>
    store.scrape(Array.from({ length: 10 }, () => infoHash(rand(SWARMS)))),
  );
  const gcStarted = performance.now();
  const gc = await store.collectGarbage();
  const gcSeconds = (performance.now() - gcStarted) / 1000;
  const statsStarted = performance.now();
  const stats = await store.stats();
  const statsSeconds = (performance.now() - statsStarted) / 1000;
  console.log(
    JSON.stringify(
      {
        rows: ROWS,
        swarms: SWARMS,
        hotSwarmPeers: HOT_PEERS,
        concurrency: CONCURRENCY,
        pool: POOL,
        announce: announces,
        announceHotSwarm: hot,
        scrape1: scrape1,
        scrape10: scrape10,
        gc: {
          ...gc,
          seconds: Math.round(gcSeconds * 10) / 10,
          peersPerSecond: Math.round(gc.peersRemoved / gcSeconds),
        },
        stats: { ...stats, seconds: Math.round(statsSeconds * 10) / 10 },
      },
      null,
      2,
    ),
  );
} finally {
  await store.close();
}
