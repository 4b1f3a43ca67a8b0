#!/usr/bin/env bash
# UDP announces/s and CPU per announce against the number of torrents, the
# peers per swarm, the store and the gateway's workers, for BENCHMARKS.md's
# scale table. Not part of `make test`.
#   bench/scale.sh [BEFORE_REV] [SECONDS] [ROUNDS]
#   env: STORES="memory redis"   stores, each started as bench/stores.sh does
#        CELLS="10000x1 10000x100 100x10000 100000x1 1000000x1"   TORRENTSxPEERS
#        WORKERS="1 2"           GATEWAY_WORKERS values; unset: the gateway's default
#        LOAD_SOCKETS=4          source ports of the load (SO_REUSEPORT spreads
#                                them over the workers: use 16 or more with workers)
#        BEFORE_ENV, AFTER_ENV   settings (KEY=VALUE ...) of that side's gateway only
# BEFORE_REV "." is this tree on both sides: with BEFORE_ENV/AFTER_ENV it
# compares two settings, e.g. BEFORE_ENV=UDP_BATCH_SYSCALLS=off
# AFTER_ENV=UDP_BATCH_SYSCALLS=on bench/scale.sh . 4 6 (docs/udp-batch.md).
# Per cell, a gateway of this tree ("after") and, when BEFORE_REV is given, one
# of that commit ("before", a throwaway git worktree), each on its own store,
# are filled with every (torrent, peer) once by bench/scale-load.c and then
# measured in ROUNDS alternating rounds of SECONDS: announces of random stored
# peers, 64 in flight from LOAD_SOCKETS source ports, 50 peers asked for. Per round: the
# load generator's answers/s and the gateway's CPU (utime+stime of every
# process in its process group, /proc) per answer; with Redis also
# redis-server's CPU per answer, INFO commandstats usec_per_call of EVALSHA and
# answers per read redis-server made (total_reads_processed)
# (reset before each round). Prints, per cell and side, the best of the rounds
# (highest answers/s, lowest CPU) and the median: on 2 cores shared with other
# work the best is the figure least disturbed by it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rev=${1:-} secs=${2:-5} rounds=${3:-3}
STORES=${STORES:-memory redis}
CELLS=${CELLS:-10000x1 10000x100 100x10000 100000x1 1000000x1}
gcc -O2 -o "$work/scale-load" "$root/bench/scale-load.c"
sides=(after)
if [ "$rev" = . ]; then
  before=$root
  sides=(before after)
elif [ -n "$rev" ]; then
  before="$work/before"
  bench_on_exit() { git -C "$root" worktree remove --force "$before" 2>/dev/null || true; }
  git -C "$root" worktree add -q --detach "$before" "$rev"
  (cd "$before" && pnpm install --frozen-lockfile --offline >/dev/null)
  sides=(before after)
fi
tck=$(getconf CLK_TCK)

