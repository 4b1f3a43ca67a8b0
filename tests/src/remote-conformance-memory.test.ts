// The storage conformance suite against the gateway's remote store
// (STORAGE_DRIVER=remote): the gateway's client -> a real storage-api on
// loopback -> the memory store, which keeps peer ids. Every rule an embedded
// store keeps, a gateway on the split topology keeps too.
import { describePeerStoreConformance } from '@shoal/storage/conformance';
import { createMemoryStore } from '@shoal/storage/memory';
import { remoteStoreFactory } from './harness/remote-store.ts';

// Download counts are storage-api's business (downloadCounted does not travel
// on the batch wire), so the DownloadCounter rules stay with the drivers.
describePeerStoreConformance(
  'remote -> storage-api -> memory',
  remoteStoreFactory({
    driver: 'memory',
    backend: (o) => Promise.resolve(createMemoryStore(o)),
  }),
  { downloadCounter: false },
);
