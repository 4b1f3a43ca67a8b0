// The default schema's queries, each replaceable from config (as
// MoChi allows). Written in the SQL subset PostgreSQL and CockroachDB share;
// only GC differs by dialect. Times are milliseconds since the epoch passed
// in as @now/@expires, never the server's now(): the gateway's clock decides
// liveness, so tests can move it and replicas agree with the memory driver.
import type { ParamSpec } from './sql.ts';

export type Dialect = 'postgres' | 'cockroach';

export const QUERY_NAMES = [
  'announce',
  'announceStopped',
  'announceMove',
  'scrape',
  'gc',
  'stats',
  'topSwarms',
  'kvGet',
  'kvPut',
  'kvDelete',
  'kvList',
  'ping',
] as const;
export type QueryName = (typeof QUERY_NAMES)[number];

/** Config key of each query override. */
export const QUERY_CONFIG_KEYS = {
  announce: 'PG_QUERY_ANNOUNCE',
  announceStopped: 'PG_QUERY_ANNOUNCE_STOPPED',
  announceMove: 'PG_QUERY_ANNOUNCE_MOVE',
  scrape: 'PG_QUERY_SCRAPE',
  gc: 'PG_QUERY_GC',
  stats: 'PG_QUERY_STATS',
  topSwarms: 'PG_QUERY_TOP_SWARMS',
  kvGet: 'PG_QUERY_KV_GET',
  kvPut: 'PG_QUERY_KV_PUT',
  kvDelete: 'PG_QUERY_KV_DELETE',
  kvList: 'PG_QUERY_KV_LIST',
  ping: 'PG_QUERY_PING',
} as const satisfies Record<QueryName, string>;

// @peer_lifetime_ms lets a custom schema store last-seen times instead of expiry times.
const PEER_PARAMS = [
  'info_hash',
  'peer_id',
  'is_v6',
  'address',
  'port',
  'is_seeder',
  'is_partial_seed',
  'event',
  'now',
  'peer_lifetime_ms',
  'key_hash',
] as const;

/**
 * Parameters each query may use and must use. Result columns each query must
 * return are documented in docs/postgres.md ("Custom queries").
 */
export const QUERY_PARAMS: Record<QueryName, ParamSpec> = {
  announce: {
    allowed: [
      ...PEER_PARAMS,
      'completed',
      'created',
      'expires',
      'numwant',
      'sample_key',
      'random_start',
    ],
    required: ['info_hash', 'is_v6', 'address', 'port', 'is_seeder', 'now', 'numwant'],
  },
  announceStopped: {
    allowed: [...PEER_PARAMS],
    required: ['info_hash', 'is_v6', 'address', 'port', 'now'],
  },
  announceMove: {
    allowed: [...PEER_PARAMS],
    required: ['info_hash', 'is_v6', 'address', 'port', 'key_hash', 'now'],
  },
  scrape: { allowed: ['info_hashes', 'now', 'peer_lifetime_ms'], required: ['info_hashes', 'now'] },
  gc: { allowed: ['now', 'peer_lifetime_ms', 'limit'], required: ['now', 'limit'] },
  stats: { allowed: ['now', 'peer_lifetime_ms'], required: ['now'] },
  topSwarms: { allowed: ['now', 'peer_lifetime_ms', 'limit'], required: ['now', 'limit'] },
  kvGet: { allowed: ['context', 'key'], required: ['context', 'key'] },
  kvPut: { allowed: ['context', 'key', 'value'], required: ['context', 'key', 'value'] },
  kvDelete: { allowed: ['context', 'key'], required: ['context', 'key'] },
  kvList: { allowed: ['context'], required: ['context'] },
  ping: { allowed: [], required: [] },
};

