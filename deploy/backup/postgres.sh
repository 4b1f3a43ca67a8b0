#!/usr/bin/env bash
# Backup and restore of Shoal's durable data on PostgreSQL (docs/kubernetes.md
# "Back up and restore"; CockroachDB's own BACKUP / RESTORE play this part on
# the chart's cluster). The Shoal tables only (shoal_*): download counts, KV
# data (approval lists, passkeys), the migrations record; shoal_peers' rows are
# left out (peers are ephemeral: clients re-announce within one interval), its
# definition is kept.
#
#   postgres.sh backup  <DATABASE_URL> <file>   pg_dump, custom format; the file appears only when complete
#   postgres.sh restore <DATABASE_URL> <file>   replaces the Shoal tables with the file's, in one transaction
#
# A completed backup is recorded in the database (shoal_kv), where `shoalctl
# doctor` reports its age. Stop storage-api (or scale it to 0) before a restore. pg_dump / pg_restore
# come from PATH, or from PG_BIN when set; use the server's major version.
set -euo pipefail

usage() {
  echo "usage: $0 backup|restore <DATABASE_URL> <file>" >&2
  exit 2
}
[ "$#" -eq 3 ] || usage
action=$1 url=$2 file=$3
bin=${PG_BIN:+$PG_BIN/}

case "$action" in
  backup)
    tmp="$file.partial.$$"
    trap 'rm -f "$tmp"' EXIT
    "${bin}pg_dump" --dbname="$url" --format=custom --no-owner --no-privileges \
      --table='shoal_*' --exclude-table-data=shoal_peers --file="$tmp"
    mv "$tmp" "$file"
    trap - EXIT
    # Recorded where `shoalctl doctor` reads it (packages/storage/src/doctor:
    # BACKUP_MARKER), once the file is complete; a restore records the time of
    # the file it restored.
    "${bin}psql" --dbname="$url" --no-psqlrc --quiet -v ON_ERROR_STOP=1 -c \
      "INSERT INTO shoal_kv (context, key, value)
       VALUES ('shoal.backup', 'last-ms', (extract(epoch FROM now()) * 1000)::INT8::TEXT)
       ON CONFLICT (context, key) DO UPDATE SET value = EXCLUDED.value;"
    echo "backup: $file ($(wc -c <"$file") bytes)"
    ;;
  restore)
    [ -s "$file" ] || { echo "restore: $file is missing or empty" >&2; exit 1; }
    "${bin}pg_restore" --dbname="$url" --clean --if-exists --no-owner --no-privileges \
      --single-transaction --exit-on-error "$file"
    # The restored data is as old as the backup (the file's time: it is
    # renamed into place when complete), whatever the dump recorded.
    "${bin}psql" --dbname="$url" --no-psqlrc --quiet -v ON_ERROR_STOP=1 -c \
      "INSERT INTO shoal_kv (context, key, value)
       VALUES ('shoal.backup', 'last-ms', '$(($(date -r "$file" +%s) * 1000))')
       ON CONFLICT (context, key) DO UPDATE SET value = EXCLUDED.value;"
    echo "restore: $file into the Shoal tables"
    ;;
  *) usage ;;
esac
