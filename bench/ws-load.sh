#!/usr/bin/env bash
# WebSocket (WebTorrent) tracker load, Shoal beside bittorrent-tracker's own
# server (docs/webtorrent.md), with bench/ws-load.ts as the browsers:
#   bench/ws-load.sh [SECONDS] [ROUNDS] [IDLE_SIZES]   (IDLE_SIZES "" skips the idle runs)
# Per round and target, each on a fresh process:
#   throughput  CONNECTIONS (default 400) connections in swarms of 10, every
#               one keeping an announce with 5 offers in flight and answering
#               every offer relayed to it: announces/s answered, and per CPU
#               second the tracker process used meanwhile;
#   latency     the same connections at LATENCY_RATE (default 50) announces/s
#               in all, well below either tracker's ceiling: relay latency
#               p50/p99 of offers and of answers, sender to receiver;
# and once per target and size in IDLE_SIZES (default "10000 50000", each
# capped by `ulimit -n` of one process): that many connections announce once
# and stay open, the tracker's RSS growth divided by them.
# Targets: bittorrent-tracker (bench/ws-reference-tracker.ts) and, when the
# gateway has a WebSocket frontend, Shoal's gateway with the memory store
# (rate limits and connection caps raised out of the way); then, once, the
# latency run across two gateways on one redis-server (each swarm's peers
# alternate between them: offers and answers relayed within a gateway and
# across the two), and the same across two gateways of the split topology
# (both on one storage-api with its peers in memory; docs/webtorrent.md "The
# split topology"). CROSS_ONLY=1 runs only these two. GATEWAY_TREE runs
# another checkout's gateway (this one by default).
# Loopback only; every step is bounded. Not part of `make test`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
secs=${1:-10} rounds=${2:-3} idle_sizes=${3-"10000 50000"}
connections=${CONNECTIONS:-400}
tree=${GATEWAY_TREE:-$root}
latency_rate=${LATENCY_RATE:-50}

# As many sockets as this shell may give its children: the tracker holds one
# per connection, each generator process its share.
ulimit -n "$(ulimit -Hn)"
fd_limit=$(ulimit -n)
load=(node --disable-warning=ExperimentalWarning "$root/bench/ws-load.ts")

ref_pid=""
start_reference() {
  local out=$work/ref.out
  node --disable-warning=ExperimentalWarning "$root/bench/ws-reference-tracker.ts" >"$out" 2>"$work/ref.err" &
  ref_pid=$!
  for _ in $(seq 1 300); do
    [ -s "$out" ] && break
    sleep 0.2
  done
  [ -s "$out" ] || { cat "$work/ref.err" >&2; exit 1; }
  url="ws://127.0.0.1:$(sed -E 's/.*"listening":([0-9]+).*/\1/' "$out")"
  pid=$ref_pid
}
stop_reference() {
  kill "$ref_pid" 2>/dev/null || true
  wait "$ref_pid" 2>/dev/null || true
  ref_pid=""
}
bench_on_exit() { [ -z "$ref_pid" ] || kill "$ref_pid" 2>/dev/null || true; }

shoal=0
grep -q 'WS_ENABLED' "$tree/services/announce-gateway/src/config.ts" && shoal=1
# One worker thread: one swarm per gateway (docs/webtorrent.md "Status"), and
# the same single thread bittorrent-tracker's server runs on.
ws_env=(GATEWAY_WORKERS=1 WS_MESSAGES_PER_SECOND=1000000 WS_MESSAGE_BURST=1000000
  WS_MAX_CONNECTIONS=10000000 HTTP_MAX_CONNECTIONS=10000000)
start_shoal() { # [KEY=VALUE...], the memory store by default
  local port
  port=$(free_port)
  start_service "$tree" announce-gateway "$work/gw-$port.log" PORT="$port" ADMIN_PORT=0 \
    STORAGE_DRIVER=memory "${ws_env[@]}" "$@"
  pid=${pids[-1]}
  url="ws://127.0.0.1:$port/announce"
}
stop_shoal() {
  launcher stop "$pid" >/dev/null || true
  unset 'pids[-1]'
}

