import {
  describeDataStoreConformance,
  describePeerStoreConformance,
} from '../../test/conformance.ts';
import { attachSharedMemoryStore, createSharedMemoryStore } from './index.ts';

describePeerStoreConformance('shared memory', (opts) =>
  Promise.resolve(createSharedMemoryStore(opts).store),
);
describePeerStoreConformance('shared memory, one shard, attached', (opts) => {
  const { handle, store } = createSharedMemoryStore({ ...opts, shards: 1 });
  void store.close();
  return Promise.resolve(attachSharedMemoryStore(handle, { clock: opts.clock }));
});
describeDataStoreConformance('shared memory', () =>
  Promise.resolve(createSharedMemoryStore({ peerLifetimeSeconds: 60 }).store),
);
