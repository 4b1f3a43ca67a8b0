#!/usr/bin/env bash
# The split topology's cost: UDP announces/s of one gateway with
#   embedded memory | embedded redis | remote -> storage-api -> redis, batching on | batching off
# measured in one interleaved run with ../shared/bench (compare.sh udp), ratios
# against embedded redis (the issue's target: remote costs <= 40% of it).
# One Redis serves both the embedded-redis gateway and storage-api. Loopback
# only; everything started here is stopped on exit. Not part of `make test`.
#   bench/remote-throughput.sh [SECONDS] [ROUNDS]      (default 5 s x 3 rounds)
# API_ENV: extra storage-api settings (KEY=VALUE ...), e.g. REDIS_CONNECTIONS_PER_NODE=4.
# MODE=shared: instead, three remote gateways (batching) with a per-address
# announce limit no run reaches (every announce takes a token), in one run:
# shared-off (RATE_LIMIT_SHARED=false), shared-on (true: counts synced through
# storage-api every 250 ms) and shared-off-2 (the control); ratios to shared-off
# (docs/policy.md "Shared rate limits").
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
limits="RATE_LIMIT_ANNOUNCES_PER_SECOND=1000000 RATE_LIMIT_ANNOUNCE_BURST=1000000"
declare -A gw_env=(
  [embedded-memory]="STORAGE_DRIVER=memory"
  [embedded-redis]="${redis_env[*]}"
  [remote-batching]="${remote_env[*]} REMOTE_BATCHING=true"
  [remote-unbatched]="${remote_env[*]} REMOTE_BATCHING=false"
  [shared-off]="${remote_env[*]} $limits RATE_LIMIT_SHARED=false"
  [shared-on]="${remote_env[*]} $limits RATE_LIMIT_SHARED=true"
  [shared-off-2]="${remote_env[*]} $limits RATE_LIMIT_SHARED=false"
)
# The first target is the one compare.sh prints every ratio against.
if [ "${MODE:-}" = shared ]; then
  order=(shared-off shared-on shared-off-2)
else
  order=(embedded-redis embedded-memory remote-batching remote-unbatched)
fi
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

bench_header ", ratios to ${order[0]}; storage-api: ${API_ENV:-}"
"$shared/bench/compare.sh" udp "$secs" "$rounds" "${targets[@]}"
if [ "${MODE:-}" = shared ]; then
  # Nothing refused (the limit is out of reach) and the syncs that ran.
  for name in "${order[@]}"; do
    admin=$(grep -o '"admin":[0-9]*' "$work/gw-$name.log" | head -1 | cut -d: -f2)
    curl -fsS "http://127.0.0.1:$admin/metrics" | awk -v n="$name" '
      /^shoal_policy_refusals_total\{code="POLICY_ERR_RATE_LIMITED"\}/ {print n, $0}
      /^shoal_rate_limit_syncs_total/ {print n, $0}
      /^shoal_rate_limit_sync_seconds_(sum|count)/ {print n, $0}'
  done
  exit 0
fi
# The remote gateways' batch sizes: how much coalescing the load produced.
for name in remote-batching remote-unbatched; do
  admin=$(grep -o '"admin":[0-9]*' "$work/gw-$name.log" | head -1 | cut -d: -f2)
  curl -fsS "http://127.0.0.1:$admin/metrics" | awk -v n="$name" '
    /^shoal_storage_client_batch_size_sum/ {s=$2} /^shoal_storage_client_batch_size_count/ {c=$2}
    /^shoal_storage_client_requests_total/ {print n, $0}
    END {if (c > 0) printf "%s mean_batch_ops=%.1f batches=%d\n", n, s / c, c}'
done
