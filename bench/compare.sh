#!/usr/bin/env bash
# Shoal's gateway measured beside the reference trackers, in one run, with the
# shared harness (../shared/bench): UDP announces/s, HTTP keep-alive and HTTP
# with a connection per announce. Prints each target's median and its ratio to
# opentracker (the first target). Not part of `make test`.
#   bench/compare.sh [SECONDS] [ROUNDS]          env: STORES="memory redis ..." (default memory)
#                                                     WORKERS="1 2 ..." (default 1)
#                                                     UDP_BATCH="off on" (UDP_BATCH_SYSCALLS
#                                                     values, docs/udp-batch.md; default: unset)
#                                                     MODES="udp http http-close" (default all)
# Each store in STORES gets its own gateway per GATEWAY_WORKERS value in
# WORKERS (docs/workers.md), backed as bench/stores.sh starts it; with one
# value the targets keep their names (shoal-<store>), with several they are
# shoal-<store>-w<workers>; each UDP_BATCH value adds -dgram (off) or -batch.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
secs=${1:-5} rounds=${2:-3}
start_peers

# Ports: PORT_BASE and up for the gateways; the harness's OT_PORT, BT_PORT,
# ECHO_PORT and PEERS_DIR move the references (another run on the machine).
targets=(opentracker=127.0.0.1:${OT_PORT:-16969})
port=${PORT_BASE:-6969}
workers=(${WORKERS:-1})
for store in ${STORES:-memory}; do
  # A store that fails to start must stop the run, not fall back to memory.
  store_env=$("$root/bench/stores.sh" "$store" "$work")
  mapfile -t env_args <<<"$store_env"
  for n in "${workers[@]}"; do
   for batch in ${UDP_BATCH:--}; do
    name=shoal-$store
    [ "${#workers[@]}" -eq 1 ] || name=$name-w$n
    batch_args=()
    if [ "$batch" != - ]; then
      name=$name-$([ "$batch" = off ] && echo dgram || echo batch)
      batch_args=(UDP_BATCH_SYSCALLS="$batch")
    fi
    start_service "$root" announce-gateway "$work/gw-$name.log" PORT=$port ADMIN_PORT=0 NUMWANT_DEFAULT=50 GATEWAY_WORKERS="$n" "${env_args[@]}" "${batch_args[@]}"
    # Each gateway must be up, on the store it is named after, with the workers asked for.
    # (the memory store with workers is the shared-memory store, docs/workers.md "Stores")
    grep -Eq "\"storage\":\"$([ "$store" = memory ] && echo '(shared-)?')$store\"" "$work/gw-$name.log" || { echo "gateway $name did not start on $store:" >&2; cat "$work/gw-$name.log" >&2; exit 1; }
    grep -q "\"workers\":$n," "$work/gw-$name.log" || { echo "gateway $name does not run $n workers:" >&2; cat "$work/gw-$name.log" >&2; exit 1; }
    targets+=("$name=127.0.0.1:$port")
    port=$((port + 1))
   done
  done
done
bt=bittorrent-tracker=127.0.0.1:${BT_PORT:-17000}
bench_header
for mode in ${MODES:-udp http http-close}; do
  if [ "$mode" = udp ]; then
    "$shared/bench/compare.sh" udp "$secs" "$rounds" "${targets[@]}" "$bt" floor=127.0.0.1:${ECHO_PORT:-18000}
  else
    "$shared/bench/compare.sh" "$mode" "$secs" "$rounds" "${targets[@]}" "$bt"
  fi
done
