#!/usr/bin/env bash
# Starts the backend a benchmark gateway uses and prints the gateway's env
# (KEY=VALUE lines); writes DIR/stop-STORE.sh to tear it down. Loopback only.
#   bench/stores.sh memory|redis|postgres DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
store=${1:?memory|redis|postgres} dir=${2:?work dir}
mkdir -p "$dir"
case "$store" in
  memory) echo "STORAGE_DRIVER=memory" ;;
  redis)
    # The production config (deploy/redis/redis.conf: AOF everysec, listpack
    # sizes) with loopback, a free port and a throwaway dir.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$dir/redis"
    redis-server "$root/deploy/redis/redis.conf" --port "$port" --bind 127.0.0.1 --dir "$dir/redis" \
      --daemonize yes --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log" --protected-mode no >/dev/null
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    printf 'redis-cli -p %s shutdown nosave >/dev/null 2>&1 || kill "$(cat %q)" 2>/dev/null || true\n' "$port" "$dir/redis/redis.pid" > "$dir/stop-redis.sh"
    echo "STORAGE_DRIVER=redis"
    echo "REDIS_ADDRESSES=127.0.0.1:$port"
    ;;
  postgres)
    # initdb runs as the postgres user, which must be able to reach the dir.
    chmod 755 "$dir"
    url=$("$root/bench/pg-server.sh" start "$dir/pg")
    echo "'$root/bench/pg-server.sh' stop '$dir/pg' || true" > "$dir/stop-postgres.sh"
    echo "STORAGE_DRIVER=postgres"
    echo "DATABASE_URL=$url"
    echo "PG_POOL_SIZE=${PG_POOL_SIZE:-8}"
    ;;
  *) echo "usage: $0 memory|redis|postgres DIR" >&2; exit 2 ;;
esac
