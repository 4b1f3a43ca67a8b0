// What the client-facing features of docs/decisions.md "Client features
// beyond BEP 3" cost on the announce path, each measured in isolation as
// bench/policy-chain-cost.ts measures the policy chain: the same work with the
// feature on and off, interleaved, the median of per-round differences, ns per announce.
//   node bench/peer-features-cost.ts [ANNOUNCES]
import { randomBytes } from 'node:crypto';
import {
  banKeyOf,
  compilePolicy,
  createRateLimiter,
  createSharedRateLimiter,
  EMPTY_SNAPSHOT,
} from '@shoal/policy';
import { encodeHttpAnnounceResponse, type PeerAnnounce } from '@shoal/protocol';
import { createMemoryStore } from '@shoal/storage/memory';
// The gateway's own function, not a copy: the row measures what an announce runs.
import { peerKeyHash } from '../services/announce-gateway/src/tracker/peer-key.ts';

const n = Number(process.argv[2] ?? 1_000_000);

type Case = (on: boolean) => number;

/** ns per call of `body(on, i)`, its results folded into a sink so nothing is optimised away. */
function timed(body: (on: boolean, i: number) => number): Case {
  return (on) => {
    let sink = 0;
    // CPU time, not wall time: on this shared machine a descheduled loop would count the wait.
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) sink += body(on, i);
    const used = process.cpuUsage(start);
    const ns = ((used.user + used.system) * 1000) / n;
    if (sink === 42) console.log('');
    return ns;
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Rounds alternate on and off; the cost is the median of the per-round
 * differences, so a round slowed by another process on this shared machine
 * moves both halves of its own difference.
 */
function measure(name: string, run: Case, rounds = 15): void {
  for (let round = 0; round < 2; round++) {
    run(true);
    run(false);
  }
  const on: number[] = [];
  const off: number[] = [];
  const diff: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const a = round % 2 === 0 ? run(true) : run(false);
    const b = round % 2 === 0 ? run(false) : run(true);
    const [onNs, offNs] = round % 2 === 0 ? [a, b] : [b, a];
    on.push(onNs);
    off.push(offNs);
    diff.push(onNs - offNs);
  }
  const sorted = [...diff].sort((x, y) => x - y);
  const q = (f: number) => sorted[Math.floor(f * (sorted.length - 1))]!.toFixed(0);
  console.log(
    `${name}: ${median(diff).toFixed(0)} ns per announce (quartiles ${q(0.25)}..${q(0.75)}; on ${median(on).toFixed(0)}, off ${median(off).toFixed(0)}; ${rounds} rounds x ${n})`,
  );
}

// BEP 24: the HTTP answer with and without `external ip` (a compact answer of 50 IPv4 peers).
const peers = randomBytes(50 * 6);
const sources = Array.from({ length: 256 }, (_, i) => Buffer.from([198, 51, 100, i]));
measure(
  'external ip (BEP 24), HTTP answer of 50 peers',
  timed(
    (on, i) =>
      encodeHttpAnnounceResponse({
        interval: 1800,
        minInterval: 900,
        complete: 10,
        incomplete: 40,
        downloaded: 3,
        family: 4,
        peers,
        peerIds: undefined,
        compact: true,
        noPeerId: false,
        externalIp: on ? sources[i & 255]! : undefined,
      }).length,
  ),
);

// Hybrid links (docs/policy.md "Hybrid torrents"): the swarm lookup each
// announce makes with HYBRID_LINKS on, against a snapshot of 100,000 links;
// half the announced hashes are linked.
const linked = Array.from({ length: 100_000 }, () => [randomBytes(20), randomBytes(20)] as const);
const policy = compilePolicy({
  ...EMPTY_SNAPSHOT,
  links: linked.map(([a, b]) => [a.toString('hex'), b.toString('hex')]),
});
const announced = Array.from({ length: 4096 }, (_, i) =>
  i % 2 === 0 ? linked[i]![1] : randomBytes(20),
);
measure(
  'hybrid links (HYBRID_LINKS), swarm lookup among 100k links',
  timed((on, i) => {
    const hash = announced[i & 4095]!;
    return (on ? policy.swarmOf(hash) : hash)[0]!;
  }),
);

// Bans (docs/policy.md "Abuse control"): the check each request makes with
// ABUSE_BANS on while the snapshot holds 1,000 bans (none of these sources).
const banned = compilePolicy({
  ...EMPTY_SNAPSHOT,
  bans: Array.from({ length: 1000 }, (_, i) => [
    banKeyOf(4, Buffer.from([10, 0, i >> 8, i & 255])),
    Date.now() + 3_600_000,
  ]),
});
const sourcesV4 = Array.from({ length: 4096 }, () => randomBytes(4));
const nowMs = Date.now();
measure(
  'bans (ABUSE_BANS), check among 1,000 bans',
  timed((on, i) => {
    const source = sourcesV4[i & 4095]!;
    return on ? (banned.bannedUntil(banKeyOf(4, source), nowMs) ?? 1) : source[0]!;
  }),
);

// BEP 21: a memory-store announce of a partial seed against the same announce
// of a plain leecher, in a swarm of 200 peers (a fifth seeders, a tenth partial
// seeds), 50 peers asked. What it shows: the role flag, the third count and
// the sample that skips partial seeds cost a partial seed no more than a
// seeder's leechers-only sample; a plain leecher pays only the role check.
const store = createMemoryStore({ peerLifetimeSeconds: 3600 });
const swarm = randomBytes(20);
const peer = (i: number, role: 'leecher' | 'seeder' | 'partial'): PeerAnnounce => {
  const address = Buffer.from([10, 1, (i >> 8) & 0xff, i & 0xff]);
  return {
    infoHash: swarm,
    peerId: randomBytes(20),
    family: 4,
    address,
    port: 6881,
    seeder: role === 'seeder',
    partialSeed: role === 'partial',
    event: 'none',
    numWant: 50,
    withPeerIds: false,
  };
};
for (let i = 0; i < 200; i++)
  store.announceSync(peer(i, i % 5 === 0 ? 'seeder' : i % 10 === 1 ? 'partial' : 'leecher'));
