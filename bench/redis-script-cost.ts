// Redis CPU per announce script call, per swarm size, for this tree's Redis
// driver and any other checkouts given (git worktrees of earlier commits),
// in one run (docs/redis.md "CPU per announce"). Each tree gets its own
// redis-server (deploy/redis/redis.conf, loopback, temp dir) and its own
// driver, so trees with different data layouts are compared like for like.
// Per cell TORRENTSxPEERS every (torrent, peer) is announced once, then
// ROUNDS rounds alternate the trees, each round CALLS announces of random
// stored peers through the driver (WINDOW in flight, 50 peers asked for,
// peer k a seeder when k is odd and keyed when k > 0, as bench/scale-load.c
// sends them; COMPLETED_PER_MILLE of them `completed`). Per round and tree:
// INFO commandstats usec_per_call of EVALSHA (reset before the round) and
// redis-server's CPU (every thread's schedstat run time) per call.
//   node bench/redis-script-cost.ts [OTHER_TREE...]
//   env: CELLS="10000x1 1000x100 10x10000" ROUNDS=3 CALLS=20000 WINDOW=32
//        COMPLETED_PER_MILLE=0
//        REDIS_NICE=-10: renice every redis-server (root): usec_per_call is wall
//        time inside Redis, and on a loaded machine a preemption in a script
//        lands in it; a higher priority keeps it nearer the CPU time
//        STEPS=1: this tree only, its announce script with a TIME probe
//        between steps; prints the mean microseconds of each step (a probe
//        costs about one simple command, included in each figure)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startRedis, type RedisServer } from '@shoal/testing/redis';

interface Announce {
  infoHash: Buffer;
  peerId: Buffer;
  family: 4 | 6;
  address: Buffer;
  port: number;
  seeder: boolean;
  event: 'none' | 'completed' | 'started' | 'stopped';
  numWant: number;
  withPeerIds: boolean;
  keyHash?: Buffer;
}
interface Store {
  announce(a: Announce): Promise<{ seeders: number; leechers: number; peers: Buffer }>;
  close(): Promise<void>;
}
interface Script {
  lua: string;
  sha: string;
}
interface Driver {
  createRedisStore(config: unknown, opts: { peerLifetimeSeconds: number }): Promise<Store>;
  redisStoreConfig(settings: Record<string, unknown>): unknown;
}

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const trees = [here, ...process.argv.slice(2).map((t) => resolve(t))];
const CELLS = (process.env.CELLS ?? '10000x1 1000x100 10x10000').split(/\s+/).filter(Boolean);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CALLS = Number(process.env.CALLS ?? 20_000);
const WINDOW = Number(process.env.WINDOW ?? 32);
const COMPLETED_PER_MILLE = Number(process.env.COMPLETED_PER_MILLE ?? 0);
const STEPS = process.env.STEPS === '1';
const REDIS_NICE = process.env.REDIS_NICE;
if (STEPS) trees.splice(1);

// Step name -> the script line the step ends before.
const PROBES: Array<[string, string]> = [
  ['prune', '\nlocal event = string.sub(flags, 2, 2)'],
  ['moved client (binding read)', '\nlocal role = '],
  ['write (ZADD, binding, TTLs)', '\n-- "completed" counts once'],
  ['download count', "\nif bind ~= '' and event == 's'"],
  ['counts (own, other family)', '\n-- Bindings of peers that expired'],
  ['binding compaction', '\n-- Ranks 0..nl-1'],
  ['peer sample', "\nlocal ids = ''"],
  ['peer ids', '\nreturn { (n - nl - np)'],
];

