#!/usr/bin/env bash
# Shoal's local topology as processes on loopback (docs/local-topology.md).
# State, logs and topology.json: $SHOAL_LOCAL_STATE_DIR (default /tmp/shoal-local) or --state-dir DIR.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
node="$root/.tools/bin/node"
[ -x "$node" ] || node=node
exec "$node" --disable-warning=ExperimentalWarning "$root/packages/testing/src/topology-cli.ts" down "$@"