# BEFORE_TREE (another checkout with the frontend) adds its gateway as the
# target shoal-before: a change measured against the code before it in one run.
targets=(bittorrent-tracker)
[ "$shoal" = 1 ] && targets+=(shoal)
[ -n "${BEFORE_TREE:-}" ] && targets+=(shoal-before)
start_target() {
  case $1 in
    shoal) start_shoal ;;
    shoal-before) tree=$BEFORE_TREE start_shoal ;;
    *) start_reference ;;
  esac
}
stop_target() { if [ "$1" = bittorrent-tracker ]; then stop_reference; else stop_shoal; fi; }

results=$work/results.jsonl
# CROSS_ONLY=1: only the latency runs across two gateways (Redis, then the split topology).
if [ -n "${CROSS_ONLY:-}" ]; then
  targets=()
  idle_sizes=""
fi
bench_header " connections=$connections latency_rate=$latency_rate idle=[$idle_sizes] fd_limit=$fd_limit load=[$(cut -d' ' -f1-3 /proc/loadavg)] targets=${targets[*]}"
for r in $(seq 1 "$rounds"); do
  for t in "${targets[@]+"${targets[@]}"}"; do
    start_target "$t"
    "${load[@]}" throughput "$url" --connections "$connections" --seconds "$secs" --pid "$pid" --label "$t" \
      | tail -1 | sed "s/^{/{\"round\":$r,/" | tee -a "$results" >&2
    "${load[@]}" latency "$url" --connections "$connections" --seconds "$secs" --rate "$latency_rate" --label "$t" \
      | tail -1 | sed "s/^{/{\"round\":$r,/" | tee -a "$results" >&2
    stop_target "$t"
  done
done
for n in $idle_sizes; do
  # The tracker needs a descriptor per connection and a few of its own.
  cap=$((fd_limit - 200))
  [ "$n" -le "$cap" ] || { echo "# idle $n: capped at $cap by ulimit -n $fd_limit" >&2; n=$cap; }
  for t in "${targets[@]+"${targets[@]}"}"; do
    start_target "$t"
    "${load[@]}" idle "$url" --connections "$n" --pid "$pid" --label "$t" \
      | tail -1 | tee -a "$results" >&2
    stop_target "$t"
  done
done
if [ "$shoal" = 1 ]; then
  mapfile -t redis_env < <("$root/bench/stores.sh" redis "$work")
  start_shoal "${redis_env[@]}"
  url_a=$url
  start_shoal "${redis_env[@]}"
  url_b=$url
  for r in $(seq 1 "$rounds"); do
    "${load[@]}" latency "$url_a" --url2 "$url_b" --connections "$connections" --seconds "$secs" \
      --rate "$latency_rate" --label shoal-a+b-redis | tail -1 | sed "s/^{/{\"round\":$r,/" | tee -a "$results" >&2
  done
  for _ in 1 2; do
    pid=${pids[-1]}
    stop_shoal
  done
  # The split topology (docs/webtorrent.md "The split topology"): two gateways
  # on one storage-api with its peers in memory; a crossing relay goes
  # gateway A -> storage-api -> gateway B on the gateways' relay streams.
  if grep -q 'WS_RELAY_QUEUE_MAX' "$tree/services/announce-gateway/src/config.ts"; then
    token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    api_port=$(free_port)
    start_service "$tree" storage-api "$work/storage-api.log" PORT="$api_port" ADMIN_PORT=0 \
      STORAGE_API_TOKEN="$token" PEER_STORE_DRIVER=memory DATA_STORE_DRIVER=memory
    split_env=(STORAGE_DRIVER=remote STORAGE_API_URL="http://127.0.0.1:$api_port" STORAGE_API_TOKEN="$token")
    start_shoal "${split_env[@]}"
    url_a=$url
    start_shoal "${split_env[@]}"
    url_b=$url
    for r in $(seq 1 "$rounds"); do
      "${load[@]}" latency "$url_a" --url2 "$url_b" --connections "$connections" --seconds "$secs" \
        --rate "$latency_rate" --label shoal-a+b-split | tail -1 | sed "s/^{/{\"round\":$r,/" | tee -a "$results" >&2
    done
  fi
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
node --disable-warning=ExperimentalWarning "$root/bench/ws-load-summary.ts" "$results"
