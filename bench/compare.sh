#!/usr/bin/env bash
# Shoal's gateway measured beside the reference trackers, in one run, with the
# shared harness (../shared/bench): UDP announces/s, HTTP keep-alive and HTTP
# with a connection per announce. Prints each target's median and its ratio to
# opentracker (the first target). Not part of `make test`.
#   bench/compare.sh [SECONDS] [ROUNDS]          env: STORES="memory redis ..." (default memory)
# Each store in STORES gets its own gateway, backed as bench/stores.sh starts it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
secs=${1:-5} rounds=${2:-3}
start_peers

targets=(opentracker=127.0.0.1:16969)
port=6969
for store in ${STORES:-memory}; do
  # A store that fails to start must stop the run, not fall back to memory.
  store_env=$("$root/bench/stores.sh" "$store" "$work")
  mapfile -t env_args <<<"$store_env"
  start_service "$root" announce-gateway "$work/gw-$store.log" PORT=$port ADMIN_PORT=0 NUMWANT_DEFAULT=50 "${env_args[@]}"
  targets+=("shoal-$store=127.0.0.1:$port")
  port=$((port + 1))
done
# Each gateway must be up, on the store it is named after.
for store in ${STORES:-memory}; do
  grep -q "\"storage\":\"$store\"" "$work/gw-$store.log" || { echo "gateway for $store did not start on $store:" >&2; cat "$work/gw-$store.log" >&2; exit 1; }
done
bt=bittorrent-tracker=127.0.0.1:17000
bench_header
"$shared/bench/compare.sh" udp "$secs" "$rounds" "${targets[@]}" "$bt" floor=127.0.0.1:18000
"$shared/bench/compare.sh" http "$secs" "$rounds" "${targets[@]}" "$bt"
"$shared/bench/compare.sh" http-close "$secs" "$rounds" "${targets[@]}" "$bt"
