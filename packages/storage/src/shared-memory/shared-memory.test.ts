import {
  describeDataStoreConformance,
  describePeerStoreConformance,
} from '../../test/conformance.ts';
import { attachSharedMemoryStore, createSharedMemoryStore } from './index.ts';

// Peer moves (a key per announce) are not followed yet: docs/storage.md "Shared-memory store".
describePeerStoreConformance(
  'shared memory',
  (opts) => Promise.resolve(createSharedMemoryStore(opts).store),
  { moves: false },
);
describePeerStoreConformance(
  'shared memory, one shard, attached',
  (opts) => {
    const { handle, store } = createSharedMemoryStore({ ...opts, shards: 1 });
    void store.close();
    return Promise.resolve(attachSharedMemoryStore(handle, { clock: opts.clock }));
  },
  { moves: false },
);
describeDataStoreConformance('shared memory', () =>
  Promise.resolve(createSharedMemoryStore({ peerLifetimeSeconds: 60 }).store),
);
