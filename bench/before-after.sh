#!/usr/bin/env bash
# The gateway at an earlier commit beside the gateway of this tree, in one
# interleaved run with the reference trackers (../shared/bench), so a change
# on the announce path is measured against what it replaced under the same
# machine noise. Not part of `make test`.
#   bench/before-after.sh REV [SECONDS] [ROUNDS]     env: STORES="memory redis" (default memory)
# REV is checked out into a throwaway git worktree (its dependencies come from
# the pnpm store offline); each store gets a "before" and an "after" gateway
# on its own backend, started as bench/stores.sh starts them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rev=${1:?REV (the commit to compare with)} secs=${2:-5} rounds=${3:-3}
before="$work/before"
bench_on_exit() { git -C "$root" worktree remove --force "$before" 2>/dev/null || true; }
git -C "$root" worktree add -q --detach "$before" "$rev"
(cd "$before" && pnpm install --frozen-lockfile --offline >/dev/null)
start_peers

targets=(opentracker=127.0.0.1:16969)
port=6969
for store in ${STORES:-memory}; do
  for side in before after; do
    tree=$root
    [ "$side" = before ] && tree=$before
    # A store that fails to start must stop the run, not fall back to memory.
    store_env=$("$root/bench/stores.sh" "$store" "$work/$side")
    [ -f "$work/$side/stop-$store.sh" ] && mv "$work/$side/stop-$store.sh" "$work/stop-$store-$side.sh"
    mapfile -t env_args <<<"$store_env"
    start_service "$tree" announce-gateway "$work/gw-$store-$side.log" PORT=$port ADMIN_PORT=0 NUMWANT_DEFAULT=50 "${env_args[@]}"
    targets+=("$side-$store=127.0.0.1:$port")
    port=$((port + 1))
  done
done
bench_header "; before = $(git -C "$root" rev-parse --short "$rev"), after = $(git -C "$root" rev-parse --short HEAD)$( [ -n "$(git -C "$root" status --porcelain)" ] && echo ' + uncommitted changes')"
"$shared/bench/compare.sh" udp "$secs" "$rounds" "${targets[@]}"
"$shared/bench/compare.sh" http "$secs" "$rounds" "${targets[@]}"
"$shared/bench/compare.sh" http-close "$secs" "$rounds" "${targets[@]}"
