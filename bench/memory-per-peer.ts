// Memory per stored peer and announce cost of the memory driver, or of the
// shared-memory store (docs/storage.md "Shared-memory store") with `shared`.
//
//   node --expose-gc bench/memory-per-peer.ts [peers=1000000] [swarms=100000] [memory|shared|shared-ids]
//
// Loads `peers` IPv4 peers into `swarms` swarms through announce() (each peer
// lands in a uniformly random swarm, so swarm sizes vary around the mean and
// small swarms are common), then reports the resident and the V8 heap +
// ArrayBuffer growth divided by the number of peers. Target: <= 100 B/peer
// (opentracker keeps 8 B per IPv4 peer plus its swarm vectors).
//
// Then times announceSync()/announce() of existing peers asking for 50 peers
// in a 1000-peer swarm (the UDP gateway's hot path) inside the loaded store.
// Inputs are generated into reused buffers so the bench's own data does not
// count as the store's.
import { getHeapSpaceStatistics } from 'node:v8';
import { createMemoryStore } from '@shoal/storage/memory';
import { createSharedMemoryStore, sharedMemoryHeapUsage } from '@shoal/storage/shared-memory';
import { prng } from '@shoal/testing/random';
import type { PeerAnnounce } from '@shoal/storage';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error('run with: node --expose-gc bench/memory-per-peer.ts');
  process.exit(2);
}

const peers = Number(process.argv[2] ?? 1_000_000);
const swarms = Number(process.argv[3] ?? 100_000);
const kind = process.argv[4] ?? 'memory';
if (kind !== 'memory' && kind !== 'shared' && kind !== 'shared-ids') {
  console.error('store: memory, shared or shared-ids (SHARED_MEMORY_PEER_IDS=true)');
  process.exit(2);
}
const BIG_SWARM_PEERS = 1000;
const TIMED_ANNOUNCES = 200_000;

/** Wall and CPU (all threads of this process) time of fn, in ns per op. */
async function timed(ops: number, fn: () => unknown): Promise<string> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wall = Number(process.hrtime.bigint() - t0) / ops;
  const cpu = process.cpuUsage(cpu0);
  return `${wall.toFixed(0)} ns/op wall, ${(((cpu.user + cpu.system) * 1000) / ops).toFixed(0)} ns/op cpu`;
}

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

function settle(): NodeJS.MemoryUsage & { youngGen: number } {
  for (let i = 0; i < 3; i++) gc!();
  // V8 sizes its young generation by allocation rate, not by what is retained.
  const youngGen = getHeapSpaceStatistics()
    .filter((s) => s.space_name.startsWith('new_'))
    .reduce((sum, s) => sum + s.space_size, 0);
  return { ...process.memoryUsage(), youngGen };
}

let now = Date.now();
const options = { peerLifetimeSeconds: 1860, clock: () => now };
const shared =
  kind === 'memory'
    ? undefined
    : createSharedMemoryStore({ ...options, peerIds: kind === 'shared-ids' });
const store = shared?.store ?? createMemoryStore(options);
console.log(`store: ${store.driver}`);

// One reused announce: fields are rewritten before every call.
const a: PeerAnnounce = {
  infoHash: Buffer.alloc(20),
  peerId: Buffer.from('-SH0001-000000000000', 'latin1'),
  family: 4,
  address: Buffer.alloc(4),
  port: 6881,
  seeder: false,
  event: 'started',
  numWant: 0,
  withPeerIds: false,
};

function setSwarm(s: number): void {
  a.infoHash.writeUInt32BE(s >>> 0, 0);
  a.infoHash.writeUInt32BE(Math.imul(s, 0x9e3779b1) >>> 0, 8);
  a.infoHash.writeUInt32BE(Math.imul(s ^ 0x5bd1e995, 0x85ebca6b) >>> 0, 16);
}

function setPeer(p: number): void {
  a.address.writeUInt32BE((0x0a000000 + p) >>> 0, 0);
  a.peerId.writeUInt32BE(p >>> 0, 16);
  a.port = 1024 + (p % 60000);
}

const rand = prng(1);
const before = settle();
const load = await timed(peers, () => {
  for (let p = 0; p < peers; p++) {
    setSwarm(Math.floor(rand() * swarms));
    setPeer(p);
    a.seeder = rand() < 0.3;
    store.announceSync(a);
  }
});
const after = settle();
const stats = await store.stats();
const stored = stats.seeders.v4 + stats.leechers.v4;

