#!/usr/bin/env bash
# Announces/s through the store API, memory vs postgres (pipelined vs pg.Pool,
# with and without the per-swarm lock), against a throwaway PostgreSQL with
# default settings. Not part of `make test`. Loopback only.
#   bench/pg-throughput.sh        env: DURATION_SECONDS, CONCURRENCY, SWARMS, PEERS_PER_SWARM, PG_POOL_SIZE, DATABASE_URL
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/.tools/bin:$PATH"
if [ -z "${DATABASE_URL:-}" ]; then
  work=$(mktemp -d /tmp/shoal-pg-throughput.XXXXXX)
  DATABASE_URL=$("$root/bench/pg-server.sh" start "$work")
  trap '"$root/bench/pg-server.sh" stop "$work" || true; rm -rf "$work"' EXIT
fi
export DATABASE_URL
cd "$root/bench"
node pg-throughput.ts