// Counts of the live peers of the announcer's swarm other than the announcer,
// in one pass; the announcer's own row is added from its parameters because
// every part of one statement reads the snapshot taken before the
// statement's own writes. The announce needs nothing about moves here: the
// move statement before it already ran.
const OTHERS = `
  SELECT
    COALESCE(sum(CASE WHEN is_seeder THEN 1 ELSE 0 END), 0) AS seeders,
    COALESCE(sum(CASE WHEN is_seeder THEN 0 ELSE 1 END), 0) AS leechers,
    COALESCE(sum(CASE WHEN is_partial_seed THEN 1 ELSE 0 END), 0) AS partial_seeds
  FROM shoal_peers
  WHERE info_hash = @info_hash AND expires_at > @now
    AND NOT (is_v6 = @is_v6 AND address = @address AND port = @port)`;

// A stopped client's row of its family bound to its key hash is the client
// too: the stop removes it in the same statement (docs/decisions.md "Peers
// that move").
const OTHERS_STOPPED = `${OTHERS}
    AND NOT COALESCE(is_v6 = @is_v6 AND key_hash = @key_hash::BYTEA, false)`;

const COUNTS = (
  announcerSeeder: string,
  announcerLeecher: string,
  announcerPartial: string,
  downloaded: string,
): string => `
  SELECT
    (o.seeders + ${announcerSeeder})::INT4 AS seeders,
    (o.leechers + ${announcerLeecher})::INT4 AS leechers,
    (o.partial_seeds + ${announcerPartial})::INT4 AS partial_seeds,
    (${downloaded})::INT8 AS downloaded
  FROM others o`;

// Random sample without ORDER BY random(): read forward from a random
// sample_key and wrap around to the start (docs/decisions.md "Sources"), both
// halves served by the (info_hash, is_v6, sample_key) index. Seeders and
// BEP 21 partial seeds get downloading leechers only; nobody gets themself
// (docs/decisions.md "Tracker semantics", "Client features beyond BEP 3").
const SAMPLE_HALF = (cmp: string, pass: number): string => `
    (SELECT address, port, peer_id, sample_key, ${pass} AS pass FROM shoal_peers
     WHERE info_hash = @info_hash AND is_v6 = @is_v6 AND sample_key ${cmp} @random_start
       AND expires_at > @now
       AND NOT (address = @address AND port = @port)
       AND NOT ((@is_seeder OR @is_partial_seed) AND (is_seeder OR is_partial_seed))
     ORDER BY sample_key LIMIT @numwant)`;

const ANNOUNCE = `
WITH prev AS (
  SELECT is_seeder FROM shoal_peers
  WHERE info_hash = @info_hash AND is_v6 = @is_v6 AND address = @address AND port = @port
    AND expires_at > @now
), upserted AS (
  INSERT INTO shoal_peers AS p
    (info_hash, is_v6, address, port, peer_id, is_seeder, is_partial_seed, expires_at, sample_key, key_hash)
  VALUES (@info_hash, @is_v6, @address, @port, @peer_id, @is_seeder, @is_partial_seed, @expires, @sample_key, @key_hash)
  ON CONFLICT (info_hash, is_v6, address, port) DO UPDATE SET
    peer_id = excluded.peer_id,
    is_seeder = excluded.is_seeder,
    is_partial_seed = excluded.is_partial_seed,
    expires_at = excluded.expires_at,
    key_hash = excluded.key_hash
  RETURNING 1
), counted AS (
  -- event=completed counts once per peer: a live stored seeder repeating it adds nothing (docs/decisions.md, Tracker semantics).
  INSERT INTO shoal_downloads AS d (info_hash, downloaded)
  SELECT @info_hash::BYTEA, 1 WHERE @completed AND NOT EXISTS (SELECT 1 FROM prev WHERE is_seeder)
  ON CONFLICT (info_hash) DO UPDATE SET downloaded = d.downloaded + 1
  RETURNING downloaded
), others AS (${OTHERS}
), counts AS (${COUNTS(
  'CASE WHEN @is_seeder THEN 1 ELSE 0 END',
  'CASE WHEN @is_seeder THEN 0 ELSE 1 END',
  'CASE WHEN @is_partial_seed THEN 1 ELSE 0 END',
  'COALESCE((SELECT downloaded FROM counted), (SELECT downloaded FROM shoal_downloads WHERE info_hash = @info_hash), 0)',
)}
), candidates AS (${SAMPLE_HALF('>=', 0)}
  UNION ALL${SAMPLE_HALF('<', 1)}
), sample AS (
  SELECT address, port, peer_id FROM candidates ORDER BY pass, sample_key LIMIT @numwant
)
SELECT c.seeders, c.leechers, c.partial_seeds, c.downloaded, s.address, s.port, s.peer_id,
  (SELECT count(*) FROM counted)::INT4 AS counted
FROM counts c LEFT JOIN sample s ON true`;

