// One storage-api / gc-worker replica booting against PostgreSQL, for
// schema-race.test.ts. With its modules loaded it prints "ready", then for
// each DATABASE_URL read from stdin (one a line, sent to every replica at
// once) runs the migrations (PG_MIGRATE_ON_START, the path migrate-cli takes
// too) and takes a lease (creating the lease table) at the same time, and
// prints one JSON line. Exits when stdin ends.
//   node packages/storage/src/postgres/boot-replica.ts
import { createInterface } from 'node:readline';
import { isStoreError } from '../errors.ts';
import { createPostgresLeaseLock } from '../locks/postgres.ts';
import { createPostgresStore } from './store.ts';

async function boot(url: string): Promise<string> {
  const results = await Promise.allSettled([
    createPostgresStore({ DATABASE_URL: url }, { peerLifetimeSeconds: 60 }).then((s) => s.close()),
    createPostgresLeaseLock({ DATABASE_URL: url }).then(async (lock) => {
      try {
        return (await lock.acquire('boot', `replica-${process.pid}`, 60_000)).held;
      } finally {
        await lock.close();
      }
    }),
  ]);
  const errors = results.flatMap((r) =>
    r.status === 'rejected'
      ? [
          {
            code: isStoreError(r.reason) ? r.reason.code : 'STORE_ERR_INTERNAL',
            message: r.reason instanceof Error ? r.reason.message : String(r.reason),
          },
        ]
      : [],
  );
  const lease = results[1];
  return JSON.stringify({
    ok: errors.length === 0,
    held: lease.status === 'fulfilled' ? lease.value : null,
    errors,
  });
}

process.stdout.write('ready\n');
for await (const url of createInterface({ input: process.stdin })) {
  process.stdout.write(`${await boot(url)}\n`);
}