const asPartial = Array.from({ length: 20 }, (_, i) => peer(1 + 10 * i, 'partial'));
const asLeecher = Array.from({ length: 20 }, (_, i) => peer(2 + 10 * i, 'leecher'));
measure(
  'partial seed (BEP 21) vs leecher, memory store announce, swarm of 200, numwant 50',
  timed((on, i) => store.announceSync((on ? asPartial : asLeecher)[i % 20]!).peers.length),
);
await store.close();

// Shared rate limits (docs/policy.md "Shared rate limits"): the rate-limit
// step's decision with the replica's bucket alone (off) and with the shared
// window after it (on), over 10,000 client addresses, a limit no one reaches.
// Then the gateway's own share of a sync (building the batch of 4096 keys and
// applying the totals; the transport and the store's work are not in it): it
// runs on a timer, not on the announce path, but it is the gateway's CPU too.
{
  const addresses = Array.from({ length: 10_000 }, (_, i) =>
    Buffer.from([10, (i >> 16) & 255, (i >> 8) & 255, i & 255]),
  );
  const bucket = createRateLimiter({ ratePerSecond: 1e6, burst: 1e6, maxAddresses: 100_000 });
  const shared = createSharedRateLimiter({
    limit: 1e9,
    windowMs: 10_000,
    maxAddresses: 100_000,
    maxKeysPerSync: 4096,
  });
  const echo = (_w: number, _ms: number, _keys: string[], deltas: number[]) =>
    Promise.resolve({ current: deltas, previous: deltas });
  const t0 = Date.now();
  measure(
    'shared rate limit decision (bucket, then the shared window), 10,000 addresses',
    timed((on, i) => {
      const a = addresses[i % 10_000]!;
      const now = t0 + (i >> 10);
      const ok = bucket.take(4, a, now) && (!on || shared.take(4, a, now));
      return ok ? 1 : 0;
    }),
  );
  // The sync: 4096 announces of distinct addresses, then one sync of them.
  const syncRounds = 200;
  const timeSync = async (on: boolean): Promise<number> => {
    const start = process.cpuUsage();
    for (let r = 0; r < syncRounds; r++) {
      const now = t0 + r;
      for (let k = 0; k < 4096; k++) shared.take(4, addresses[(r * 4096 + k) % 10_000]!, now);
      // Off: the same takes and one await, no sync (the dirty list holds each address once).
      if (on) await shared.sync(now, echo);
      else await Promise.resolve();
    }
    const used = process.cpuUsage(start);
    return ((used.user + used.system) * 1000) / (syncRounds * 4096);
  };
  const diffs: number[] = [];
  for (let round = 0; round < 9; round++)
    diffs.push((await timeSync(true)) - (await timeSync(false)));
  console.log(
    `shared rate limit sync, the gateway's share (4096 keys a sync): ${median(diffs).toFixed(0)} ns per announce synced (9 rounds)`,
  );
}

// Peers that move (docs/decisions.md "Peers that move"): a memory-store
// re-announce in place with a key against the same announce without one, in
// a swarm of 200 (above the key index's threshold), 50 peers asked. The "on"
// side also computes the key hash with the gateway's own peerKeyHash
// (SipHash-2-4 of peer_id and key), so the row is the whole cost on the
// announce path of an embedded gateway.
const moves = createMemoryStore({ peerLifetimeSeconds: 3600 });
const keyed = Array.from({ length: 200 }, (_, i) => ({
  ...peer(i, 'leecher'),
  key: (0x10000000 + i).toString(16),
}));
for (const k of keyed) moves.announceSync(k);
measure(
  'peers that move: keyed re-announce (key hash + key index) vs keyless, memory store, swarm of 200, numwant 50',
  timed((on, i) => {
    const { key, ...a } = keyed[i % 200]!;
    const keyHash = on ? peerKeyHash(a.peerId, key) : undefined;
    // Both sides build the announce object, as the gateway does per request.
    return moves.announceSync(keyHash === undefined ? { ...a } : { ...a, keyHash }).peers.length;
  }),
);
await moves.close();

// What partial-seed support costs the announces that do not use it: this
// tree's memory store against a copy of the store from before it, the same
// leecher and seeder announces on each, interleaved. Given the copy's
// packages/storage/src (git archive <commit> packages/storage/src | tar -x -C DIR).
const base = process.env.BASE_STORAGE_SRC;
if (base !== undefined) {
  type Store = ReturnType<typeof createMemoryStore>;
  const mod = (await import(`${base}/memory/index.ts`)) as {
    createMemoryStore: typeof createMemoryStore;
  };
  const fill = (s: Store) => {
    for (let i = 0; i < 200; i++) s.announceSync(peer(i, i % 5 === 0 ? 'seeder' : 'leecher'));
    return s;
  };
  const now = fill(createMemoryStore({ peerLifetimeSeconds: 3600 }));
  const before = fill(mod.createMemoryStore({ peerLifetimeSeconds: 3600 }));
  const mixed = Array.from({ length: 20 }, (_, i) =>
    peer(5 * i + (i % 2), i % 2 === 0 ? 'seeder' : 'leecher'),
  );
  measure(
    'memory store announce with partial-seed support vs before it (leechers and seeders, swarm of 200, numwant 50)',
    timed((on, i) => (on ? now : before).announceSync(mixed[i % 20]!).peers.length),
  );
  await now.close();
  await before.close();
}
