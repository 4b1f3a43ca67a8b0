#!/usr/bin/env bash
# Gateway CPU per HTTP announce, this tree ("after") against another commit
# ("before"), for BENCHMARKS.md "The hot path". Not part of `make test`.
#   bench/http-cpu.sh BEFORE_REV [SECONDS] [ROUNDS]    env: MODES="keepalive close", CONNS=64
# Starts one gateway of each tree on the memory store (GATEWAY_WORKERS=1),
# then per mode runs ROUNDS rounds of SECONDS, the two sides alternating
# (before first in even rounds, after first in odd ones): wrk with CONNS
# connections sends the shared harness's announces (`announce.lua`, 10,000
# torrents), with keep-alive or with `Connection: close` (a connection per
# announce). Per round and side: answers/s and the gateway's CPU
# (utime+stime, and utime alone, from /proc) per answer. Prints per mode the
# median and range of the after/before ratios of rounds run back to back,
# and the ratio of each side's best round (lowest CPU, highest answers/s):
# on 2 cores shared with other work, one round's figure moves by half or more.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rev=${1:?usage: bench/http-cpu.sh BEFORE_REV [SECONDS] [ROUNDS]} secs=${2:-4} rounds=${3:-12}
before="$work/before"
bench_on_exit() { git -C "$root" worktree remove --force "$before" 2>/dev/null || true; }
git -C "$root" worktree add -q --detach "$before" "$rev"
(cd "$before" && pnpm install --frozen-lockfile --offline >/dev/null)
# The load generator's 10,000 info hashes, as the harness writes them.
gcc -O2 -o "$work/udpload" "$shared/bench/udpload.c"
"$work/udpload" 127.0.0.1 1 0 1 10000 0 "$work/hashes.txt"
tck=$(getconf CLK_TCK)
declare -A port pid res
for side in before after; do
  tree=$root
  [ "$side" = before ] && tree=$before
  port[$side]=$(free_port)
  start_service "$tree" announce-gateway "$work/gw-$side.log" PORT="${port[$side]}" ADMIN_PORT=0 \
    NUMWANT_DEFAULT=50 GATEWAY_WORKERS=1 STORAGE_DRIVER=memory
  pid[$side]=${pids[-1]}
done
ticks() { awk -v f="$2" '{ sub(/^.*\) /, ""); print (f == "user" ? $12 : $12 + $13) }' "/proc/$1/stat"; }

bench_header "; before = $(git -C "$root" rev-parse --short "$rev"), after = $(git -C "$root" rev-parse --short HEAD); load average $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in ${MODES:-keepalive close}; do
  hdr=()
  [ "$mode" = close ] && hdr=(-H 'Connection: close')
  rows=""
  for ((r = 0; r < rounds; r++)); do
    order=(before after)
    ((r % 2 == 0)) || order=(after before)
    for side in "${order[@]}"; do
      p=${pid[$side]}
      t0=$(ticks "$p" all) u0=$(ticks "$p" user)
      out=$(HASHES="$work/hashes.txt" wrk -t1 -c"${CONNS:-64}" -d"${secs}s" "${hdr[@]}" -s "$shared/bench/announce.lua" "http://127.0.0.1:${port[$side]}" 2>/dev/null | tail -1)
      t1=$(ticks "$p" all) u1=$(ticks "$p" user)
      rps=$(grep -o 'rps=[0-9]*' <<<"$out" | cut -d= -f2)
      [ "${rps:-0}" -gt 0 ] || { echo "no answers from $side: $out" >&2; exit 1; }
      cpu=$(awk -v t=$((t1 - t0)) -v u=$((u1 - u0)) -v k="$tck" -v n=$((rps * secs)) 'BEGIN { printf "%.1f %.1f", t / k * 1e6 / n, u / k * 1e6 / n }')
      echo "round $r $mode $side: rps=$rps cpu_us user_us = $cpu ($out) load $(cut -d' ' -f1 /proc/loadavg)" >&2
      res[$side]="$rps $cpu"
    done
    rows+="$r ${res[before]} ${res[after]}"$'\n'
  done
  awk -v mode="$mode" '
    NF == 7 {
      n++; cr[n] = $6 / $3; ur[n] = $7 / $4; rr[n] = $5 / $2
      if (n == 1 || $3 < bc) bc = $3; if (n == 1 || $4 < bu) bu = $4; if ($2 > br) br = $2
      if (n == 1 || $6 < ac) ac = $6; if (n == 1 || $7 < au) au = $7; if ($5 > ar) ar = $5
    }
    function sort(a, k,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t } }
    function med(a, k) { return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
    END {
      sort(cr, n); sort(ur, n); sort(rr, n)
      printf "%s rounds=%d after/before per round: cpu median %.2f (%.2f-%.2f), user median %.2f (%.2f-%.2f), answers/s median %.2f (%.2f-%.2f)\n", mode, n, med(cr, n), cr[1], cr[n], med(ur, n), ur[1], ur[n], med(rr, n), rr[1], rr[n]
      printf "%s best rounds: before %.1f us (user %.1f) %d/s, after %.1f us (user %.1f) %d/s: cpu %.2f, user %.2f, answers/s %.2f\n", mode, bc, bu, br, ac, au, ar, ac / bc, au / bu, ar / br
    }' <<<"$rows"
done
