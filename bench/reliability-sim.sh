#!/usr/bin/env bash
# The reliability simulation (RELIABILITY.md "Simulation"): the table on
# stdout, one PNG per scenario in docs/reliability-sim/. Takes well under a
# minute; needs python3-matplotlib (scripts/system-deps.sh bench).
#   bench/reliability-sim.sh [--seed N] [--scale N] [--peer-lifetime SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
json=$(mktemp)
trap 'rm -f "$json"' EXIT
node --disable-warning=ExperimentalWarning bench/reliability-sim.ts --json "$json" "$@"
/usr/bin/python3 bench/reliability-sim-plot.py "$json" docs/reliability-sim
