// Every query and the schema itself replaced from config, as MoChi allows
// (docs/postgres.md: a custom schema and custom queries pass the suite too).
// This schema differs from the default on purpose: its own SQL schema and
// names, the family as 4/6, last-seen times instead of expiry times, and
// ORDER BY random() sampling.
import { runSql, startPostgres, type PostgresServer } from '@shoal/testing/postgres';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { announceOf } from '../../test/conformance.ts';
import {
  describeDataStoreConformance,
  describePeerStoreConformance,
} from '../../test/conformance.ts';
import type { PostgresStoreConfigInput } from './config.ts';
import { createPostgresStore } from './store.ts';

const FAMILY = `CASE WHEN @is_v6 THEN 6 ELSE 4 END`;
const LIVE = `last_seen > @now::INT8 - @peer_lifetime_ms::INT8`;
const SELF = `ih = @info_hash AND fam = ${FAMILY} AND ip = @address AND prt = @port`;

const CUSTOM: Omit<PostgresStoreConfigInput, 'DATABASE_URL'> = {
  // The conformance suite checks answers, not deadlines (conformance.test.ts).
  PG_STATEMENT_TIMEOUT_MS: 30_000,
  PG_QUERY_MIGRATE: `
    CREATE SCHEMA IF NOT EXISTS tracker;
    CREATE TABLE IF NOT EXISTS tracker.peers (
      ih BYTEA NOT NULL, fam INT2 NOT NULL, ip BYTEA NOT NULL, prt INT4 NOT NULL,
      pid BYTEA NOT NULL, seed BOOLEAN NOT NULL, last_seen INT8 NOT NULL,
      PRIMARY KEY (ih, fam, ip, prt));
    CREATE INDEX IF NOT EXISTS peers_last_seen ON tracker.peers (last_seen);
    CREATE TABLE IF NOT EXISTS tracker.downloads (ih BYTEA PRIMARY KEY, n INT8 NOT NULL);
    CREATE TABLE IF NOT EXISTS tracker.settings (ns TEXT, k TEXT, v TEXT NOT NULL, PRIMARY KEY (ns, k));`,
  PG_QUERY_ANNOUNCE: `
    WITH prev AS (SELECT seed FROM tracker.peers WHERE ${SELF} AND ${LIVE}),
    up AS (
      INSERT INTO tracker.peers (ih, fam, ip, prt, pid, seed, last_seen)
      VALUES (@info_hash, ${FAMILY}, @address, @port, @peer_id, @is_seeder, @now)
      ON CONFLICT (ih, fam, ip, prt) DO UPDATE SET pid = excluded.pid, seed = excluded.seed, last_seen = excluded.last_seen),
    dl AS (
      INSERT INTO tracker.downloads (ih, n)
      SELECT @info_hash::BYTEA, 1 WHERE @completed AND NOT EXISTS (SELECT 1 FROM prev WHERE seed)
      ON CONFLICT (ih) DO UPDATE SET n = tracker.downloads.n + 1 RETURNING n),
    live AS (SELECT fam, ip, prt, pid, seed FROM tracker.peers WHERE ih = @info_hash AND ${LIVE} AND NOT (${SELF}))
    SELECT
      (SELECT count(*) FROM live WHERE seed) + CASE WHEN @is_seeder THEN 1 ELSE 0 END AS seeders,
      (SELECT count(*) FROM live WHERE NOT seed) + CASE WHEN @is_seeder THEN 0 ELSE 1 END AS leechers,
      COALESCE((SELECT n FROM dl), (SELECT n FROM tracker.downloads WHERE ih = @info_hash), 0) AS downloaded,
      s.ip AS address, s.prt AS port, s.pid AS peer_id
    FROM (SELECT 1) AS one
    LEFT JOIN (
      SELECT ip, prt, pid FROM live WHERE fam = ${FAMILY} AND NOT (@is_seeder AND seed)
      ORDER BY random() LIMIT @numwant
    ) s ON true`,
  PG_QUERY_ANNOUNCE_STOPPED: `
    WITH gone AS (DELETE FROM tracker.peers WHERE ${SELF}),
    live AS (SELECT seed FROM tracker.peers WHERE ih = @info_hash AND ${LIVE} AND NOT (${SELF}))
    SELECT (SELECT count(*) FROM live WHERE seed) AS seeders, (SELECT count(*) FROM live WHERE NOT seed) AS leechers,
      COALESCE((SELECT n FROM tracker.downloads WHERE ih = @info_hash), 0) AS downloaded,
      NULL::BYTEA AS address, NULL::INT4 AS port, NULL::BYTEA AS peer_id`,
  PG_QUERY_SCRAPE: `
    SELECT h.ih AS info_hash,
      (SELECT count(*) FROM tracker.peers p WHERE p.ih = h.ih AND p.${LIVE} AND p.seed) AS seeders,
      (SELECT count(*) FROM tracker.peers p WHERE p.ih = h.ih AND p.${LIVE} AND NOT p.seed) AS leechers,
      COALESCE((SELECT n FROM tracker.downloads d WHERE d.ih = h.ih), 0) AS downloaded
    FROM unnest(@info_hashes::BYTEA[]) AS h(ih)`,
  PG_QUERY_GC: `
    WITH removed AS (
      DELETE FROM tracker.peers WHERE (ih, fam, ip, prt) IN (
        SELECT ih, fam, ip, prt FROM tracker.peers WHERE NOT (${LIVE}) LIMIT @limit)
      RETURNING ih)
    SELECT count(*) AS peers_removed,
      (SELECT count(DISTINCT r.ih) FROM removed r
       WHERE NOT EXISTS (SELECT 1 FROM tracker.peers q WHERE q.ih = r.ih AND q.${LIVE})) AS swarms_removed
    FROM removed`,
  PG_QUERY_STATS: `
    SELECT count(DISTINCT ih) AS torrents,
      count(*) FILTER (WHERE seed AND fam = 4) AS seeders_v4, count(*) FILTER (WHERE seed AND fam = 6) AS seeders_v6,
      count(*) FILTER (WHERE NOT seed AND fam = 4) AS leechers_v4, count(*) FILTER (WHERE NOT seed AND fam = 6) AS leechers_v6
    FROM tracker.peers WHERE ${LIVE}`,
  PG_QUERY_TOP_SWARMS: `
    SELECT ih AS info_hash, count(*) FILTER (WHERE seed) AS seeders, count(*) FILTER (WHERE NOT seed) AS leechers
    FROM tracker.peers WHERE ${LIVE} GROUP BY ih ORDER BY count(*) DESC LIMIT @limit`,
  PG_QUERY_KV_GET: `SELECT v AS value FROM tracker.settings WHERE ns = @context AND k = @key`,
  PG_QUERY_KV_PUT: `INSERT INTO tracker.settings (ns, k, v) VALUES (@context, @key, @value)
    ON CONFLICT (ns, k) DO UPDATE SET v = excluded.v`,
  PG_QUERY_KV_DELETE: `DELETE FROM tracker.settings WHERE ns = @context AND k = @key`,
  PG_QUERY_KV_LIST: `SELECT k AS key, v AS value FROM tracker.settings WHERE ns = @context`,
  PG_QUERY_PING: `SELECT 1 FROM tracker.settings LIMIT 1`,
};

