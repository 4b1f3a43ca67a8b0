#!/bin/sh
# A fresh cluster in $PGDATA with a `shoal` database (user `postgres`,
# password $POSTGRES_PASSWORD over TCP), then the server as PID 1 on
# $PGHOST:$PGPORT (0.0.0.0 on a container network), so `podman stop`
# (SIGTERM) is its smart shutdown. Test settings: no fsync (the data is
# thrown away with the container).
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
bin=$(echo /usr/lib/postgresql/*/bin)
pwfile=$(mktemp)
printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
"$bin/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" --auth-host=scram-sha-256 \
  --auth-local=trust --no-sync --encoding=UTF8 --locale=C >/dev/null
rm -f "$pwfile"
# Password logins from any address PGHOST listens on (a container network).
echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
echo 'CREATE DATABASE shoal' | "$bin/postgres" --single -D "$PGDATA" postgres >/dev/null
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses="$PGHOST" -c port="$PGPORT" \
  -c unix_socket_directories=/tmp -c fsync=off -c synchronous_commit=off \
  -c full_page_writes=off
