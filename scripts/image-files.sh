#!/bin/sh
# The file set of one service image: the service and the workspace packages it
# needs, production dependencies only, no test code (docs/testing.md "Where
# test code lives"). The Dockerfile runs it, and tests/src/image-files.test.ts
# runs it into a temporary folder and checks what it leaves, without a
# container engine.
#
#   scripts/image-files.sh announce-gateway|storage-api|gc-worker DEST
#
# Run from the workspace root. The deploy takes the versions in the lockfile
# and installs from the pnpm store only (`pnpm fetch --prod` fills it in the
# Dockerfile).
set -eu

service=${1:-}
dest=${2:-}
case "$service" in
  announce-gateway | storage-api | gc-worker) ;;
  *)
    echo "usage: $0 announce-gateway|storage-api|gc-worker DEST" >&2
    exit 2
    ;;
esac
if [ -z "$dest" ] || [ -e "$dest" ]; then
  echo "$0: DEST must be a path that does not exist yet" >&2
  exit 2
fi

pnpm --filter "@shoal/$service" deploy --prod --offline \
  --config.inject-workspace-packages=true --config.node-linker=hoisted "$dest"

# Node refuses to strip TypeScript types under node_modules, and the deploy
# copies the workspace packages there: they move to workspace/ and are linked
# back (node_modules is hoisted, so their own dependencies still resolve).
cd "$dest"
mkdir workspace
for p in node_modules/@shoal/*; do
  n=$(basename "$p")
  mv "$p" "workspace/$n"
  ln -s "../../workspace/$n" "node_modules/@shoal/$n"
done

# Test code: unit tests beside the sources, and each package's test/ folder
# (helpers, fakes, fixtures).
find . -name '*.test.ts' -type f -exec rm -f {} +
rm -rf ./test ./workspace/*/test

# What no running service reads from its dependencies: type declarations and
# TypeScript sources (Node does not load .ts under node_modules), source maps,
# and Markdown. Half of @kubernetes/client-node's 62 MB is declarations and
# maps, and it depends on @types/* at runtime (docs/kubernetes.md "Images").
# Licence files stay.
find node_modules/ -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' \
  -o -name '*.md' -o -name '*.markdown' \) -exec rm -f {} +
find node_modules/ -mindepth 1 -type d -empty -delete