# CPU ticks (utime+stime, every thread) of the live processes in process group $1;
# one that exits while it is read is left out.
group_ticks() {
  local t=0 p v
  for p in $(pgrep -g "$1"); do
    v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
evalsha_usec() {
  redis-cli -p "$1" info commandstats | tr -d '\r' | awk -F'[,=]' '/^cmdstat_evalsha:/ { print $6 }'
}
# Reads of client input redis-server made since the last CONFIG RESETSTAT: answered
# announces per read is how many the gateways' connections delivered at once.
redis_reads() {
  redis-cli -p "$1" info stats | tr -d '\r' | awk -F: '/^total_reads_processed:/ { print $2 }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# One round against side $1 of the current cell: appends "rps cpu_us [redis_cpu_us usec_per_call per_read]".
measure() {
  local side=$1 port=${gw_port[$1]} pid=${gw_pid[$1]} rport=${redis_port[$1]:-} rpid=${redis_pid[$1]:-}
  local g0 g1 r0=0 r1=0 line n rps extra=""
  [ -n "$rport" ] && { redis-cli -p "$rport" config resetstat >/dev/null; r0=$(proc_ticks "$rpid"); }
  g0=$(group_ticks "$pid")
  line=$("$work/scale-load" 127.0.0.1 "$port" "$secs" "$torrents" "$peers" 64 "${LOAD_SOCKETS:-4}")
  g1=$(group_ticks "$pid")
  n=$(grep -o 'responses=[0-9]*' <<<"$line" | cut -d= -f2)
  rps=$(grep -o 'rps=[0-9]*' <<<"$line" | cut -d= -f2)
  [ "${n:-0}" -gt 0 ] || { echo "no answers from $side: $line" >&2; exit 1; }
  if [ -n "$rport" ]; then
    r1=$(proc_ticks "$rpid")
    extra=$(awk -v t="$((r1 - r0))" -v n="$n" -v k="$tck" -v u="$(evalsha_usec "$rport")" -v reads="$(redis_reads "$rport")" \
      'BEGIN { printf " %.2f %s %.1f", t / k * 1e6 / n, u, n / (reads > 0 ? reads : 1) }')
  fi
  echo "round $side $store ${torrents}x$peers w=${workers:-default}: $line" >&2
  local row
  row=$(awk -v t="$((g1 - g0))" -v n="$n" -v k="$tck" -v r="$rps" 'BEGIN { printf "%d %.2f", r, t / k * 1e6 / n }')"$extra"
  echo "  $side rps cpu_us${rport:+ redis_cpu_us usec_per_call announces_per_read}: $row" >&2
  results[$side]+=$row$'\n'
}

bench_header "; stores: $STORES; cells: $CELLS; workers: ${WORKERS:-default}; load average $(cut -d' ' -f1-3 /proc/loadavg)${rev:+; before = $(git -C "$root" rev-parse --short "${rev/#./HEAD}") ${BEFORE_ENV:-}}, after = $(git -C "$root" rev-parse --short HEAD) ${AFTER_ENV:-}"
printf '%-7s %9s %6s %7s %-6s %9s %9s %10s %10s %12s %14s %9s\n' store torrents peers workers side best_rps med_rps best_cpu_us med_cpu_us redis_cpu_us evalsha_usec per_read
for store in $STORES; do
  for cell in $CELLS; do
    torrents=${cell%x*} peers=${cell#*x}
    read -ra wlist <<<"${WORKERS:-}"
    [ "${#wlist[@]}" -gt 0 ] || wlist=("")
    for workers in "${wlist[@]}"; do
      declare -A gw_port=() gw_pid=() redis_port=() redis_pid=() results=()
      for side in "${sides[@]}"; do
        tree=$root
        [ "$side" = before ] && tree=$before
        dir="$work/$store-$cell-$side"
        store_env=$("$root/bench/stores.sh" "$store" "$dir")
        [ -f "$dir/stop-$store.sh" ] && mv "$dir/stop-$store.sh" "$work/stop-$store-$side.sh"
        mapfile -t env_args <<<"$store_env"
        if [ "$store" = redis ]; then
          redis_port[$side]=$(grep -o 'REDIS_ADDRESSES=.*' <<<"$store_env" | sed 's/.*://')
          redis_pid[$side]=$(cat "$dir/redis/redis.pid")
        fi
        port=$(free_port)
        side_env=${AFTER_ENV:-}
        [ "$side" = before ] && side_env=${BEFORE_ENV:-}
        read -ra side_args <<<"$side_env"
        start_service "$tree" announce-gateway "$dir/gw.log" PORT="$port" ADMIN_PORT=0 NUMWANT_DEFAULT=50 \
          ${workers:+GATEWAY_WORKERS=$workers} "${env_args[@]}" "${side_args[@]}"
        gw_port[$side]=$port gw_pid[$side]=${pids[-1]}
        echo "fill $side $store ${torrents}x$peers: $("$work/scale-load" 127.0.0.1 "$port" fill "$torrents" "$peers")" >&2
      done
      for ((r = 0; r < rounds; r++)); do
        if ((r % 2 == 0)); then order=("${sides[@]}"); else order=(); for ((i = ${#sides[@]} - 1; i >= 0; i--)); do order+=("${sides[$i]}"); done; fi
        for side in "${order[@]}"; do measure "$side"; done
      done
      for side in "${sides[@]}"; do
        rows=${results[$side]}
        best_rps=$(cut -d' ' -f1 <<<"$rows" | grep . | sort -g | tail -1)
        med_rps=$(cut -d' ' -f1 <<<"$rows" | grep . | median)
        best_cpu=$(cut -d' ' -f2 <<<"$rows" | grep . | sort -g | head -1)
        med_cpu=$(cut -d' ' -f2 <<<"$rows" | grep . | median)
        rcpu=- usec=- reads=-
        if [ "$store" = redis ]; then
          rcpu=$(cut -d' ' -f3 <<<"$rows" | grep . | median)
          usec=$(cut -d' ' -f4 <<<"$rows" | grep . | median)
          reads=$(cut -d' ' -f5 <<<"$rows" | grep . | median)
        fi
        printf '%-7s %9s %6s %7s %-6s %9s %9s %10s %10s %12s %14s %9s\n' "$store" "$torrents" "$peers" "${workers:-default}" "$side" \
          "$best_rps" "$med_rps" "$best_cpu" "$med_cpu" "$rcpu" "$usec" "$reads"
      done
      # Free the cell's memory before the next: gateways first, then their stores.
      launcher stop "${gw_pid[@]}"
      pids=()
      for side in "${sides[@]}"; do
        s="$work/stop-$store-$side.sh"
        if [ -f "$s" ]; then bash "$s"; rm -f "$s"; fi
      done
      unset gw_port gw_pid redis_port redis_pid results
    done
  done
done
