#!/usr/bin/env bash
# The split topology's cost: UDP announces/s of one gateway with
#   embedded memory | embedded redis | remote -> storage-api -> redis, batching on | batching off
# measured in one interleaved run with ../shared/bench (compare.sh udp), ratios
# against embedded redis (the issue's target: remote costs <= 40% of it).
# One Redis serves both the embedded-redis gateway and storage-api. Loopback
# only; everything started here is stopped on exit. Not part of `make test`.
#   bench/remote-throughput.sh [SECONDS] [ROUNDS]      (default 5 s x 3 rounds)
# API_ENV: extra storage-api settings (KEY=VALUE ...), e.g. REDIS_CONNECTIONS_PER_NODE=4.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
secs=${1:-5} rounds=${2:-3}
# ../shared/bench/compare.sh builds its load generator there when missing.
mkdir -p "${PEERS_DIR:-/tmp/shoal-peers}"

mapfile -t redis_env < <("$root/bench/stores.sh" redis "$work")
redis_addresses=$(printf '%s\n' "${redis_env[@]}" | grep '^REDIS_ADDRESSES=' | cut -d= -f2)
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

api_port=$(free_port)
# shellcheck disable=SC2086 # API_ENV is a list of settings
start_service "$root" storage-api "$work/storage-api.log" PORT="$api_port" ADMIN_HOST=127.0.0.1 ADMIN_PORT=0 \
  STORAGE_API_TOKEN="$token" PEER_STORE_DRIVER=redis DATA_STORE_DRIVER=redis \
  REDIS_ADDRESSES="$redis_addresses" ${API_ENV:-}

remote_env=(STORAGE_DRIVER=remote STORAGE_API_URL="http://127.0.0.1:$api_port" STORAGE_API_TOKEN="$token")
declare -A gw_env=(
  [embedded-memory]="STORAGE_DRIVER=memory"
  [embedded-redis]="${redis_env[*]}"
  [remote-batching]="${remote_env[*]} REMOTE_BATCHING=true"
  [remote-unbatched]="${remote_env[*]} REMOTE_BATCHING=false"
)
# embedded-redis first: compare.sh prints every ratio against the first target.
order=(embedded-redis embedded-memory remote-batching remote-unbatched)
targets=()
for name in "${order[@]}"; do
  port=$(free_port)
  read -r -a extra <<<"${gw_env[$name]}"
  start_service "$root" announce-gateway "$work/gw-$name.log" PORT="$port" ADMIN_HOST=127.0.0.1 ADMIN_PORT=0 \
    NUMWANT_DEFAULT=50 "${extra[@]}"
  targets+=("$name=127.0.0.1:$port")
done
# A remote gateway that cannot reach storage-api would measure fast refusals, not announces.
curl -fsS -o /dev/null -H "authorization: Bearer $token" "http://127.0.0.1:$api_port/v1/stats" \
  || { echo "storage-api is not answering:" >&2; cat "$work/storage-api.log" >&2; exit 1; }

bench_header ", ratios to embedded-redis; storage-api: ${API_ENV:-}"
"$shared/bench/compare.sh" udp "$secs" "$rounds" "${targets[@]}"
# The remote gateways' batch sizes: how much coalescing the load produced.
for name in remote-batching remote-unbatched; do
  admin=$(grep -o '"admin":[0-9]*' "$work/gw-$name.log" | head -1 | cut -d: -f2)
  curl -fsS "http://127.0.0.1:$admin/metrics" | awk -v n="$name" '
    /^shoal_storage_client_batch_size_sum/ {s=$2} /^shoal_storage_client_batch_size_count/ {c=$2}
    /^shoal_storage_client_requests_total/ {print n, $0}
    END {if (c > 0) printf "%s mean_batch_ops=%.1f batches=%d\n", n, s / c, c}'
done