let server: PostgresServer;
let peersUrl: string;
let kvUrl: string;
beforeAll(async () => {
  server = await startPostgres();
  peersUrl = await server.createDatabase();
  kvUrl = await server.createDatabase();
});
afterAll(async () => {
  await server?.stop();
});

const truncate = (url: string): Promise<void> =>
  runSql(url, 'TRUNCATE tracker.peers, tracker.downloads, tracker.settings');

// These queries return no `counted` column and keep downloads in their own
// table: storage-api's split backends cannot use them (docs/storage-api.md).
describePeerStoreConformance(
  'postgres, custom schema and queries',
  async (opts) => {
    const store = await createPostgresStore({ DATABASE_URL: peersUrl, ...CUSTOM }, opts);
    await truncate(peersUrl);
    return store;
  },
  // Last-seen times cannot carry a per-peer lifetime (docs/load.md).
  // Without PG_QUERY_ANNOUNCE_MOVE custom queries move nothing (docs/postgres.md).
  { downloadCounter: false, promisedLifetimes: false, partialSeeds: false, moves: false },
);

describeDataStoreConformance('postgres, custom schema and queries', async () => {
  const store = await createPostgresStore(
    { DATABASE_URL: kvUrl, ...CUSTOM },
    { peerLifetimeSeconds: 60 },
  );
  await truncate(kvUrl);
  return store;
});

it('the custom schema is what holds the data: no default table was created', async () => {
  const store = await createPostgresStore(
    { DATABASE_URL: peersUrl, ...CUSTOM },
    { peerLifetimeSeconds: 60 },
  );
  try {
    await store.announce(announceOf({ peer: 1 }));
  } finally {
    await store.close();
  }
  const client = new pg.Client({ connectionString: peersUrl });
  await client.connect();
  try {
    const tables = await client.query<{ t: string }>(
      "SELECT schemaname || '.' || tablename AS t FROM pg_tables WHERE schemaname IN ('public', 'tracker') ORDER BY 1",
    );
    expect(tables.rows.map((r) => r.t)).toEqual([
      'tracker.downloads',
      'tracker.peers',
      'tracker.settings',
    ]);
    expect((await client.query('SELECT 1 FROM tracker.peers')).rowCount).toBe(1);
  } finally {
    await client.end();
  }
});