/** The announce script with a TIME probe before each PROBES line; sums land in hash `steps`. */
function instrument(lua: string): string {
  const head = `local __t = {}
local function __probe() local t = redis.call('TIME') __t[#__t + 1] = tonumber(t[1]) * 1000000 + tonumber(t[2]) end
__probe()
`;
  const at = lua.indexOf('\nlocal own, other');
  if (at < 0) throw new Error('announce script: no "local own, other" line to start probing at');
  let body = lua.slice(at);
  for (const [, line] of PROBES) {
    if (!body.includes(line)) throw new Error(`announce script: no line ${JSON.stringify(line)}`);
    body = body.replace(line, `\n__probe()${line}`);
  }
  const sums = PROBES.map(
    ([name], k) =>
      `redis.call('HINCRBY', 'steps', ${JSON.stringify(name)}, __t[${k + 2}] - __t[${k + 1}])`,
  ).join('\n');
  body = body.replace(
    '\nreturn { (n - nl - np)',
    `\n${sums}\nredis.call('HINCRBY', 'steps', 'calls', 1)\nreturn { (n - nl - np)`,
  );
  return lua.slice(0, at) + head + body;
}

function infoHash(n: number): Buffer {
  const b = Buffer.alloc(20, 0x3c);
  b.writeUInt32BE(n >>> 0, 0);
  b.writeUInt32BE(Math.imul(n + 1, 0x9e3779b1) >>> 0, 16);
  return b;
}

const LOOPBACK = Buffer.from([127, 0, 0, 1]);
function announceOf(torrent: number, peer: number, event: Announce['event']): Announce {
  const peerId = Buffer.from('-SC0001-000000000000', 'latin1');
  peerId.writeUInt32BE(peer, 16);
  const a: Announce = {
    infoHash: infoHash(torrent),
    peerId,
    family: 4,
    address: LOOPBACK,
    port: peer + 1,
    seeder: peer % 2 === 1 || event === 'completed',
    event,
    numWant: 50,
    withPeerIds: false,
  };
  if (peer > 0) {
    a.keyHash = Buffer.alloc(8);
    a.keyHash.writeUInt32BE(peer, 4);
  }
  return a;
}

/** CPU ns of every thread of `pid` (schedstat: time on a CPU). */
function cpuNs(pid: number): number {
  let sum = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      sum += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that exited while it was read
    }
  }
  return sum;
}

/**
 * EVALSHA's calls and usec, and the commands the scripts ran (every other
 * command but the harness's CONFIG and INFO): a count the machine's load
 * cannot disturb.
 */
async function evalshaStats(
  server: RedisServer,
): Promise<{ calls: number; usec: number; inner: number }> {
  const info = await server.cli('INFO', 'commandstats');
  const line = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(info);
  let inner = 0;
  for (const m of info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g))
    if (!['evalsha', 'eval', 'config|resetstat', 'info'].includes(m[1]!)) inner += Number(m[2]);
  return { calls: Number(line?.[1] ?? 0), usec: Number(line?.[2] ?? 0), inner };
}

