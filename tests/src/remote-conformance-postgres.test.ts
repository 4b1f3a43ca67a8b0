// The storage conformance suite against the gateway's remote store
// (STORAGE_DRIVER=remote) -> a real storage-api on loopback -> PostgreSQL
// started by @shoal/testing.
import { afterAll, beforeAll, describe } from 'vitest';
import { describePeerStoreConformance } from '@shoal/storage/conformance';
import { createPostgresStore } from '@shoal/storage/postgres';
import { runSql, startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import { remoteStoreFactory } from './harness/remote-store.ts';

describe('remote store on PostgreSQL', () => {
  let server: PostgresServer;
  let url: string;
  beforeAll(async () => {
    server = await startPostgres();
    url = await server.createDatabase();
  });
  afterAll(async () => {
    await server?.stop();
  });

  describePeerStoreConformance(
    'remote -> storage-api -> postgres',
    remoteStoreFactory({
      driver: 'postgres',
      env: () => ({ DATABASE_URL: url }),
      backend: async (o) => {
        // The suite checks answers, not deadlines: its 500 concurrent
        // announces outlast the 5 s statement timeout on a loaded machine.
        const store = await createPostgresStore(
          { DATABASE_URL: url, PG_STATEMENT_TIMEOUT_MS: 30_000 },
          o,
        );
        // Emptied after the store's migrations ran: each test starts on an empty store.
        await runSql(url, 'TRUNCATE shoal_peers, shoal_downloads, shoal_kv');
        return store;
      },
    }),
    { downloadCounter: false },
  );
});
