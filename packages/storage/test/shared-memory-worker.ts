// A worker thread attached to a shared-memory store, driven by
// packages/storage/src/shared-memory/workers.test.ts. Scripts:
//   announce: waits for `go`, runs the given announces, posts their counts and peers
//   churn:    announces, stops and scrapes at random until terminated, counting in `progress`
//   rate:     waits for `go`, adds `rounds` counts of 1 to each key, posts every total it was answered
//   hold:     takes shard `shard`'s lock (-1: the rate counters' lock) as its own and exits holding it
import { parentPort, workerData } from 'node:worker_threads';
import type { PeerAnnounce } from '../src/types.ts';
import { attachSharedMemoryStore, type SharedMemoryHandle } from '../src/shared-memory/index.ts';
import {
  H_MAX_OWNERS,
  H_RATE_LOCK,
  H_NEXT_OWNER,
  H_SHARDS,
  S_LOCK,
  SHARD_WORDS,
  controlLayout,
} from '../src/shared-memory/layout.ts';

type Script =
  | {
      script: 'announce';
      handle: SharedMemoryHandle;
      go: SharedArrayBuffer;
      announces: PeerAnnounce[];
    }
  | { script: 'churn'; handle: SharedMemoryHandle; progress: SharedArrayBuffer; seed: number }
  | {
      script: 'rate';
      handle: SharedMemoryHandle;
      go: SharedArrayBuffer;
      window: number;
      keys: string[];
      rounds: number;
    }
  | { script: 'hold'; handle: SharedMemoryHandle; shard: number };

const data = workerData as Script;
const port = parentPort!;

/** Buffers arrive as Uint8Arrays from structured clone. */
function revive(a: PeerAnnounce): PeerAnnounce {
  const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  return { ...a, infoHash: buf(a.infoHash), peerId: buf(a.peerId), address: buf(a.address) };
}

const store = attachSharedMemoryStore(data.handle);
switch (data.script) {
  case 'announce': {
    const announces = data.announces.map(revive);
    port.postMessage({ ready: true });
    const go = new Int32Array(data.go);
    // Bounded: the test sets the flag right after every worker is ready.
    while (Atomics.load(go, 0) === 0) Atomics.wait(go, 0, 0, 1000);
    const results = announces.map((a) => {
      const r = store.announceSync(a);
      return {
        seeders: r.seeders,
        leechers: r.leechers,
        downloadCounted: r.downloadCounted,
        peers: r.peers,
      };
    });
    await store.close();
    port.postMessage({ results });
    break;
  }
  case 'churn': {
    const progress = new Int32Array(data.progress);
    let x = data.seed >>> 0;
    const rand = () => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x / 4294967296;
    };
    const a: PeerAnnounce = {
      infoHash: Buffer.alloc(20, 0xa5),
      peerId: Buffer.alloc(20, 1),
      family: 4,
      address: Buffer.alloc(4),
      port: 6881,
      seeder: false,
      event: 'none',
      numWant: 30,
      withPeerIds: false,
    };
    // Runs until the test terminates this thread, at whatever point it has reached.
    for (;;) {
      a.infoHash.writeUInt32BE(Math.floor(rand() * 64), 0);
      const peer = Math.floor(rand() * 300);
      a.family = rand() < 0.2 ? 6 : 4;
      a.address = Buffer.alloc(a.family === 4 ? 4 : 16);
      a.address.writeUInt32BE(0x0a000000 + peer, 0);
      const r = rand();
      a.event = r < 0.3 ? 'stopped' : r < 0.4 ? 'completed' : 'none';
      a.seeder = a.event === 'completed' || rand() < 0.3;
      store.announceSync(a);
      if (r > 0.95) store.scrapeSync([a.infoHash]);
      Atomics.add(progress, 0, 1);
    }
  }
  case 'rate': {
    port.postMessage({ ready: true });
    const go = new Int32Array(data.go);
    while (Atomics.load(go, 0) === 0) Atomics.wait(go, 0, 0, 1000);
    const totals: number[] = [];
    for (let r = 0; r < data.rounds; r++) {
      const got = await store.addRateCounts(
        data.window,
        10_000,
        data.keys,
        data.keys.map(() => 1),
      );
      totals.push(...got.current);
    }
    await store.close();
    port.postMessage({ totals });
    break;
  }
  case 'hold': {
    const ctl = new Int32Array(data.handle.control);
    const me = Atomics.load(ctl, H_NEXT_OWNER);
    const { shardBase } = controlLayout(ctl[H_SHARDS]!, ctl[H_MAX_OWNERS]!);
    const word = data.shard < 0 ? H_RATE_LOCK : shardBase + data.shard * SHARD_WORDS + S_LOCK;
    if (Atomics.compareExchange(ctl, word, 0, me) !== 0) throw new Error('lock not free');
    port.postMessage({ held: word, owner: me });
    // Exits without releasing, as a thread that dies in a critical section would.
    process.exit(0);
  }
}
