// The shared-memory store used by several worker threads at once, as the
// gateway's workers use it: concurrent announces to the same swarms, peers
// seen across threads, and threads that die holding a lock.
import { afterEach, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { addressOf, announceOf, decodePeers, infoHashOf } from '../../test/conformance.ts';
import type { PeerSpec } from '../../test/conformance.ts';
import { isStoreError } from '../errors.ts';
import type { Family } from '../types.ts';
import {
  auditSharedMemoryStore,
  createSharedMemoryStore,
  type SharedMemoryHandle,
  type SharedMemoryStore,
} from './index.ts';
import {
  ENTRY_WORDS,
  E_FAM4,
  E_STATE,
  F_REC,
  F_SIZE,
  H_MAX_OWNERS,
  REC_SIZE4,
  R_KEY,
  S_TABLE,
  TABLE_HEADER_WORDS,
  T_CAP,
  controlLayout,
} from './layout.ts';

/** Worker start-up loads TypeScript; generous for a loaded machine, never a performance bound. */
const WORKER_TEST_MS = 180_000;
const WORKER = new URL('../../test/shared-memory-worker.ts', import.meta.url);
const workers = new Set<Worker>();

function spawn(data: Record<string, unknown>): Worker {
  const w = new Worker(WORKER, { workerData: data });
  workers.add(w);
  w.once('exit', () => workers.delete(w));
  return w;
}

afterEach(async () => {
  await Promise.all([...workers].map((w) => w.terminate()));
});

/**
 * A worker that takes `shard`'s lock (-1: the rate counters') and exits
 * holding it; resolves with its thread id once it has exited.
 */
async function diedHolding(handle: SharedMemoryHandle, shard: number): Promise<number> {
  const w = spawn({ script: 'hold', handle, shard });
  const threadId = w.threadId;
  await once(w, 'exit');
  return threadId;
}

/** What `p` rejects with; undefined when it resolves. */
const rejectionOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

interface WorkerResult {
  seeders: number;
  leechers: number;
  downloadCounted: boolean;
  peers: Uint8Array;
}

/**
 * Starts a worker per script (each given the shared `go` flag), releases
 * them all at once, and resolves with what each posts under `field`.
 */
async function releasedTogether<T>(
  scripts: Array<Record<string, unknown>>,
  field: 'results' | 'totals',
): Promise<T[]> {
  const go = new SharedArrayBuffer(4);
  const started = scripts.map((script) => {
    const w = spawn({ ...script, go });
    const ready = once(w, 'message');
    const done = new Promise<T>((resolve, reject) => {
      w.on('message', (m: Record<string, unknown>) => {
        if (m[field] !== undefined) resolve(m[field] as T);
      });
      w.once('error', reject);
    });
    return { ready, done };
  });
  await Promise.all(started.map((s) => s.ready));
  Atomics.store(new Int32Array(go), 0, 1);
  Atomics.notify(new Int32Array(go), 0);
  return Promise.all(started.map((s) => s.done));
}

/** Runs one announce script per list in its own worker, all released at once; resolves with each worker's results. */
function announceFromWorkers(
  handle: SharedMemoryHandle,
  lists: PeerSpec[][],
): Promise<WorkerResult[][]> {
  return releasedTogether<WorkerResult[]>(
    lists.map((specs) => ({ script: 'announce', handle, announces: specs.map(announceOf) })),
    'results',
  );
}

const endpoint = (peer: number, family: Family, port = 6881): string =>
  decodePeers(
    Buffer.concat([addressOf(peer, family), Buffer.from([port >> 8, port & 0xff])]),
    family,
  )[0]!;

describe('shared-memory store across worker threads', () => {
  let store: SharedMemoryStore | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });
  /** A shared-memory store that afterEach closes. */
  const open = (
    options: Parameters<typeof createSharedMemoryStore>[0],
  ): ReturnType<typeof createSharedMemoryStore> => {
    const created = createSharedMemoryStore(options);
    store = created.store;
    return created;
  };

  it(
    'four workers announcing to the same swarms at once lose, duplicate and double-count nothing',
    async () => {
      const created = open({ peerLifetimeSeconds: 3600, shards: 4 });
      const SWARMS = 4;
      const lists: PeerSpec[][] = [];
      for (let w = 0; w < 4; w++) {
        const specs: PeerSpec[] = [];
        for (let i = 0; i < 400; i++) {
          const peer = 1000 * (w + 1) + i;
          const family: Family = i % 7 === 0 ? 6 : 4;
          const swarm = 1 + (i % SWARMS);
          specs.push({ swarm, peer, family, event: 'started' });
          // Every worker also announces the same shared peers, which complete: one download each.
          if (i < 100)
            specs.push({
              swarm: 1 + (i % SWARMS),
              peer: 50_000 + i,
              seeder: true,
              event: 'completed',
            });
          if (i % 5 === 0) specs.push({ swarm, peer, family, event: 'stopped' });
        }
        lists.push(specs);
      }
      const results = await announceFromWorkers(created.handle, lists);
      expect(results.flat().filter((r) => r.downloadCounted)).toHaveLength(100);

      const expected = new Map<number, { v4: Set<string>; v6: Set<string>; seeders: number }>();
      for (let s = 1; s <= SWARMS; s++)
        expected.set(s, { v4: new Set(), v6: new Set(), seeders: 0 });
      for (let w = 0; w < 4; w++)
        for (let i = 0; i < 400; i++) {
          if (i % 5 === 0) continue;
          const family: Family = i % 7 === 0 ? 6 : 4;
          const e = expected.get(1 + (i % SWARMS))!;
          (family === 4 ? e.v4 : e.v6).add(endpoint(1000 * (w + 1) + i, family));
        }
      for (let i = 0; i < 100; i++) {
        const e = expected.get(1 + (i % SWARMS))!;
        e.v4.add(endpoint(50_000 + i, 4));
        e.seeders++;
      }
      const counts = await created.store.scrape(
        Array.from({ length: SWARMS }, (_, s) => infoHashOf(s + 1)),
      );
      for (let s = 1; s <= SWARMS; s++) {
        const e = expected.get(s)!;
        expect(counts[s - 1]).toEqual({
          seeders: e.seeders,
          leechers: e.v4.size + e.v6.size - e.seeders,
          downloaded: 25,
          partialSeeds: 0,
        });
        // One leecher asking for everyone gets every peer exactly once.
        for (const family of [4, 6] as const) {
          const r = await created.store.announce(
            announceOf({ swarm: s, peer: 900_000, family, numWant: 10_000 }),
          );
          const got = decodePeers(r.peers, family);
          expect(new Set(got).size).toBe(got.length);
          expect(new Set(got)).toEqual(family === 4 ? e.v4 : e.v6);
          await created.store.announce(
            announceOf({ swarm: s, peer: 900_000, family, event: 'stopped' }),
          );
        }
      }
      const stats = await created.store.stats();
      let v4 = 0;
      let v6 = 0;
      for (const e of expected.values()) {
        v4 += e.v4.size;
        v6 += e.v6.size;
      }
      expect(stats).toEqual({
        torrents: SWARMS,
        seeders: { v4: 100, v6: 0 },
        leechers: { v4: v4 - 100, v6 },
      });
      expect(auditSharedMemoryStore(created.store)).toEqual([]);
    },
    WORKER_TEST_MS,
  );

  it(
    'a peer announced through one worker is returned through another',
    async () => {
      const created = open({ peerLifetimeSeconds: 3600 });
      await announceFromWorkers(created.handle, [[{ peer: 1, seeder: true }]]);
      const [[r]] = (await announceFromWorkers(created.handle, [[{ peer: 2 }]])) as [
        [WorkerResult],
      ];
      expect(decodePeers(Buffer.from(r.peers), 4)).toEqual([endpoint(1, 4)]);
      expect(r).toMatchObject({ seeders: 1, leechers: 1 });
    },
    WORKER_TEST_MS,
  );

  it(
    'a lock held by a thread that exited is taken over once the thread is declared exited',
    async () => {
      const created = open({
        peerLifetimeSeconds: 3600,
        shards: 1,
        lockTimeoutMs: 200,
      });
      await created.store.announce(announceOf({ peer: 1 }));
      const threadId = await diedHolding(created.handle, 0);
      const err = await rejectionOf(created.store.announce(announceOf({ peer: 2 })));
      expect(isStoreError(err) && err.code).toBe('STORE_ERR_UNAVAILABLE');
      expect(created.store.threadExited(threadId)).toBe(1);
      expect(created.store.threadExited(threadId)).toBe(0);
      expect(await created.store.announce(announceOf({ peer: 2 }))).toMatchObject({ leechers: 2 });
      expect(auditSharedMemoryStore(created.store)).toEqual([]);
    },
    WORKER_TEST_MS,
  );

  it(
    'rate counts added by four workers at once are exact, and every answer is a distinct total',
    async () => {
      const created = open({ peerLifetimeSeconds: 3600 });
      const keys = ['4-0a000001', '4-0a000002', '6-20010db800000001'];
      const totals = await releasedTogether<number[]>(
        [0, 1, 2, 3].map(() => ({
          script: 'rate',
          handle: created.handle,
          window: 5,
          keys,
          rounds: 250,
        })),
        'totals',
      );
      for (let k = 0; k < keys.length; k++) {
        const seen = totals.flatMap((t) => t.filter((_, i) => i % keys.length === k));
        // 1000 adds of 1 to the key: the answers are 1..1000, each once.
        expect(new Set(seen).size).toBe(1000);
        expect(Math.min(...seen)).toBe(1);
        expect(Math.max(...seen)).toBe(1000);
      }
      expect(await created.store.addRateCounts(6, 10_000, keys, [1, 1, 1])).toEqual({
        current: [1, 1, 1],
        previous: [1000, 1000, 1000],
      });
    },
    WORKER_TEST_MS,
  );

  it(
    'a rate-counter lock held by a thread that exited is taken over, with the counts cleared',
    async () => {
      const created = open({ peerLifetimeSeconds: 3600, lockTimeoutMs: 200 });
      await created.store.addRateCounts(5, 10_000, ['4-0a000001'], [7]);
      const threadId = await diedHolding(created.handle, -1);
      const err = await rejectionOf(created.store.addRateCounts(5, 10_000, ['4-0a000001'], [1]));
      expect(isStoreError(err) && err.code).toBe('STORE_ERR_UNAVAILABLE');
      // Announces never wait for the rate counters' lock.
      expect(await created.store.announce(announceOf({ peer: 1 }))).toMatchObject({ leechers: 1 });
      expect(created.store.threadExited(threadId)).toBe(1);
      // The dead thread may have been mid-rebuild: the table starts again empty.
      expect(await created.store.addRateCounts(5, 10_000, ['4-0a000001'], [1])).toEqual({
        current: [1],
        previous: [0],
      });
      expect(await created.store.addRateCounts(5, 10_000, ['4-0a000001'], [1])).toEqual({
        current: [2],
        previous: [0],
      });
    },
    WORKER_TEST_MS,
  );

  it(
    'a shard a thread died in the middle of changing is repaired by the thread that takes it over',
    async () => {
      const created = open({
        peerLifetimeSeconds: 3600,
        shards: 1,
        lockTimeoutMs: 200,
      });
      // More peers than INDEX_FROM, each with a key: the repair rebuilds both indexes.
      const N = 40;
      const all = Array.from({ length: N }, (_, k) => k + 1);
      for (const p of all)
        await created.store.announce(announceOf({ peer: p, seeder: p === 1, key: p }));
      await created.store.announce(
        announceOf({ swarm: 2, peer: 9, event: 'completed', seeder: true }),
      );
      const threadId = await diedHolding(created.handle, 0);
      // What the thread had done when it died: removing peer 1 (the seeder), it had
      // copied the last record over it but not yet cut the size; moving swarm 2 in
      // the table, it had copied the entry but not yet cleared the old slot.
      const heap = new Int32Array(created.handle.heap);
      const ctl = new Int32Array(created.handle.control);
      const { shardBase } = controlLayout(1, ctl[H_MAX_OWNERS]!);
      const t = ctl[shardBase + S_TABLE]! >> 2;
      const entryOf = (swarm: number): number => {
        const h = infoHashOf(swarm);
        for (let slot = 0; slot < heap[t + T_CAP]!; slot++) {
          const e = t + TABLE_HEADER_WORDS + slot * ENTRY_WORDS;
          if (
            heap[e + E_STATE] === 1 &&
            [0, 1, 2, 3, 4].every((k) => heap[e + k] === h.readInt32LE(k * 4))
          )
            return e;
        }
        throw new Error(`swarm ${swarm} not found`);
      };
      const f = entryOf(1) + E_FAM4;
      const rec = heap[f + F_REC]!;
      const size = heap[f + F_SIZE]!;
      const u8 = new Uint8Array(created.handle.heap);
      const first = all.find((p) =>
        Buffer.from(u8.subarray(rec + R_KEY, rec + R_KEY + 4)).equals(addressOf(p, 4)),
      );
      expect(first).toBeDefined();
      u8.copyWithin(rec, rec + (size - 1) * REC_SIZE4, rec + size * REC_SIZE4);
      const e2 = entryOf(2);
      for (let slot = 0; slot < heap[t + T_CAP]!; slot++) {
        const e = t + TABLE_HEADER_WORDS + slot * ENTRY_WORDS;
        if (heap[e + E_STATE] === 0) {
          heap.copyWithin(e, e2, e2 + ENTRY_WORDS);
          break;
        }
      }
      created.store.threadExited(threadId);
      const gone = first!;
      const r = await created.store.announce(announceOf({ peer: 100, numWant: 50 }));
      expect(decodePeers(r.peers, 4).sort()).toEqual(
        all
          .filter((p) => p !== gone)
          .map((p) => endpoint(p, 4))
          .sort(),
      );
      const seeders = gone === 1 ? 0 : 1;
      expect(r).toMatchObject({ seeders, leechers: N - seeders });
      // The key index was rebuilt too: a keyed client moving replaces its entry.
      const mover = gone === 2 ? 3 : 2;
      const moved = await created.store.announce(
        announceOf({ peer: mover, from: 200, key: mover, numWant: 100 }),
      );
      expect(moved).toMatchObject({ seeders, leechers: N - seeders });
      expect(decodePeers(moved.peers, 4)).not.toContain(endpoint(mover, 4));
      expect(await created.store.scrape([infoHashOf(2)])).toEqual([
        { seeders: 1, leechers: 0, downloaded: 1, partialSeeds: 0 },
      ]);
      expect(auditSharedMemoryStore(created.store)).toEqual([]);
    },
    WORKER_TEST_MS,
  );

  it(
    'workers terminated at random points in a stream of announces leave a consistent store',
    async () => {
      const created = open({
        peerLifetimeSeconds: 3600,
        shards: 2,
        lockTimeoutMs: 30_000,
      });
      for (let round = 0; round < 4; round++) {
        const progress = new SharedArrayBuffer(4);
        const counter = new Int32Array(progress);
        const churners = [0, 1].map((k) =>
          spawn({ script: 'churn', handle: created.handle, progress, seed: round * 2 + k + 1 }),
        );
        const target = 2000 + round * 1500;
        // Bounded: the churners add about a thousand per millisecond-scale slice; the limit is generous.
        for (let i = 0; i < 6000 && Atomics.load(counter, 0) < target; i++)
          await new Promise((resolve) => setTimeout(resolve, 10));
        expect(Atomics.load(counter, 0)).toBeGreaterThanOrEqual(target);
        for (const w of churners) {
          const threadId = w.threadId;
          await w.terminate();
          created.store.threadExited(threadId);
        }
        // A sweep locks every shard, taking over whatever the dead threads held.
        await created.store.collectGarbage();
        expect(auditSharedMemoryStore(created.store)).toEqual([]);
        const stats = await created.store.stats();
        const hashes = Array.from({ length: 64 }, (_, s) => {
          const h = Buffer.alloc(20, 0xa5);
          h.writeUInt32BE(s, 0);
          return h;
        });
        const counts = await created.store.scrape(hashes);
        const sum = counts.reduce((n, c) => n + c.seeders + c.leechers, 0);
        expect(sum).toBe(
          stats.seeders.v4 + stats.seeders.v6 + stats.leechers.v4 + stats.leechers.v6,
        );
        expect(stats.torrents).toBe(counts.filter((c) => c.seeders + c.leechers > 0).length);
      }
    },
    WORKER_TEST_MS,
  );
});
