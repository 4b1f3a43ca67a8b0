#!/usr/bin/env bash
# The soak (bench/soak.ts): the local topology under mixed HTTP + UDP load
# while its processes are crashed and restarted in turn; prints answers by
# kind, recovery per fault, downloads checked, crashes and memory, and exits
# 1 when a check fails. About 10 minutes; --short runs one round (~2 min).
# Loopback only; stops by itself. Figures: RELIABILITY.md. Not part of `make test`.
#   bench/soak.sh [--short]    env: DURATION_SECONDS RATE TORRENTS FAULT_GAP_SECONDS RSS_LIMIT_MB SOAK_JSON FAULTS
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/.tools/bin:$PATH"
make -C "$root" -s node_modules/.shoal-installed system-deps >/dev/null
cd "$root"
exec node --disable-warning=ExperimentalWarning bench/soak.ts "$@"
