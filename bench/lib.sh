# The set-up the bench/*.sh scripts share: sourced (after `set -euo pipefail`),
# never run. Sourcing it sets `root` (this tree), `shared` (the load harness
# and its reference trackers: SHOAL_SHARED, by default the folder named
# shared beside this tree), puts the toolchain on
# PATH, makes a throwaway `work` dir and an empty `pids` list, and traps EXIT
# to stop everything the script started:
#   - every service in pids (start_service),
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
  # The services: SIGTERM, SIGKILL after a grace, gone before their stores stop.
  [ "${#pids[@]}" -eq 0 ] || launcher stop "${pids[@]}" || true
  wait 2>/dev/null || true
  for s in "$work"/stop-*.sh; do [ -f "$s" ] && bash "$s"; done
  [ "$peers_started" = 1 ] && "$shared/bench/peers.sh" stop
  if declare -F bench_on_exit >/dev/null; then bench_on_exit; fi
  rm -rf "$work"
  true
}
trap bench_cleanup EXIT
# A signal ends the script through exit, so the EXIT trap above still runs
# (timeout's SIGTERM otherwise leaves the services behind).
trap 'exit 143' TERM
trap 'exit 130' INT

# The harness's load generator and reference trackers, built and started.
# SKIP_BENCH_DEPS=1: the Debian packages are there already (a git worktree, whose make would install a toolchain).
start_peers() {
  [ -n "${SKIP_BENCH_DEPS:-}" ] || make -C "$root" -s bench-deps >/dev/null
  "$shared/bench/peers.sh" start >&2
  peers_started=1
}

# start_service TREE SERVICE LOG [KEY=VALUE...]: services/SERVICE of TREE
# through the tests' launcher (packages/testing/src/launcher-cli.ts) on
# 127.0.0.1 (log level info), its output in LOG (a *.log path), its pid
# added to pids. Returns once it listens; otherwise prints its output and
# exits. The settings given override those defaults and are all it gets
# besides PATH, HOME, TMPDIR, LANG, LC_ALL and TZ.
start_service() {
  local tree=$1 service=$2 log=$3 pid
  shift 3
  pid=$(launcher start --tree "$tree" "$service" "$log" HOST=127.0.0.1 LOG_LEVEL=info "$@") || exit 1
  pids+=("$pid")
}

launcher() {
  node --disable-warning=ExperimentalWarning "$root/packages/testing/src/launcher-cli.ts" "$@"
}

# A port free for both UDP and TCP (the gateway serves both on one number).
free_port() {
  python3 -c '
import socket
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        t.close(); u.close()
else:
    raise SystemExit("no port free for both UDP and TCP")'
}

# The first line of a run's output: when, on what, how long. Extra text follows.
bench_header() {
  echo "# $(date -u +%FT%TZ) $(nproc) cores, node $(node --version), ${secs}s x ${rounds} rounds$*"
}
