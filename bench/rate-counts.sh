#!/usr/bin/env bash
# Time of one shared-rate-limit sync on PostgreSQL (server defaults, fsync
# on) against Redis, in one run (bench/rate-counts.ts). Not part of
# `make test`. Loopback only.
#   bench/rate-counts.sh    env: DURATION_SECONDS, ROUNDS, GATEWAYS, ADDRESSES, WINDOW_MS, KEYS, DATABASE_URL
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/.tools/bin:$PATH"
if [ -z "${DATABASE_URL:-}" ]; then
  work=$(mktemp -d /tmp/shoal-rate-counts.XXXXXX)
  DATABASE_URL=$("$root/bench/pg-server.sh" start "$work")
  trap '"$root/bench/pg-server.sh" stop "$work" || true; rm -rf "$work"' EXIT
fi
export DATABASE_URL
cd "$root/bench"
uptime
node rate-counts.ts
