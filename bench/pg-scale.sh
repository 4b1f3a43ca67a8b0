#!/usr/bin/env bash
# Scale run of the postgres driver: ROWS peer rows (default 10
# million) in a PostgreSQL with default shared_buffers (128 MiB) and work_mem
# (4 MiB), then announce and scrape latency p50/p99 and GC time at that size.
# Not part of `make test`. Loopback only; the server and its data are removed
# at the end unless KEEP=1.
#   bench/pg-scale.sh                  # 10M rows
#   ROWS=1000000 bench/pg-scale.sh     # smaller machines
# Knobs: ROWS, SWARMS (default ROWS/50), HOT_PEERS (one swarm this big, default
# 100000), EXPIRED_PERCENT (rows already past peer_lifetime, for GC; default
# 10), ANNOUNCES, SCRAPES, CONCURRENCY, PG_POOL_SIZE, DATABASE_URL (use an
# existing server instead of starting one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/.tools/bin:$PATH"
ROWS=${ROWS:-10000000}
SWARMS=${SWARMS:-$((ROWS / 50))}
HOT_PEERS=${HOT_PEERS:-100000}
EXPIRED_PERCENT=${EXPIRED_PERCENT:-10}
CHUNK=${CHUNK:-1000000}
export ROWS SWARMS HOT_PEERS
bin=${SHOAL_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

work=""
if [ -z "${DATABASE_URL:-}" ]; then
  work=$(mktemp -d /tmp/shoal-pg-scale.XXXXXX)
  DATABASE_URL=$("$root/bench/pg-server.sh" start "$work")
  cleanup() { "$root/bench/pg-server.sh" stop "$work" || true; [ "${KEEP:-0}" = 1 ] || rm -rf "$work"; }
  trap cleanup EXIT
fi
export DATABASE_URL
psql() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }
t() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(t)" 'BEGIN { printf "%.1f", b - a }'; }

echo "pg-scale: $ROWS rows, $SWARMS swarms, hot swarm $HOT_PEERS peers, $EXPIRED_PERCENT% expired" >&2
psql -At -c "SELECT version()" >&2
psql -At -c "SELECT name || '=' || current_setting(name) FROM pg_settings WHERE name IN ('shared_buffers','work_mem','fsync','max_wal_size')" >&2

node "$root/packages/storage/src/postgres/migrate-cli.ts" >&2
# Secondary indexes are built after the load (much faster than maintaining
# them row by row), with the same definitions as migration 1.
psql -c "DROP INDEX IF EXISTS shoal_peers_sample; DROP INDEX IF EXISTS shoal_peers_expiry; TRUNCATE shoal_peers"

now_ms=$(($(date +%s%3N)))
live=$((now_ms + 1860 * 1000))
expired=$((now_ms - 1000))
start=$(t)
for ((from = 1; from <= ROWS; from += CHUNK)); do
  to=$((from + CHUNK - 1)); [ "$to" -gt "$ROWS" ] && to=$ROWS
  psql -c "
    INSERT INTO shoal_peers (info_hash, is_v6, address, port, peer_id, is_seeder, expires_at, sample_key)
    SELECT decode(lpad(to_hex(i % $SWARMS), 8, '0') || repeat('a5', 16), 'hex'), false, int4send(i::int4),
      6881 + (i % 1000), decode(md5(i::text), 'hex') || int4send(i::int4), i % 3 = 0,
      CASE WHEN i % 100 < $EXPIRED_PERCENT THEN $expired ELSE $live END,
      (random() * 2147483646)::int4
    FROM generate_series($from::int8, $to::int8) AS i"
  echo "  loaded $to rows ($(elapsed "$start") s)" >&2
done
if [ "$HOT_PEERS" -gt 0 ]; then
  psql -c "
    INSERT INTO shoal_peers (info_hash, is_v6, address, port, peer_id, is_seeder, expires_at, sample_key)
    SELECT decode('ffffffff' || repeat('a5', 16), 'hex'), false, int4send((-i)::int4), 6881,
      decode(md5(i::text), 'hex') || int4send(i::int4), i % 3 = 0, $live, (random() * 2147483646)::int4
    FROM generate_series(1, $HOT_PEERS) AS i"
fi
load_s=$(elapsed "$start")
start=$(t)
psql -c "CREATE INDEX IF NOT EXISTS shoal_peers_sample ON shoal_peers (info_hash, is_v6, sample_key)"
psql -c "CREATE INDEX IF NOT EXISTS shoal_peers_expiry ON shoal_peers (expires_at)"
index_s=$(elapsed "$start")
start=$(t)
psql -c "VACUUM ANALYZE shoal_peers"
vacuum_s=$(elapsed "$start")
size=$(psql -At -c "SELECT pg_size_pretty(pg_total_relation_size('shoal_peers'))")
echo "pg-scale: load ${load_s}s, indexes ${index_s}s, vacuum analyze ${vacuum_s}s, table+indexes $size" >&2

cd "$root/bench"
node pg-scale.ts
