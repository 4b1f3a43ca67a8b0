#!/usr/bin/env bash
# The cost of the policy middleware chain (docs/policy.md): the same gateway
# build, memory store, with the chain off and on, measured in one interleaved
# run by the shared harness, beside opentracker (which Debian builds in
# whitelist mode, so it checks every announce against the same 10,000 hashes).
#   bench/policy-chain.sh [SECONDS] [ROUNDS]
# Targets:
#   chain-off      every step off (the default)
#   chain-on       torrent allow list (the load generator's 10,000 hashes),
#                  client deny list (50 prefixes the generator never sends),
#                  interval jitter, per-IP rate limits on connects and
#                  announces (at a rate the run stays under: every request
#                  takes a token, none is refused)
#   chain-passkey  chain-on plus PASSKEY_REQUIRED (HTTP only: the UDP load
#                  generator sends no BEP 41 URL data, so it would be refused)
#   chain-off-2    a second chain-off, the control: how far two identical
#                  gateways drift apart in one run on this machine
# HTTP announces go to /announce/<passkey> on every target; gateways without
# PASSKEY_REQUIRED ignore the passkey (docs/policy.md), opentracker takes the
# path as its announce URL (Debian's opentracker answers any path).
# JWT is not in the run: the harness has no client that signs a token per
# torrent (its cost after the first announce is one LRU lookup).
# Not part of `make test`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
secs=${1:-5} rounds=${2:-3}
start_peers
peers_dir=${PEERS_DIR:-/tmp/shoal-peers}

token=bench-admin-token-0123456789
passkey=benchpasskey0123456789abcdef0123
chain_env=(TORRENT_APPROVAL=allow CLIENT_APPROVAL=deny ANNOUNCE_INTERVAL_JITTER_SECONDS=300
  RATE_LIMIT_ANNOUNCES_PER_SECOND=1000000 RATE_LIMIT_ANNOUNCE_BURST=1000000
  RATE_LIMIT_CONNECTS_PER_SECOND=1000000 RATE_LIMIT_CONNECT_BURST=1000000
  ADMIN_API_TOKEN=$token POLICY_REFRESH_SECONDS=10)
start_gateway() { # name port admin_port env...
  local name=$1 port=$2 admin=$3; shift 3
  start_service "$root" announce-gateway "$work/gw-$name.log" PORT="$port" ADMIN_PORT="$admin" STORAGE_DRIVER=memory "$@"
}
start_gateway chain-off 6969 19090
start_gateway chain-on 6970 19091 "${chain_env[@]}"
start_gateway chain-passkey 6971 19092 "${chain_env[@]}" PASSKEY_REQUIRED=true
start_gateway chain-off-2 6972 19093

# The lists go in through the admin API with shoalctl, as an operator would.
for p in $(seq -w 0 49); do echo "-Z${p}"; done > "$work/clients.txt"
for admin in 19091 19092; do
  ctl=(node --disable-warning=ExperimentalWarning "$root/packages/cli/bin/shoalctl.ts" --url "http://127.0.0.1:$admin" --token "$token")
  "${ctl[@]}" torrents allow import "$peers_dir/hashes.txt" >&2
  "${ctl[@]}" clients deny import "$work/clients.txt" >&2
  "${ctl[@]}" passkeys add --passkey "$passkey" --user bench >&2
  # Proof the chain is on: an unlisted torrent is refused.
  refusal=$(curl -s "http://127.0.0.1:$((admin - 19091 + 6970))/announce/$passkey?info_hash=%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00&peer_id=-WK0001-000000000000&port=1&uploaded=0&downloaded=0&left=0")
  grep -q POLICY_ERR_TORRENT_NOT_ALLOWED <<<"$refusal" || { echo "chain not on at admin $admin: $refusal" >&2; exit 1; }
done

bench_header
ot=opentracker=127.0.0.1:16969
# HTTP first, while the three gateways hold the same swarms (the UDP run
# fills chain-off's and chain-on's swarms but not chain-passkey's, whose UDP
# announces carry no passkey; fuller swarms mean longer answers).
ANNOUNCE_PATH="/announce/$passkey" "$shared/bench/compare.sh" http "$secs" "$rounds" \
  shoal-chain-off=127.0.0.1:6969 shoal-chain-on=127.0.0.1:6970 shoal-chain-passkey=127.0.0.1:6971 \
  shoal-chain-off-2=127.0.0.1:6972 "$ot" \
  2> >(tee "$work/http.rounds" >&2)
"$shared/bench/compare.sh" udp "$secs" "$rounds" shoal-chain-off=127.0.0.1:6969 shoal-chain-on=127.0.0.1:6970 \
  shoal-chain-off-2=127.0.0.1:6972 "$ot" \
  2> >(tee "$work/udp.rounds" >&2)
sleep 1
# Rounds run the targets back to back, so a round's ratio is the least
# exposed to drift; print each and their median.
for mode in http udp; do
  for target in shoal-chain-on shoal-chain-passkey shoal-chain-off-2; do
    awk -v t="$target" -v mode="$mode" '
      / shoal-chain-off: / { match($0, /rps=[0-9]+/); off[$2] = substr($0, RSTART + 4, RLENGTH - 4) }
      $0 ~ " " t ": " { match($0, /rps=[0-9]+/); on[$2] = substr($0, RSTART + 4, RLENGTH - 4) }
      END {
        n = 0; line = ""
        for (r in on) if (off[r] > 0) { v[++n] = on[r] / off[r]; line = line sprintf(" %.2f", on[r] / off[r]) }
        if (n == 0) exit
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
        printf "%s %s/chain-off per round:%s  median=%.2f\n", mode, t, line, v[int((n + 1) / 2)]
      }' "$work/$mode.rounds"
  done
done
# Every chain-on answer must have been a real announce, not a refusal.
for admin in 19091 19092; do
  echo "# policy refusals at admin $admin (1 = the check above):" $(curl -s "http://127.0.0.1:$admin/metrics" | grep -E '^shoal_policy_refusals_total' | awk '{s+=$2} END {print s+0}')
done
