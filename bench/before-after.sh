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
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHOAL_SHARED:-$root/../shared}
rev=${1:?REV (the commit to compare with)} secs=${2:-5} rounds=${3:-3}
export PATH="$root/.tools/bin:$PATH"
make -C "$root" -s bench-deps >/dev/null
work=$(mktemp -d)
before="$work/before"
git -C "$root" worktree add -q --detach "$before" "$rev"
(cd "$before" && pnpm install --frozen-lockfile --offline >/dev/null)
"$shared/bench/peers.sh" start >&2
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for s in "$work"/stop-*.sh; do [ -f "$s" ] && bash "$s"; done
  "$shared/bench/peers.sh" stop
  git -C "$root" worktree remove --force "$before" || true
  rm -rf "$work"
  true
}
trap cleanup EXIT

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
    (cd "$tree/services/announce-gateway" && exec env HOST=127.0.0.1 PORT=$port ADMIN_PORT=0 LOG_LEVEL=info \
       NUMWANT_DEFAULT=50 "${env_args[@]}" node --disable-warning=ExperimentalWarning src/main.ts) >"$work/gw-$store-$side.log" 2>&1 &
    pids+=($!)
    targets+=("$side-$store=127.0.0.1:$port")
    port=$((port + 1))
  done
done
for log in "$work"/gw-*.log; do
  for _ in $(seq 100); do grep -q '"msg":"listening"' "$log" 2>/dev/null && break; sleep 0.1; done
  grep -q '"msg":"listening"' "$log" || { echo "a gateway did not start:" >&2; cat "$log" >&2; exit 1; }
done
echo "# $(date -u +%FT%TZ) $(nproc) cores, node $(node --version), ${secs}s x ${rounds} rounds; before = $(git -C "$root" rev-parse --short "$rev"), after = $(git -C "$root" rev-parse --short HEAD)$( [ -n "$(git -C "$root" status --porcelain)" ] && echo ' + uncommitted changes')"
"$shared/bench/compare.sh" udp "$secs" "$rounds" "${targets[@]}"
"$shared/bench/compare.sh" http "$secs" "$rounds" "${targets[@]}"
"$shared/bench/compare.sh" http-close "$secs" "$rounds" "${targets[@]}"