const rssPerPeer = (after.rss - before.rss) / stored;
const heapPerPeer =
  (after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers)) / stored;
console.log(
  `stored: ${stored} peers in ${stats.torrents} swarms (mean ${(stored / stats.torrents).toFixed(1)} per swarm)`,
);
console.log(`load (new peers): ${load}`);
console.log(`rss delta / peer: ${rssPerPeer.toFixed(1)} B`);
const youngGrowth = after.youngGen - before.youngGen;
console.log(
  `rss delta minus young-generation growth (${mb(youngGrowth)}) / peer: ${((after.rss - before.rss - youngGrowth) / stored).toFixed(1)} B`,
);
console.log(`heapUsed+arrayBuffers delta / peer: ${heapPerPeer.toFixed(1)} B`);
if (shared !== undefined)
  console.log(
    `shared heap (grown in 4 MiB steps) / peer: ${(shared.handle.heap.byteLength / stored).toFixed(1)} B`,
  );
if (shared !== undefined) {
  // Where the shared heap's bytes are, per stored peer.
  const u = sharedMemoryHeapUsage(shared.store);
  const per = (n: number): string => (n / stored).toFixed(1);
  const known = u.entries + u.emptySlots + u.records + u.recordSlack + u.indexes + u.free;
  console.log(
    `shared heap used (top) / peer: ${per(u.top)} B = swarm entries ${per(u.entries)} + empty table slots ${per(u.emptySlots)} + ` +
      `records ${per(u.records)} + record-block slack ${per(u.recordSlack)} + indexes ${per(u.indexes)} + ` +
      `free blocks ${per(u.free)} + other ${per(u.top - known)}`,
  );
}
console.log(
  `  deltas: heapUsed ${mb(after.heapUsed - before.heapUsed)}, arrayBuffers ${mb(after.arrayBuffers - before.arrayBuffers)}, ` +
    `heapTotal ${mb(after.heapTotal - before.heapTotal)}`,
);

// Hot path: existing leechers of a 1000-peer swarm re-announcing, numWant 50.
const BIG = swarms + 1;
setSwarm(BIG);
for (let p = 0; p < BIG_SWARM_PEERS; p++) {
  setPeer(peers + p);
  a.seeder = p % 3 === 0;
  store.announceSync(a);
}
a.event = 'none';
a.numWant = 50;
a.seeder = false;
let sink = 0;
for (let round = 0; round < 2; round++) {
  // Round 0 warms the JIT; round 1 is reported.
  const sync = await timed(TIMED_ANNOUNCES, () => {
    for (let i = 0; i < TIMED_ANNOUNCES; i++) {
      setPeer(peers + 1 + 3 * (i % 333));
      sink += store.announceSync(a).peers.length;
    }
  });
  const awaited = await timed(TIMED_ANNOUNCES, async () => {
    for (let i = 0; i < TIMED_ANNOUNCES; i++) {
      setPeer(peers + 1 + 3 * (i % 333));
      sink += (await store.announce(a)).peers.length;
    }
  });
  if (round === 1) {
    console.log(`announceSync, 50 of ${BIG_SWARM_PEERS} peers: ${sync}`);
    console.log(`announce (awaited), 50 of ${BIG_SWARM_PEERS} peers: ${awaited}`);
  }
}
if (sink !== 2 * 2 * TIMED_ANNOUNCES * 50 * 6) throw new Error(`unexpected sample sizes (${sink})`);

// A 51-peer swarm, where every peer but the announcer is returned.
const SMALL = swarms + 2;
setSwarm(SMALL);
for (let p = 0; p < 51; p++) {
  setPeer(peers + 10_000 + p);
  store.announceSync(a);
}
const small = await timed(TIMED_ANNOUNCES, () => {
  for (let i = 0; i < TIMED_ANNOUNCES; i++) {
    setPeer(peers + 10_000 + (i % 51));
    store.announceSync(a);
  }
});
console.log(`announceSync, 50 of 51 peers: ${small}`);

const gcStart = process.hrtime.bigint();
now += 1861 * 1000;
const removed = await store.collectGarbage();
console.log(
  `collectGarbage of everything: ${removed.peersRemoved} peers, ${removed.swarmsRemoved} swarms in ${(Number(process.hrtime.bigint() - gcStart) / 1e6).toFixed(0)} ms`,
);
await store.close();
