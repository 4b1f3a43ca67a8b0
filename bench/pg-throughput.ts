// Announces/s through the store API: memory vs postgres, pipelined
// connections vs pg.Pool, with and without the per-swarm lock (docs/postgres.md:
// pipelined where node-postgres allows it, measured).
//   DATABASE_URL=... DURATION_SECONDS=5 CONCURRENCY=64 node bench/pg-throughput.ts
// bench/pg-throughput.sh starts a server with default settings and runs this.
// Not part of `make test`.
import { performance } from 'node:perf_hooks';
import type { PeerAnnounce, PeerStore } from '@shoal/storage';
import { createMemoryStore } from '@shoal/storage/memory';
import { createPostgresStore, type PostgresStoreConfigInput } from '@shoal/storage/postgres';

const url = process.env.DATABASE_URL;
if (url === undefined) throw new Error('DATABASE_URL is required');
const SECONDS = Number(process.env.DURATION_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const SWARMS = Number(process.env.SWARMS ?? 1000);
const PEERS_PER_SWARM = Number(process.env.PEERS_PER_SWARM ?? 50);
const POOL = Number(process.env.PG_POOL_SIZE ?? 4);

function announceOf(n: number): PeerAnnounce {
  const swarm = n % SWARMS;
  const peer = Math.floor(n / SWARMS) % PEERS_PER_SWARM;
  const infoHash = Buffer.alloc(20, 0x5a);
  infoHash.writeUInt32BE(swarm, 0);
  const address = Buffer.alloc(4);
  address.writeUInt32BE(((10 << 24) | (swarm * PEERS_PER_SWARM + peer)) >>> 0, 0);
  return {
    infoHash,
    peerId: Buffer.from('-SH0001-throughput00', 'latin1'),
    family: 4,
    address,
    port: 6881,
    seeder: peer % 4 === 0,
    event: 'none',
    numWant: 50,
    withPeerIds: false,
  };
}

async function run(store: PeerStore): Promise<{ perSecond: number; p50ms: number; p99ms: number }> {
  // Fill every swarm first so each measured announce samples a full swarm.
  for (let n = 0; n < SWARMS * PEERS_PER_SWARM; n += CONCURRENCY) {
    await Promise.all(
      Array.from({ length: CONCURRENCY }, (_, i) => store.announce(announceOf(n + i))),
    );
  }
  const lat: number[] = [];
  let count = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      for (let n = w; performance.now() < deadline; n += CONCURRENCY) {
        const t = performance.now();
        await store.announce(announceOf(Math.floor(Math.random() * SWARMS * PEERS_PER_SWARM)));
        lat.push(performance.now() - t);
        count++;
      }
    }),
  );
  const secs = (performance.now() - started) / 1000;
  lat.sort((a, b) => a - b);
  const pct = (p: number) =>
    Math.round((lat[Math.floor((p / 100) * (lat.length - 1))] ?? NaN) * 100) / 100;
  return { perSecond: Math.round(count / secs), p50ms: pct(50), p99ms: pct(99) };
}

const variants: Array<[string, Partial<PostgresStoreConfigInput>]> = [
  ['postgres pipelined, swarm lock', { PG_PIPELINE: true, PG_ANNOUNCE_SWARM_LOCK: 'on' }],
  ['postgres pipelined, no lock', { PG_PIPELINE: true, PG_ANNOUNCE_SWARM_LOCK: 'off' }],
  ['postgres pg.Pool, swarm lock', { PG_PIPELINE: false, PG_ANNOUNCE_SWARM_LOCK: 'on' }],
  ['postgres pg.Pool, no lock', { PG_PIPELINE: false, PG_ANNOUNCE_SWARM_LOCK: 'off' }],
];

const results: Record<string, unknown> = {};
const memory = createMemoryStore({ peerLifetimeSeconds: 1860 });
results.memory = await run(memory);
await memory.close();
for (const [name, extra] of variants) {
  const store = await createPostgresStore(
    { DATABASE_URL: url, PG_POOL_SIZE: POOL, ...extra },
    { peerLifetimeSeconds: 1860 },
  );
  try {
    results[name] = await run(store);
  } finally {
    await store.close();
  }
}
console.log(
  JSON.stringify(
    {
      seconds: SECONDS,
      concurrency: CONCURRENCY,
      pool: POOL,
      swarms: SWARMS,
      peersPerSwarm: PEERS_PER_SWARM,
      results,
    },
    null,
    2,
  ),
);
