// Download counts and KV are the durable part of Shoal's data (docs/decisions.md
// "Storage"). This server runs with fsync on, and is restarted while writes
// are in flight: every write the store acknowledged must be there afterwards,
// and the same store object must carry on.
import { startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announceOf, infoHashOf } from '../../test/conformance.ts';
import { isStoreError } from '../errors.ts';
import { createPostgresStore } from './store.ts';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres({ fsync: true });
});
afterAll(async () => {
  await server?.stop();
});

describe('PostgreSQL restart mid-run', () => {
  it('loses nothing committed and the store recovers by itself', async () => {
    const url = await server.createDatabase();
    const store = await createPostgresStore({ DATABASE_URL: url }, { peerLifetimeSeconds: 1860 });
    try {
      for (let p = 1; p <= 3; p++)
        await store.announce(announceOf({ peer: p, seeder: true, event: 'completed' }));

      const acknowledged: string[] = [];
      const failures: unknown[] = [];
      let completedDownloads = 3;
      let stop = false;
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          const key = `k${String(i).padStart(6, '0')}`;
          try {
            await store.put('passkeys', key, `v${i}`);
            acknowledged.push(key);
            // Peers are ephemeral, but the download count they add is not.
            await store.announce(announceOf({ peer: 1000 + i, seeder: true, event: 'completed' }));
            completedDownloads++;
          } catch (err) {
            failures.push(err);
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      })();

      const waitFor = async (n: number): Promise<void> => {
        const deadline = Date.now() + 15_000;
        while (acknowledged.length < n && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 10));
      };
      await waitFor(20);
      const beforeRestart = acknowledged.length;
      await server.restart();
      await waitFor(beforeRestart + 20);
      stop = true;
      await writer;

      // Writes after the restart went through the same store object.
      expect(acknowledged.length).toBeGreaterThanOrEqual(beforeRestart + 20);
      // What failed during the restart failed with a code, not a crash.
      for (const err of failures)
        expect(isStoreError(err) && err.code).toBe('STORE_ERR_UNAVAILABLE');

      const listed = new Set((await store.list('passkeys')).map(([k]) => k));
      for (const key of acknowledged) expect(listed.has(key)).toBe(true);
      // Every announce that was acknowledged counted; one cut short by the restart may or may not have.
      const [swarm] = await store.scrape([infoHashOf(1)]);
      expect(swarm?.downloaded).toBeGreaterThanOrEqual(completedDownloads);
      expect(swarm?.downloaded).toBeLessThanOrEqual(completedDownloads + failures.length);
    } finally {
      await store.close();
    }

    // A fresh store (a new process) reads the same durable data.
    const again = await createPostgresStore({ DATABASE_URL: url }, { peerLifetimeSeconds: 1860 });
    try {
      expect(await again.get('passkeys', 'k000000')).toBe('v0');
    } finally {
      await again.close();
    }
  });
});
