// Driver behaviour beyond the shared suite: config validation,
// connection strings, migrations, serialization-failure retries, statement
// timeouts, batched GC, and a database that goes away and comes back.
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announceOf, infoHashOf } from '../../test/conformance.ts';
import { hasRateCounters } from '../capabilities.ts';
import { isStoreError, type StoreError } from '../errors.ts';
import { PostgresConfigError, type PostgresStoreConfigInput } from './config.ts';
import { createPostgresStore, type PostgresStore, type PostgresStoreOptions } from './store.ts';

const LIFETIME = 1860;
let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

async function rejection(p: Promise<unknown>): Promise<StoreError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isStoreError(err)) throw new Error(`expected a StoreError, got ${String(err)}`);
  return err;
}

async function withStore<T>(
  config: Partial<PostgresStoreConfigInput>,
  fn: (store: PostgresStore, url: string) => Promise<T>,
  opts: Partial<PostgresStoreOptions> = {},
): Promise<T> {
  const url = config.DATABASE_URL ?? (await server.createDatabase());
  const store = await createPostgresStore(
    { ...config, DATABASE_URL: url },
    { peerLifetimeSeconds: LIFETIME, ...opts },
  );
  try {
    return await fn(store, url);
  } finally {
    await store.close();
  }
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe('config validation', () => {
  it('lists every problem at once, naming each query, before connecting anywhere', async () => {
    // Where DATABASE_URL points, a listener that counts connections (and never answers).
    let connections = 0;
    const listener = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const { port } = listener.address() as AddressInfo;
    const err = await rejection(
      createPostgresStore(
        {
          DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/nowhere`,
          PG_POOL_SIZE: 0,
          PG_QUERY_ANNOUNCE: 'SELECT @info_hash, @bogus',
          PG_QUERY_SCRAPE: 'SELECT 1 WHERE @info_hashes IS NOT NULL',
          PG_QUERY_NOPE: 'SELECT 1',
        } as PostgresStoreConfigInput,
        { peerLifetimeSeconds: LIFETIME },
      ),
    );
    expect(err.code).toBe('STORE_ERR_CONFIG');
    expect(err).toBeInstanceOf(PostgresConfigError);
    const problems = (err as PostgresConfigError).problems;
    expect(problems.map((p) => p.key).sort()).toEqual(['PG_POOL_SIZE', 'PG_QUERY_NOPE']);
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    expect(connections).toBe(0);
  });

  it('reports unknown and missing query parameters with the query key', async () => {
    const err = await rejection(
      createPostgresStore(
        {
          DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere',
          PG_QUERY_ANNOUNCE: 'SELECT @info_hash, @bogus',
          PG_QUERY_SCRAPE: 'SELECT 1 WHERE @info_hashes IS NOT NULL',
        },
        { peerLifetimeSeconds: LIFETIME },
      ),
    );
    const problems = (err as PostgresConfigError).problems;
    const announce = problems.filter((p) => p.key === 'PG_QUERY_ANNOUNCE').map((p) => p.message);
    expect(announce).toEqual([
      expect.stringContaining('unknown parameter @bogus'),
      expect.stringMatching(/missing required parameters .*@numwant/),
    ]);
    expect(problems.filter((p) => p.key === 'PG_QUERY_SCRAPE').map((p) => p.message)).toEqual([
      'missing required parameter @now',
    ]);
  });

  it('accepts a libpq key=value DSN as well as a URL', async () => {
    const url = await server.createDatabase();
    const db = new URL(url).pathname.slice(1);
    const dsn = `host=${server.host} port=${server.port} dbname=${db} user=postgres application_name='shoal dsn'`;
    await withStore({ DATABASE_URL: dsn }, async (store) => {
      await store.put('c', 'k', 'v');
      expect(await store.get('c', 'k')).toBe('v');
    });
    expect(await sql<{ value: string }>(url, 'SELECT value FROM shoal_kv')).toEqual([
      { value: 'v' },
    ]);
  });
});

describe('migrations', () => {
  it('are idempotent and keep existing data', async () => {
    await withStore({}, async (store, url) => {
      await store.announce(announceOf({ peer: 1, seeder: true, event: 'completed' }));
      await store.put('approved', 'k', 'v');
      expect(await store.migrate()).toEqual({ applied: [] });
      const second = await createPostgresStore(
        { DATABASE_URL: url },
        { peerLifetimeSeconds: LIFETIME },
      );
      await second.close();
      expect(await store.scrape([infoHashOf(1)])).toEqual([
        { seeders: 1, leechers: 0, downloaded: 1, partialSeeds: 0 },
      ]);
      expect(await store.get('approved', 'k')).toBe('v');
      expect(
        await sql(url, 'SELECT version FROM shoal_schema_migrations ORDER BY version'),
      ).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }]);
    });
  });

  it('replicas migrating the same empty database at once all succeed', async () => {
    const url = await server.createDatabase();
    const stores = await Promise.all(
      Array.from({ length: 4 }, () =>
        createPostgresStore({ DATABASE_URL: url }, { peerLifetimeSeconds: LIFETIME }),
      ),
    );
    await Promise.all(stores.map((s) => s.close()));
    expect(await sql(url, 'SELECT version FROM shoal_schema_migrations ORDER BY version')).toEqual([
      { version: 1 },
      { version: 2 },
      { version: 3 },
      { version: 4 },
      { version: 5 },
    ]);
  });

  it('the migrate command creates the schema, is idempotent, and exits 2 on bad config', async () => {
    const url = await server.createDatabase();
    const cli = fileURLToPath(new URL('./migrate-cli.ts', import.meta.url));
    const run = (env: Record<string, string>) =>
      spawnSync(process.execPath, [cli], {
        env: { PATH: process.env.PATH ?? '', ...env },
        encoding: 'utf8',
      });
    const first = run({ DATABASE_URL: url });
    expect(first.status).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({
      ok: true,
      dialect: 'postgres',
      applied: [1, 2, 3, 4, 5],
    });
    const second = run({ DATABASE_URL: url });
    expect(JSON.parse(second.stdout)).toMatchObject({ ok: true, applied: [] });
    const missing = run({});
    expect(missing.status).toBe(2);
    expect(JSON.parse(missing.stderr)).toMatchObject({ problems: [{ key: 'DATABASE_URL' }] });
    const bad = run({ DATABASE_URL: url, PG_QUERY_KV_GET: 'SELECT @nope' });
    expect(bad.status).toBe(2);
    expect(JSON.parse(bad.stderr)).toMatchObject({
      ok: false,
      problems: [{ key: 'PG_QUERY_KV_GET' }, { key: 'PG_QUERY_KV_GET' }],
    });
  });

  it('PG_MIGRATE_ON_START=false leaves the database untouched', async () => {
    await withStore({ PG_MIGRATE_ON_START: false }, async (store, url) => {
      expect(
        await sql(url, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'shoal_%'"),
      ).toEqual([]);
      expect(await store.migrate()).toEqual({ applied: [1, 2, 3, 4, 5] });
    });
  });
});

describe('serialization failures (SQLSTATE 40001) at SERIALIZABLE', () => {
  const burst = (store: PostgresStore) =>
    Promise.allSettled(
      Array.from({ length: 60 }, (_, i) => store.announce(announceOf({ peer: i + 1 }))),
    );

  it('surface as coded errors without retries, and are absorbed with them', async () => {
    const serializable = { PG_ISOLATION_LEVEL: 'serializable', PG_POOL_SIZE: 8 } as const;
    const failed = await withStore({ ...serializable, PG_RETRY_MAX_ATTEMPTS: 1 }, async (store) => {
      const results = await burst(store);
      return results.filter((r) => r.status === 'rejected').map((r) => r.reason as StoreError);
    });
    expect(failed.length).toBeGreaterThan(0);
    for (const err of failed) {
      expect(err.code).toBe('STORE_ERR_UNAVAILABLE');
      expect((err.cause as pg.DatabaseError).code).toBe('40001');
    }

    const retries: number[] = [];
    await withStore(
      { ...serializable, PG_RETRY_MAX_ATTEMPTS: 20 },
      async (store) => {
        const results = await burst(store);
        expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
        expect(await store.scrape([infoHashOf(1)])).toEqual([
          { seeders: 0, leechers: 60, downloaded: 0, partialSeeds: 0 },
        ]);
      },
      { onRetry: (info) => retries.push(info.delayMs) },
    );
    expect(retries.length).toBeGreaterThan(0);
    // Capped exponential backoff with jitter: never above PG_RETRY_MAX_DELAY_MS.
    expect(Math.max(...retries)).toBeLessThanOrEqual(200);
  });
});

// docs/postgres.md "Shared rate-limit counts"; the shared cases are in the conformance suite.
describe('shared rate-limit counters', () => {
  const counters = (store: PostgresStore) => {
    if (store.addRateCounts === undefined) throw new Error('no rate counters');
    return store.addRateCounts.bind(store);
  };
  const rows = (url: string) =>
    sql<{ rate_window: string; key: string; hits: string }>(
      url,
      'SELECT rate_window, key, hits FROM shoal_rate_counts ORDER BY rate_window, key',
    );

  it('concurrent syncs at SERIALIZABLE raise 40001, surfaced without retries and absorbed with them', async () => {
    const serializable = { PG_ISOLATION_LEVEL: 'serializable', PG_POOL_SIZE: 8 } as const;
    // Every gateway's batch names the same addresses: one sync's upsert
    // conflicts with another's on the same rows.
    const keys = Array.from({ length: 20 }, (_, i) => `4-0a0000${(i + 16).toString(16)}`);
    const burst = (add: ReturnType<typeof counters>) =>
      Promise.allSettled(
        Array.from({ length: 40 }, () =>
          add(
            7,
            10_000,
            keys,
            keys.map(() => 1),
          ),
        ),
      );
    const failed = await withStore({ ...serializable, PG_RETRY_MAX_ATTEMPTS: 1 }, async (store) =>
      (await burst(counters(store)))
        .filter((r) => r.status === 'rejected')
        .map((r) => r.reason as StoreError),
    );
    expect(failed.length).toBeGreaterThan(0);
    for (const err of failed) {
      expect(err.code).toBe('STORE_ERR_UNAVAILABLE');
      expect((err.cause as pg.DatabaseError).code).toBe('40001');
    }

    const retried: string[] = [];
    await withStore(
      { ...serializable, PG_RETRY_MAX_ATTEMPTS: 50 },
      async (store, url) => {
        const results = await burst(counters(store));
        expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
        // Every add counted once, whichever attempt carried it.
        expect(new Set((await rows(url)).map((r) => Number(r.hits)))).toEqual(new Set([40]));
      },
      { onRetry: (info) => retried.push(`${info.code} ${info.query}`) },
    );
    expect(retried).toContain('40001 addRateCounts (built in)');
  });

  it('the first sync of a window deletes the windows before the previous one, of its window length only', async () => {
    await withStore({ PG_GC_BATCH_SIZE: 2 }, async (store, url) => {
      const add = counters(store);
      for (const key of ['4-01', '4-02', '4-03']) await add(10, 10_000, [key], [1]);
      await add(11, 10_000, ['4-01'], [2]);
      await add(3, 60_000, ['4-01'], [5]);
      // A key named twice in one call is one row, its deltas summed.
      expect(await add(12, 10_000, ['4-01', '4-04', '4-01'], [1, 1, 2])).toEqual({
        current: [3, 1, 3],
        previous: [2, 0, 2],
      });
      // The deletion runs beside the syncs; poll for it, bounded.
      let left = await rows(url);
      for (let i = 0; i < 200 && left.some((r) => r.rate_window === '10'); i++) {
        await new Promise((r) => setTimeout(r, 50));
        left = await rows(url);
      }
      expect(left).toEqual([
        { rate_window: '3', key: '4-01', hits: '5' },
        { rate_window: '11', key: '4-01', hits: '2' },
        { rate_window: '12', key: '4-01', hits: '3' },
        { rate_window: '12', key: '4-04', hits: '1' },
      ]);
    });
  });

  it('a custom schema (PG_QUERY_MIGRATE) keeps none, so no caller sends it counts', async () => {
    await withStore(
      { PG_QUERY_MIGRATE: 'CREATE TABLE IF NOT EXISTS own_peers (x INT4)' },
      (store) => Promise.resolve(expect(hasRateCounters(store)).toBe(false)),
    );
  });
});

describe('timeouts', () => {
  it('a statement over PG_STATEMENT_TIMEOUT_MS fails with STORE_ERR_TIMEOUT and the store keeps working', async () => {
    await withStore(
      { PG_STATEMENT_TIMEOUT_MS: 100, PG_QUERY_PING: 'SELECT pg_sleep(60)' },
      async (store) => {
        const started = Date.now();
        expect((await rejection(store.ping())).code).toBe('STORE_ERR_TIMEOUT');
        // The statement would run a minute: ending long before is the timeout at
        // work, however loaded the machine (100 ms is the setting, not the bound).
        expect(Date.now() - started).toBeLessThan(20_000);
        await store.put('c', 'k', 'v');
        expect(await store.get('c', 'k')).toBe('v');
      },
    );
  });
});

describe('garbage collection', () => {
  it('removes expired peers in batches of PG_GC_BATCH_SIZE and spares refreshed ones', async () => {
    let now = Date.UTC(2030, 0, 1);
    await withStore(
      { PG_GC_BATCH_SIZE: 7 },
      async (store, url) => {
        for (let p = 1; p <= 10; p++) await store.announce(announceOf({ swarm: 1, peer: p }));
        for (let p = 11; p <= 19; p++) await store.announce(announceOf({ swarm: 2, peer: p }));
        now += (LIFETIME / 2) * 1000;
        await store.announce(announceOf({ swarm: 1, peer: 1 }));
        now += (LIFETIME / 2 + 1) * 1000;
        expect(await store.collectGarbage()).toEqual({ peersRemoved: 18, swarmsRemoved: 1 });
        expect(await sql(url, 'SELECT count(*)::int AS n FROM shoal_peers')).toEqual([{ n: 1 }]);
        expect(await store.scrape([infoHashOf(1), infoHashOf(2)])).toEqual([
          { seeders: 0, leechers: 1, downloaded: 0, partialSeeds: 0 },
          { seeders: 0, leechers: 0, downloaded: 0, partialSeeds: 0 },
        ]);
      },
      { clock: () => now },
    );
  });
});

describe('database down', () => {
  it('answers STORE_ERR_UNAVAILABLE fast, then recovers without a new store', async () => {
    // A connect timeout far above the bound below: an answer that waited for
    // it instead of failing at the refused connection would be 20 s late.
    await withStore({ PG_CONNECT_TIMEOUT_MS: 20_000 }, async (store) => {
      await store.put('c', 'before', '1');
      await server.stopServer();
      try {
        for (const op of [
          () => store.ping(),
          () => store.announce(announceOf({ peer: 1 })),
          () => store.get('c', 'before'),
        ]) {
          const started = Date.now();
          expect((await rejection(op())).code).toBe('STORE_ERR_UNAVAILABLE');
          expect(Date.now() - started).toBeLessThan(10_000);
        }
      } finally {
        await server.start();
      }
      const deadline = Date.now() + 10_000;
      let recovered = false;
      while (!recovered && Date.now() < deadline) {
        recovered = await store.ping().then(
          () => true,
          () => false,
        );
        if (!recovered) await new Promise((r) => setTimeout(r, 50));
      }
      expect(recovered).toBe(true);
      expect(await store.get('c', 'before')).toBe('1');
      expect(await store.announce(announceOf({ peer: 1 }))).toMatchObject({ leechers: 1 });
    });
  });
});

describe('database hung', () => {
  it('answers STORE_ERR_UNAVAILABLE within statement + connect timeout, then recovers', async () => {
    await withStore({ PG_STATEMENT_TIMEOUT_MS: 300, PG_CONNECT_TIMEOUT_MS: 300 }, async (store) => {
      await store.put('c', 'before', '1');
      // Every pooled connection open, so the calls below wait on live sockets, not on connects.
      await Promise.all(Array.from({ length: 8 }, () => store.get('c', 'before')));
      await server.pause();
      try {
        const started = Date.now();
        const errors = await Promise.all(
          [store.ping(), store.get('c', 'before'), store.announce(announceOf({ peer: 1 }))].map(
            rejection,
          ),
        );
        expect(errors.map((e) => e.code)).toEqual(Array(3).fill('STORE_ERR_UNAVAILABLE'));
        // Under the defaults (5 s statement, 2 s connect) that a store ignoring
        // the 300 ms settings would wait for; the database itself never answers.
        expect(Date.now() - started).toBeLessThan(5000);
      } finally {
        await server.resume();
      }
      const deadline = Date.now() + 10_000;
      let value: string | undefined;
      while (value === undefined && Date.now() < deadline) {
        value = await store.get('c', 'before').catch(() => undefined);
      }
      expect(value).toBe('1');
    });
  });
});

describe('database unreachable at boot', () => {
  it('the store still starts, answers STORE_ERR_UNAVAILABLE, and migrates once the server is back', async () => {
    const url = await server.createDatabase();
    await server.stopServer();
    const errors: unknown[] = [];
    let store: PostgresStore | undefined;
    try {
      store = await createPostgresStore(
        { DATABASE_URL: url },
        { peerLifetimeSeconds: LIFETIME, onError: (err) => errors.push(err) },
      );
      expect((await rejection(store.ping())).code).toBe('STORE_ERR_UNAVAILABLE');
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      await server.start();
    }
    try {
      const deadline = Date.now() + 15_000;
      let result;
      while (result === undefined && Date.now() < deadline) {
        result = await store.announce(announceOf({ peer: 1 })).catch(() => undefined);
        if (result === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      expect(result).toMatchObject({ leechers: 1 });
      expect(
        await sql(url, 'SELECT version FROM shoal_schema_migrations ORDER BY version'),
      ).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }]);
    } finally {
      await store.close();
    }
  });

  it('an SQL error in the migration still fails the boot', async () => {
    const url = await server.createDatabase();
    const err = await rejection(
      createPostgresStore(
        { DATABASE_URL: url, PG_QUERY_MIGRATE: 'CREATE TABLE broken (' },
        { peerLifetimeSeconds: LIFETIME },
      ),
    );
    expect(err.code).toBe('STORE_ERR_UNAVAILABLE');
    expect((err.cause as pg.DatabaseError).code).toBe('42601');
  });
});
