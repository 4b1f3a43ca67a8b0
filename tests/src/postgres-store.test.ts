// The PostgreSQL store through the gateway: the same aria2 transfer as the memory store,
// with peers, downloads and KV in a real PostgreSQL started by the test.
import { startPostgres } from '@shoal/testing/postgres';
import { describeAria2Transfer } from './harness/aria2-transfer.ts';

describeAria2Transfer('postgres store', async () => {
  const pg = await startPostgres();
  return {
    env: { STORAGE_DRIVER: 'postgres', DATABASE_URL: await pg.createDatabase() },
    stop: () => pg.stop(),
  };
});