// A client that moved and stops from its new address leaves nothing behind.
const ANNOUNCE_STOPPED = `
WITH removed AS (
  DELETE FROM shoal_peers
  WHERE info_hash = @info_hash AND is_v6 = @is_v6
    AND ((address = @address AND port = @port) OR key_hash = @key_hash::BYTEA)
  RETURNING 1
), others AS (${OTHERS_STOPPED}
), counts AS (${COUNTS('0', '0', '0', 'COALESCE((SELECT downloaded FROM shoal_downloads WHERE info_hash = @info_hash), 0)')}
)
SELECT seeders, leechers, partial_seeds, downloaded, NULL::BYTEA AS address, NULL::INT4 AS port, NULL::BYTEA AS peer_id,
  0::INT4 AS counted
FROM counts`;

// Run before the announce of a client with a key, in the same round trip
// (pipelined): its live row of this family bound to the same key hash at
// another address moves to this address, keeping its role and expiry, so the
// announce that follows updates it and counts its completion once. When this
// address already has a row, the bound row is expired instead. A separate
// statement because CockroachDB refuses two modifications of one table in a
// statement (cockroachdb/cockroach#71595); the announce is correct after it
// whether or not it ran. docs/decisions.md "Peers that move".
const ANNOUNCE_MOVE = `
UPDATE shoal_peers AS p SET
  address = CASE WHEN m.first AND NOT m.taken THEN @address ELSE p.address END,
  port = CASE WHEN m.first AND NOT m.taken THEN @port ELSE p.port END,
  expires_at = CASE WHEN m.first AND NOT m.taken THEN p.expires_at ELSE 0 END
FROM (
  SELECT address, port, row_number() OVER (ORDER BY expires_at DESC) = 1 AS first,
    EXISTS (SELECT 1 FROM shoal_peers
            WHERE info_hash = @info_hash AND is_v6 = @is_v6 AND address = @address AND port = @port) AS taken
  FROM shoal_peers
  WHERE info_hash = @info_hash AND is_v6 = @is_v6 AND key_hash = @key_hash::BYTEA
    AND expires_at > @now AND NOT (address = @address AND port = @port)
) m
WHERE p.info_hash = @info_hash AND p.is_v6 = @is_v6 AND p.address = m.address AND p.port = m.port`;

const SCRAPE = `
SELECT h.info_hash,
  (SELECT count(*) FROM shoal_peers p
   WHERE p.info_hash = h.info_hash AND p.expires_at > @now AND p.is_seeder)::INT4 AS seeders,
  (SELECT count(*) FROM shoal_peers p
   WHERE p.info_hash = h.info_hash AND p.expires_at > @now AND NOT p.is_seeder)::INT4 AS leechers,
  (SELECT count(*) FROM shoal_peers p
   WHERE p.info_hash = h.info_hash AND p.expires_at > @now AND p.is_partial_seed)::INT4 AS partial_seeds,
  COALESCE((SELECT d.downloaded FROM shoal_downloads d WHERE d.info_hash = h.info_hash), 0)::INT8 AS downloaded
FROM unnest(@info_hashes::BYTEA[]) AS h(info_hash)`;

