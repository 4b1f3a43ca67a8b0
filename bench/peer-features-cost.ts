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
import {
  encodeHttpAnnounceResponse,
  parseAddressParam,
  parseAnnounceQuery,
  type PeerAnnounce,
} from '@shoal/protocol';
import { createMemoryStore } from '@shoal/storage/memory';
import { createSharedMemoryStore } from '@shoal/storage/shared-memory';
import type { SyncAnnounce } from '@shoal/storage';
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

// Peers that move (docs/decisions.md "Peers that move"): a re-announce in
// place with a key against the same announce without one, in a swarm of 200
// (above the key index's threshold), 50 peers asked. The "on" side also
// computes the key hash with the gateway's own peerKeyHash (SipHash-2-4 of
// peer_id and key), so the row is the whole cost on the announce path of an
// embedded gateway. On the memory store, then on the shared-memory store the
// gateway's worker threads share (docs/storage.md "Shared-memory store"),
// then the keyed re-announce on one store against the other.
const keyed = Array.from({ length: 200 }, (_, i) => ({
  ...peer(i, 'leecher'),
  key: (0x10000000 + i).toString(16),
}));
const keyedAnnounce = (store: SyncAnnounce, on: boolean, i: number): number => {
  const { key, ...a } = keyed[i % 200]!;
  const keyHash = on ? peerKeyHash(a.peerId, key) : undefined;
  // Both sides build the announce object, as the gateway does per request.
  return store.announceSync(keyHash === undefined ? { ...a } : { ...a, keyHash }).peers.length;
};
const moves = createMemoryStore({ peerLifetimeSeconds: 3600 });
const sharedMoves = createSharedMemoryStore({ peerLifetimeSeconds: 3600 }).store;
for (const store of [moves, sharedMoves]) for (const k of keyed) store.announceSync(k);
for (const [label, store] of [
  ['memory store', moves],
  ['shared-memory store', sharedMoves],
] as const)
  measure(
    `peers that move: keyed re-announce (key hash + key index) vs keyless, ${label}, swarm of 200, numwant 50`,
    timed((on, i) => keyedAnnounce(store, on, i)),
  );
measure(
  'peers that move: keyed re-announce, shared-memory store vs memory store, swarm of 200, numwant 50',
  timed((on, i) => keyedAnnounce(on ? sharedMoves : moves, true, i)),
);
await moves.close();
await sharedMoves.close();

// BEP 7 addresses (docs/decisions.md "BEP 7 addresses"). Off (the default):
// what a libtorrent query carrying `ipv6=` costs the query parser against the
// same query without it (the value is kept as text, never judged). On: an
// IPv4 announce with `ipv6=` against the same announce without it, as the
// gateway runs it on the memory store: parseAddressParam, the second store
// announce (the IPv6 entry) and the answer's `peers6`; swarm of 200 per
// family, numwant 50.
{
  const base7 =
    `info_hash=${'%ab'.repeat(20)}&peer_id=-qB4650-A1b2C3d4E5f6&port=6881&uploaded=0` +
    '&downloaded=0&left=1048576&corrupt=0&key=5A3C1B2D&numwant=50&compact=1&no_peer_id=1';
  const with7 = `${base7}&ipv6=2001%3Adb8%3A%3A7`;
  measure(
    'BEP 7 off: parsing a query that carries ipv6= vs one without',
    timed((on) => parseAnnounceQuery(on ? with7 : base7).port),
  );
  const dual = createMemoryStore({ peerLifetimeSeconds: 3600 });
  const swarm7 = randomBytes(20);
  const at = (i: number, family: 4 | 6): PeerAnnounce => ({
    infoHash: swarm7,
    peerId: randomBytes(20),
    family,
    address:
      family === 4
        ? Buffer.from([10, 7, (i >> 8) & 0xff, i & 0xff])
        : Buffer.from([
            0x20,
            1,
            0x0d,
            0xb8,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            (i >> 8) & 0xff,
            i & 0xff,
          ]),
    port: 6881,
    seeder: i % 5 === 0,
    event: 'none',
    numWant: 50,
    withPeerIds: false,
  });
  // The 20 announcing clients re-announce in place in both families, as a BEP 7 client does.
  const clients = Array.from({ length: 20 }, (_, i) => at(1 + 10 * i, 4));
  const texts = Array.from(
    { length: 20 },
    (_, i) => `2001%3Adb8%3A%3A${(1 + 10 * i).toString(16)}`,
  );
  for (let i = 0; i < 200; i++) {
    const client = i % 10 === 1 ? clients[(i - 1) / 10]! : undefined;
    dual.announceSync(client ?? at(i, 4));
    dual.announceSync(
      client === undefined
        ? at(i, 6)
        : { ...client, family: 6, address: parseAddressParam(texts[(i - 1) / 10]!, 6).bytes },
    );
  }
  const answer = (own: Buffer, other: Buffer | undefined) =>
    encodeHttpAnnounceResponse({
      interval: 1800,
      minInterval: 900,
      complete: 80,
      incomplete: 320,
      downloaded: 3,
      family: 4,
      peers: own,
      peerIds: undefined,
      otherPeers: other,
      compact: true,
      noPeerId: true,
    }).length;
  measure(
    'BEP 7 on: IPv4 announce with ipv6= (parse, second store announce, peers6) vs without, memory store, swarm of 200 per family, numwant 50',
    timed((on, i) => {
      const a = clients[i % 20]!;
      const own = dual.announceSync({ ...a });
      if (!on) return answer(own.peers, undefined);
      const v6 = parseAddressParam(texts[i % 20]!, 6);
      const other = dual.announceSync({ ...a, family: 6, address: v6.bytes });
      return answer(own.peers, other.peers);
    }),
  );
  await dual.close();
}

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
