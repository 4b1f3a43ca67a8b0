#!/bin/sh
# Prepares one Redis data directory (a stopped node's PVC) to start from an
# RDB backup (the Redis backup CronJob's shoal-redis-<time>.rdb, or any
# `redis-cli --rdb` / BGSAVE file). docs/kubernetes.md "Back up and restore".
#
#   redis-restore.sh <backup.rdb> <data-dir>
#
# With appendonly yes (deploy/redis/redis.conf) Redis loads the AOF and
# ignores dump.rdb: without an AOF it starts empty and writes an empty one.
# So the backup becomes the AOF's base (Redis >= 7 multi-part AOF; a base may
# be an RDB file), with a manifest naming it alone. The directory's former
# AOF is moved aside, not deleted, and a stale dump.rdb is removed.
set -eu
[ "$#" -eq 2 ] || { echo "usage: $0 <backup.rdb> <data-dir>" >&2; exit 2; }
backup=$1 dir=$2
[ -s "$backup" ] || { echo "redis-restore: $backup is missing or empty" >&2; exit 1; }
head -c 5 "$backup" | grep -q '^REDIS' || { echo "redis-restore: $backup is not an RDB file" >&2; exit 1; }
aof="$dir/appendonlydir"
if [ -e "$aof" ]; then
  mv "$aof" "$dir/appendonlydir.before-restore-$(date -u +%Y%m%dT%H%M%SZ)"
fi
mkdir "$aof.partial"
cp "$backup" "$aof.partial/appendonly.aof.1.base.rdb"
echo "file appendonly.aof.1.base.rdb seq 1 type b" > "$aof.partial/appendonly.aof.manifest"
mv "$aof.partial" "$aof"
rm -f "$dir/dump.rdb"
echo "redis-restore: $dir starts from $backup"
