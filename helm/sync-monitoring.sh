#!/usr/bin/env bash
# Copies deploy/monitoring's dashboards and Prometheus rules into the chart
# (a chart cannot read files outside its folder). tests/src/helm-chart.test.ts
# fails while the copies differ.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
chart="$root/helm/shoal/files"
rm -f "$chart"/dashboards/*.json "$chart"/rules/*.yml "$chart"/rules/*.yaml
mkdir -p "$chart/dashboards" "$chart/rules"
shopt -s nullglob
for f in "$root"/deploy/monitoring/dashboards/*.json; do cp "$f" "$chart/dashboards/"; done
for f in "$root"/deploy/monitoring/rules/*.yml "$root"/deploy/monitoring/rules/*.yaml; do cp "$f" "$chart/rules/"; done
