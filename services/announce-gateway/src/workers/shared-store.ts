// The memory store with workers (docs/workers.md "Stores"): the main thread
// makes one shared-memory store and every worker attaches to it. What the
// config asks of the store that the shared-memory store cannot do yet is
// found here by trying it, so the gateway stops saying so once it can.
import { PEER_KEY_HASH_SIZE } from '@shoal/protocol';
import {
  createSharedMemoryStore,
  hasRateCounters,
  type PeerAnnounce,
  type SharedMemoryStore,
  type SyncAnnounce,
} from '@shoal/storage';
import type { GatewayConfig } from '../config.ts';

export interface SharedStoreFit {
  /** Why the gateway must run one worker on the memory driver instead; undefined: the shared store will do. */
  oneWorker: string | undefined;
  /** What works differently on the shared store (logged as warnings at boot). */
  warnings: string[];
}

/** Whether `store` (the shared-memory store just made) serves `config` with workers. */
export function sharedStoreFit(
  config: Pick<GatewayConfig, 'RATE_LIMIT_SHARED' | 'MOVE_PEERS_BY_KEY'>,
  store: SharedMemoryStore,
): SharedStoreFit {
  const warnings: string[] = [];
  // A gateway refuses RATE_LIMIT_SHARED on a store without the counters, so a
  // worker would never start: one worker on the memory driver keeps it exact.
  const oneWorker =
    config.RATE_LIMIT_SHARED && !hasRateCounters(store)
      ? 'RATE_LIMIT_SHARED: the shared-memory store keeps no rate-limit counters yet, running 1 worker on the memory store (docs/workers.md "Stores")'
      : undefined;
  if (oneWorker === undefined && config.MOVE_PEERS_BY_KEY && !sharedStoreMovesPeers())
    warnings.push(
      'MOVE_PEERS_BY_KEY: the shared-memory store does not move peers by key yet; a client that changes address is a new peer until its old entry expires (docs/workers.md "Stores")',
    );
  return { oneWorker, warnings };
}

/** movesPeers on a shared-memory store of its own (2 MiB, one shard), thrown away after. */
export function sharedStoreMovesPeers(): boolean {
  const { store } = createSharedMemoryStore({
    peerLifetimeSeconds: 60,
    shards: 1,
    maxMemoryBytes: 2 << 20,
    maxKvBytes: 1 << 16,
    maxOwners: 1,
  });
  try {
    return movesPeers(store);
  } finally {
    void store.close();
  }
}

/**
 * One client (peer_id and key hash) announcing from two addresses to an
 * empty `store`: one peer if the store moves it (docs/decisions.md "Peers
 * that move"), two if it does not.
 */
export function movesPeers(store: SyncAnnounce): boolean {
  const first: PeerAnnounce = {
    infoHash: Buffer.alloc(20, 1),
    peerId: Buffer.alloc(20, 2),
    family: 4,
    address: Buffer.from([10, 0, 0, 1]),
    port: 6881,
    seeder: false,
    event: 'started',
    numWant: 0,
    withPeerIds: false,
    keyHash: Buffer.alloc(PEER_KEY_HASH_SIZE, 3),
  };
  store.announceSync(first);
  const moved = store.announceSync({ ...first, address: Buffer.from([10, 0, 0, 2]) });
  return moved.leechers === 1;
}