// One batch of expired peers per statement, so no transaction stays open
// while a large backlog is removed. A swarm counts as removed by
// the batch that deletes its last row: the statement's snapshot still holds
// the rows it deletes, so "all of its rows" is "as many as this batch took".
const GC_TAIL = `
SELECT COALESCE(sum(r.n), 0)::INT4 AS peers_removed,
  COALESCE(sum(CASE WHEN r.n = (SELECT count(*) FROM shoal_peers q WHERE q.info_hash = r.info_hash) THEN 1 ELSE 0 END), 0)::INT4
    AS swarms_removed
FROM (SELECT info_hash, count(*) AS n FROM removed GROUP BY info_hash) r`;

// ctid pins the exact row versions selected; a peer refreshed meanwhile has a
// new version and is left alone. PostgreSQL has no DELETE ... LIMIT.
const GC_POSTGRES = `
WITH removed AS (
  DELETE FROM shoal_peers
  WHERE ctid = ANY(ARRAY(SELECT ctid FROM shoal_peers WHERE expires_at <= @now LIMIT @limit))
    AND expires_at <= @now
  RETURNING info_hash
)${GC_TAIL}`;

const GC_COCKROACH = `
WITH removed AS (
  DELETE FROM shoal_peers WHERE expires_at <= @now LIMIT @limit RETURNING info_hash
)${GC_TAIL}`;

const STATS = `
SELECT count(DISTINCT info_hash)::INT4 AS torrents,
  COALESCE(sum(CASE WHEN is_seeder AND NOT is_v6 THEN 1 ELSE 0 END), 0)::INT4 AS seeders_v4,
  COALESCE(sum(CASE WHEN is_seeder AND is_v6 THEN 1 ELSE 0 END), 0)::INT4 AS seeders_v6,
  COALESCE(sum(CASE WHEN NOT is_seeder AND NOT is_v6 THEN 1 ELSE 0 END), 0)::INT4 AS leechers_v4,
  COALESCE(sum(CASE WHEN NOT is_seeder AND is_v6 THEN 1 ELSE 0 END), 0)::INT4 AS leechers_v6
FROM shoal_peers WHERE expires_at > @now`;

// Admin view (GET /v1/admin/top): one pass over the live peers,
// off the announce path.
const TOP_SWARMS = `
SELECT info_hash,
  COALESCE(sum(CASE WHEN is_seeder THEN 1 ELSE 0 END), 0)::INT4 AS seeders,
  COALESCE(sum(CASE WHEN is_seeder THEN 0 ELSE 1 END), 0)::INT4 AS leechers
FROM shoal_peers WHERE expires_at > @now
GROUP BY info_hash
ORDER BY count(*) DESC
LIMIT @limit`;

const KV_GET = `SELECT value FROM shoal_kv WHERE context = @context AND key = @key`;
const KV_PUT = `
INSERT INTO shoal_kv (context, key, value) VALUES (@context, @key, @value)
ON CONFLICT (context, key) DO UPDATE SET value = excluded.value`;
const KV_DELETE = `DELETE FROM shoal_kv WHERE context = @context AND key = @key`;
const KV_LIST = `SELECT key, value FROM shoal_kv WHERE context = @context ORDER BY key`;
const PING = `SELECT 1`;

export function defaultQueries(dialect: Dialect): Record<QueryName, string> {
  return {
    announce: ANNOUNCE,
    announceStopped: ANNOUNCE_STOPPED,
    announceMove: ANNOUNCE_MOVE,
    scrape: SCRAPE,
    gc: dialect === 'cockroach' ? GC_COCKROACH : GC_POSTGRES,
    stats: STATS,
    topSwarms: TOP_SWARMS,
    kvGet: KV_GET,
    kvPut: KV_PUT,
    kvDelete: KV_DELETE,
    kvList: KV_LIST,
    ping: PING,
  };
}

