# The set-up the bench/*.sh scripts share: sourced (after `set -euo pipefail`),
# never run. Sourcing it sets `root` (this tree), `shared` (the load harness
# and its reference trackers: SHOAL_SHARED, by default the folder named
# shared beside this tree), puts the toolchain on
# PATH, makes a throwaway `work` dir and an empty `pids` list, and traps EXIT
# to stop everything the script started:
#   - every process in pids,
#   - every $work/stop-*.sh (bench/stores.sh writes one per backend),
#   - the harness's peers, when start_peers started them,
#   - bench_on_exit, when the script defines it,
# then removes $work.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SHOAL_SHARED:-$root/../shared}
export PATH="$root/.tools/bin:$PATH"
work=$(mktemp -d)
pids=()
peers_started=0

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for s in "$work"/stop-*.sh; do [ -f "$s" ] && bash "$s"; done
  [ "$peers_started" = 1 ] && "$shared/bench/peers.sh" stop
  if declare -F bench_on_exit >/dev/null; then bench_on_exit; fi
  rm -rf "$work"
  true
}
trap bench_cleanup EXIT

# The harness's load generator and reference trackers, built and started.
start_peers() {
  make -C "$root" -s bench-deps >/dev/null
  "$shared/bench/peers.sh" start >&2
  peers_started=1
}

# start_service TREE SERVICE LOG [KEY=VALUE...]: services/SERVICE of TREE in
# the background on 127.0.0.1 (log level info), its output in LOG, its pid
# added to pids. The settings given override those defaults.
start_service() {
  local tree=$1 service=$2 log=$3
  shift 3
  (cd "$tree/services/$service" && exec env HOST=127.0.0.1 LOG_LEVEL=info "$@" \
    node --disable-warning=ExperimentalWarning src/main.ts) >"$log" 2>&1 &
  pids+=($!)
}

# wait_listening LOG NAME [TRIES]: waits (TRIES x 0.1 s, default 100) for the
# service logging to LOG to say it listens; otherwise prints its log and exits.
wait_listening() {
  for _ in $(seq "${3:-100}"); do grep -q '"msg":"listening"' "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "$2 did not start:" >&2
  cat "$1" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The first line of a run's output: when, on what, how long. Extra text follows.
bench_header() {
  echo "# $(date -u +%FT%TZ) $(nproc) cores, node $(node --version), ${secs}s x ${rounds} rounds$*"
}