async function run(store: Store, count: number, next: (i: number) => Announce): Promise<void> {
  let i = 0;
  const worker = async (): Promise<void> => {
    while (i < count) await store.announce(next(i++));
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
}

interface Side {
  tree: string;
  server: RedisServer;
  store: Store;
  usec: number[];
  cpu: number[];
  inner: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

console.log(
  `# redis-script-cost ${new Date().toISOString()}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}; rounds ${ROUNDS} x ${CALLS} calls, window ${WINDOW}, completed ${COMPLETED_PER_MILLE}/1000`,
);
console.log(
  'cell          tree  usec_per_call(median,min)  redis_cpu_us(median,min)  rounds(usec)',
);
for (const cell of CELLS) {
  const [torrents, peers] = cell.split('x').map(Number) as [number, number];
  const sides: Side[] = [];
  try {
    for (const tree of trees) {
      const driver = (await import(
        pathToFileURL(join(tree, 'packages/storage/src/redis/index.ts')).href
      )) as Driver;
      if (STEPS) {
        const { ANNOUNCE } = (await import(
          pathToFileURL(join(tree, 'packages/storage/src/redis/scripts.ts')).href
        )) as { ANNOUNCE: Script };
        ANNOUNCE.lua = instrument(ANNOUNCE.lua);
        ANNOUNCE.sha = createHash('sha1').update(ANNOUNCE.lua).digest('hex');
      }
      const server = await startRedis();
      if (REDIS_NICE !== undefined)
        execFileSync('renice', ['-n', REDIS_NICE, '-p', String(server.pid)]);
      const store = await driver.createRedisStore(
        driver.redisStoreConfig({
          REDIS_ADDRESSES: [server.address],
          REDIS_PASSWORD: server.password,
          REDIS_CONNECTIONS_PER_NODE: 2,
          // A loaded machine can hold an answer past the default second.
          REDIS_COMMAND_TIMEOUT_MS: 30_000,
        }),
        { peerLifetimeSeconds: 1860 },
      );
      sides.push({ tree, server, store, usec: [], cpu: [], inner: [] });
      console.error(`${cell} ${tree}: redis-server pid ${server.pid}, filling`);
      await run(store, torrents * peers, (i) =>
        announceOf(i % torrents, Math.floor(i / torrents), 'started'),
      );
    }
    console.error(`${cell}: measuring`);
    if (STEPS) await sides[0]!.server.cli('DEL', 'steps');
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        await side.server.cli('CONFIG', 'RESETSTAT');
        const pid = side.server.pid!;
        const c0 = cpuNs(pid);
        await run(side.store, CALLS, () => {
          const pair = Math.floor(Math.random() * torrents * peers);
          const completed = Math.random() * 1000 < COMPLETED_PER_MILLE;
          return announceOf(
            pair % torrents,
            Math.floor(pair / torrents),
            completed ? 'completed' : 'none',
          );
        });
        const c1 = cpuNs(pid);
        const { calls, usec, inner } = await evalshaStats(side.server);
        side.usec.push(usec / calls);
        side.inner.push(inner / calls);
        side.cpu.push((c1 - c0) / 1000 / calls);
      }
    }
    if (STEPS) {
      const sums = (await sides[0]!.server.cli('HGETALL', 'steps')).trim().split('\n');
      const calls = Number(sums[sums.indexOf('calls') + 1]);
      for (const [name] of PROBES)
        console.log(
          `${cell.padEnd(13)} step ${name.padEnd(30)} ${(Number(sums[sums.indexOf(name) + 1]) / calls).toFixed(2).padStart(7)} us`,
        );
    }
    for (const [k, side] of sides.entries()) {
      const name = k === 0 ? 'this' : `arg${k}`;
      console.log(
        `${cell.padEnd(13)} ${name.padEnd(5)} ${median(side.usec).toFixed(2).padStart(8)} ${Math.min(
          ...side.usec,
        )
          .toFixed(2)
          .padStart(8)}          ${median(side.cpu).toFixed(2).padStart(8)} ${Math.min(...side.cpu)
          .toFixed(2)
          .padStart(8)}        ${side.usec.map((u) => u.toFixed(2)).join(' ')}`,
      );
    }
    for (const [k, side] of sides.entries())
      console.log(
        `${cell.padEnd(13)} ${(k === 0 ? 'this' : `arg${k}`).padEnd(5)} commands run by the script per call ${median(side.inner).toFixed(2)}`,
      );
    for (let k = 1; k < sides.length; k++) {
      const ratios = sides[0]!.usec.map((u, r) => u / sides[k]!.usec[r]!);
      const cpuRatios = sides[0]!.cpu.map((u, r) => u / sides[k]!.cpu[r]!);
      console.log(
        `${cell.padEnd(13)} this/arg${k}: usec_per_call per round ${ratios.map((x) => x.toFixed(2)).join(' ')} (median ${median(ratios).toFixed(2)}); redis CPU ${cpuRatios.map((x) => x.toFixed(2)).join(' ')} (median ${median(cpuRatios).toFixed(2)})`,
      );
    }
  } finally {
    for (const side of sides) {
      await side.store.close();
      await side.server.close();
    }
  }
}