// Download counters for storage-api's split backends: another
// backend holds the peers and reports which announce counted; these add
// those counts here. Built in, not replaceable: they touch only
// shoal_downloads, whose shape the announce queries already fix. Hashes are
// distinct within one call (ON CONFLICT cannot update a row twice).
export const ADD_DOWNLOADS = `
INSERT INTO shoal_downloads AS d (info_hash, downloaded)
SELECT t.h, t.n FROM unnest(@info_hashes::BYTEA[], @counts::INT8[]) AS t(h, n)
ON CONFLICT (info_hash) DO UPDATE SET downloaded = d.downloaded + excluded.downloaded`;

// Each receipt counts the first time only: the downloads upsert adds just the
// rows this statement inserted, in the same implicit transaction, and a
// concurrent insert of the same receipt waits for the other and then
// conflicts. Receipts are distinct within one call.
export const ADD_DOWNLOAD_RECEIPTS = `
WITH ins AS (
  INSERT INTO shoal_download_receipts (info_hash, receipt, created_at)
  SELECT t.h, t.r, @now FROM unnest(@info_hashes::BYTEA[], @receipts::TEXT[]) AS t(h, r)
  ON CONFLICT (info_hash, receipt) DO NOTHING
  RETURNING info_hash
)
INSERT INTO shoal_downloads AS d (info_hash, downloaded)
SELECT info_hash, count(*)::INT8 FROM ins GROUP BY info_hash
ON CONFLICT (info_hash) DO UPDATE SET downloaded = d.downloaded + excluded.downloaded`;

// One batch per statement, as the peers' GC.
export const EXPIRE_RECEIPTS_POSTGRES = `
DELETE FROM shoal_download_receipts
WHERE ctid = ANY(ARRAY(SELECT ctid FROM shoal_download_receipts WHERE created_at <= @before LIMIT @limit))
  AND created_at <= @before`;

export const EXPIRE_RECEIPTS_COCKROACH = `
DELETE FROM shoal_download_receipts WHERE created_at <= @before LIMIT @limit`;

export const GET_DOWNLOADS = `
SELECT h.info_hash,
  COALESCE((SELECT d.downloaded FROM shoal_downloads d WHERE d.info_hash = h.info_hash), 0)::INT8 AS downloaded
FROM unnest(@info_hashes::BYTEA[]) AS h(info_hash)`;

// Shared rate-limit counts (docs/postgres.md "Shared rate-limit counts"):
// one statement per sync adds every key's count to its row of the window and
// answers the totals after the add, with the window before's count beside
// each. INSERT ... ON CONFLICT, not CockroachDB's UPSERT (PostgreSQL has
// none; an increment reads the row either way). Keys are distinct within one
// call (ON CONFLICT cannot update a row twice). Built in, not replaceable.
export const ADD_RATE_COUNTS = `
WITH added AS (
  INSERT INTO shoal_rate_counts AS r (window_ms, rate_window, key, hits)
  SELECT @window_ms::INT8, @window::INT8, t.k, t.n FROM unnest(@keys::TEXT[], @deltas::INT8[]) AS t(k, n)
  ON CONFLICT (window_ms, rate_window, key) DO UPDATE SET hits = r.hits + excluded.hits
  RETURNING key, hits
)
SELECT a.key, a.hits AS current,
  COALESCE((SELECT p.hits FROM shoal_rate_counts p
            WHERE p.window_ms = @window_ms::INT8 AND p.rate_window = @window::INT8 - 1 AND p.key = a.key), 0)::INT8
    AS previous
FROM added a`;

// Windows before the previous one are never read again: deleted in batches
// by the primary key's prefix, as the peers' GC batches (PostgreSQL has no
// DELETE ... LIMIT).
export const EXPIRE_RATE_COUNTS_POSTGRES = `
DELETE FROM shoal_rate_counts
WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM shoal_rate_counts
    WHERE window_ms = @window_ms::INT8 AND rate_window < @before::INT8 LIMIT @limit))
  AND window_ms = @window_ms::INT8 AND rate_window < @before::INT8`;

export const EXPIRE_RATE_COUNTS_COCKROACH = `
DELETE FROM shoal_rate_counts
WHERE window_ms = @window_ms::INT8 AND rate_window < @before::INT8 LIMIT @limit`;
