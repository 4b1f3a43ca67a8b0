#!/usr/bin/env bash
# A throwaway PostgreSQL for the bench/ scripts, with the server's default
# settings (shared_buffers 128 MiB, work_mem 4 MiB, fsync on: what the
# scale claim of docs/postgres.md is about). Loopback only.
#   bench/pg-server.sh start DIR [PORT]   prints DATABASE_URL on stdout
#   bench/pg-server.sh stop DIR
# Extra server flags: PG_SERVER_OPTS="-c max_connections=300".
set -euo pipefail
cmd=${1:?start|stop} dir=${2:?data directory}
bin=${SHOAL_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$bin/postgres" ] || { echo "pg-server: PostgreSQL binaries not found (apt-get install postgresql)" >&2; exit 1; }
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)
case "$cmd" in
  start)
    port=${3:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
    fi
    # shellcheck disable=SC2086
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 ${PG_SERVER_OPTS:-}" start >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    [ -f "$dir/data/postmaster.pid" ] && "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
