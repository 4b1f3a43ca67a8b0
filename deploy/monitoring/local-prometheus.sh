#!/usr/bin/env bash
# Prometheus scraping the local topology (deploy/local/up.sh) with Shoal's
# rules; see docs/observability.md.
#   deploy/monitoring/local-prometheus.sh [--state-dir DIR] [--port 9093] [--config-only]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
node="$root/.tools/bin/node"
[ -x "$node" ] || node=node
exec "$node" --disable-warning=ExperimentalWarning "$root/packages/monitoring/src/local-prometheus.ts" "$@"
