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
# Stop storage-api (or scale it to 0) before a restore. pg_dump / pg_restore
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
    echo "backup: $file ($(wc -c <"$file") bytes)"
    ;;
  restore)
    [ -s "$file" ] || { echo "restore: $file is missing or empty" >&2; exit 1; }
    "${bin}pg_restore" --dbname="$url" --clean --if-exists --no-owner --no-privileges \
      --single-transaction --exit-on-error "$file"
    echo "restore: $file into the Shoal tables"
    ;;
  *) usage ;;
esac
