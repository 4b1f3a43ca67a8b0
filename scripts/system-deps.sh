#!/usr/bin/env bash
# Installs the Debian packages the tests use (real servers and real BitTorrent
# clients), only those missing. Needs root, or sudo.
#   scripts/system-deps.sh test    what `make test` needs (gcc and libc6-dev: the UDP
#                                  batching addon, docs/udp-batch.md)
#   scripts/system-deps.sh bench   what bench/ needs on top
#   scripts/system-deps.sh images  what building and running the images needs here:
#                                  podman with runc (docs/kubernetes.md "Building
#                                  here with podman"), mmdebstrap for the local base
#   scripts/system-deps.sh clients the real clients of tests/src/client-matrix/run.ts
set -euo pipefail
case "${1:-test}" in
  test) pkgs=(gcc libc6-dev aria2 mktorrent python3-libtorrent redis-server redis-sentinel redis-tools postgresql openssl curl procps prometheus unzip chromium) ;;
  bench) pkgs=(aria2 mktorrent python3-libtorrent redis-server redis-sentinel redis-tools postgresql openssl curl procps prometheus unzip opentracker wrk gcc python3-matplotlib) ;;
  images) pkgs=(podman runc mmdebstrap) ;;
  clients) pkgs=(aria2 python3-libtorrent qbittorrent-nox transmission-daemon) ;;
  *) echo "usage: $0 test|bench|images|clients" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq >/dev/null
# Debian's postgresql/redis packages try to start services; in a container with
# no init system that fails harmlessly, and the tests start their own servers.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
