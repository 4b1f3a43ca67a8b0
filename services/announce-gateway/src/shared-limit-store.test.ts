// Which embedded stores RATE_LIMIT_SHARED starts on (docs/policy.md "Shared
// rate limits"): PostgreSQL with the built-in schema keeps the counters, a
// custom schema (PG_QUERY_MIGRATE) keeps none and the gateway refuses to boot
// rather than limit each replica alone without saying so. The limit itself,
// across processes, is tests/src/shared-rate-limit.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresStore, type PostgresStoreConfigInput } from '@shoal/storage/postgres';
import { startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import { makeGateway } from '../test/support.ts';

const SHARED = {
  RATE_LIMIT_ANNOUNCES_PER_SECOND: '4',
  RATE_LIMIT_SHARED: 'true',
};

describe('RATE_LIMIT_SHARED on an embedded PostgreSQL store', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  const store = async (extra: Partial<PostgresStoreConfigInput> = {}) =>
    createPostgresStore(
      { DATABASE_URL: await server.createDatabase(), ...extra },
      { peerLifetimeSeconds: 1860 },
    );

  it('starts with the built-in schema', async () => {
    const storage = await store();
    let gateway: ReturnType<typeof makeGateway> | undefined;
    try {
      expect(() => (gateway = makeGateway(SHARED, { storage }))).not.toThrow();
    } finally {
      await (gateway?.close() ?? storage.close());
    }
  });

  it('is refused at boot, naming the reason, with a custom schema', async () => {
    const storage = await store({ PG_QUERY_MIGRATE: 'CREATE TABLE IF NOT EXISTS own (x INT4)' });
    try {
      expect(() => makeGateway(SHARED, { storage })).toThrow(
        /RATE_LIMIT_SHARED: the postgres store keeps no shared rate-limit counters.*PG_QUERY_MIGRATE/,
      );
    } finally {
      await storage.close();
    }
  });
});
