#!/usr/bin/env bash
# What TLS costs per announce (docs/tls.md): one gateway on the memory store
# answers plain HTTP on PORT and HTTPS on HTTPS_PORT (the same process, the
# same swarms), and wrk drives each port in turn, alternating which goes
# first round by round. Measured: the gateway's CPU time (utime+stime of the
# whole process, /proc/PID/stat) per answered announce (its own
# shoal_requests_total), which the load generator sharing the cores cannot
# blur the way it blurs throughput; and announces/s for scale.
#   bench/tls-cost.sh [SECONDS] [ROUNDS]
# Modes: keep-alive (16 connections, as behind a proxy or from a client
# that keeps its connection) and close (a connection, so a TLS handshake,
# per announce: what most clients do). Not part of `make test`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
secs=${1:-5} rounds=${2:-5}
conns=16

python3 -c 'import os; print("\n".join(os.urandom(20).hex() for _ in range(10000)))' >"$work/hashes.txt"
# ECDSA P-256, as cert-manager issues by default with ACME issuers' ECDSA keys.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null

http=$(free_port) https=$(free_port) admin=$(free_port)
start_service "$root" announce-gateway "$work/gw.log" PORT="$http" HTTPS_PORT="$https" \
  ADMIN_PORT="$admin" STORAGE_DRIVER=memory UDP_ENABLED=false \
  TLS_CERT_FILE="$work/tls.crt" TLS_KEY_FILE="$work/tls.key"
pid=${pids[0]}
tick_ns=$((1000000000 / $(getconf CLK_TCK)))

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
answered() {
  curl -s "http://127.0.0.1:$admin/metrics" |
    awk '/^shoal_requests_total\{protocol="http",action="announce",outcome="ok"\}/ { print $2 }'
}
# run MODE SCHEME PORT: one wrk run; prints "ns_per_announce rps"
run() {
  local mode=$1 scheme=$2 port=$3 t0 a0 t1 a1 extra=()
  [ "$mode" = close ] && extra=(-H 'Connection: close')
  t0=$(cpu_ticks) a0=$(answered)
  HASHES="$work/hashes.txt" wrk -t1 -c"$conns" -d"${secs}s" "${extra[@]}" \
    -s "$shared/bench/announce.lua" "$scheme://127.0.0.1:$port" >/dev/null 2>&1
  t1=$(cpu_ticks) a1=$(answered)
  awk -v dt=$((t1 - t0)) -v da=$((a1 - a0)) -v tick="$tick_ns" -v s="$secs" \
    'BEGIN { if (da == 0) { print "0 0"; exit } printf "%.0f %.0f\n", dt * tick / da, da / s }'
}

bench_header ", ${conns} connections, one gateway serving both"
for mode in keep-alive close; do
  run "$mode" http "$http" >/dev/null # warm-up: JIT, swarms filled
  run "$mode" https "$https" >/dev/null
  : >"$work/$mode.rounds"
  for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order="http https"; else order="https http"; fi
    for scheme in $order; do
      port=$http
      [ "$scheme" = https ] && port=$https
      read -r ns rps < <(run "$mode" "$scheme" "$port")
      echo "$mode round $r $scheme: ${ns} ns/announce (gateway CPU), ${rps} announces/s" | tee -a "$work/$mode.rounds" >&2
    done
  done
  awk -v mode="$mode" '
    function median(a, n,   i, j, x) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { sub(/:$/, "", $4); if ($4 == "http") { h[++nh] = $5; hr[nh] = $9 } else { s[++ns] = $5; sr[ns] = $9 } }
    END {
      mh = median(h, nh); ms = median(s, ns)
      printf "%s: http %d ns/announce, https %d ns/announce, TLS adds %d ns (x%.2f); announces/s median http %d, https %d\n",
        mode, mh, ms, ms - mh, ms / mh, median(hr, nh), median(sr, ns)
    }' "$work/$mode.rounds"
done
