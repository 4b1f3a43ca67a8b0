#!/usr/bin/env bash
# Builds the service images from the one Dockerfile with the engine this
# machine has: a reachable Docker engine (BuildKit), else podman
# (docs/kubernetes.md "Images").
#   scripts/images.sh [SERVICE...]      default: all three, tagged shoal-SERVICE:$TAG
# Environment:
#   TAG             image tag (default: the chart's appVersion)
#   NODE_IMAGE      base image (default: the Dockerfile's pinned node:24-slim);
#                   `local` builds on scripts/container-base.sh's stand-in, which
#                   podman also falls back to, with a warning, when it cannot
#                   pull the pinned base (no image registry reachable)
#   EXTRA_CA_CERTS  PEM file of extra CAs the build must trust (a TLS-intercepting
#                   proxy), passed as the build secret `ca`; default
#                   $NODE_EXTRA_CA_CERTS, as Node on this machine trusts it
#   ENGINE          docker or podman, to choose
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(announce-gateway storage-api gc-worker)
TAG=${TAG:-$(sed -n "s/^appVersion: *['\"]\{0,1\}\([^'\"]*\).*/\1/p" helm/shoal/Chart.yaml)}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/deploy/containers/containers.conf}

engine=${ENGINE:-}
if [ -z "$engine" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v podman >/dev/null; then
    engine=podman
  else
    echo "images: no container engine: start a Docker engine, or run scripts/system-deps.sh images (podman)" >&2
    exit 1
  fi
fi

args=()
pinned=$(sed -n 's/^ARG NODE_IMAGE=//p' Dockerfile)
base=${NODE_IMAGE:-}
if [ -z "$base" ] && [ "$engine" = podman ] && ! podman image exists "$pinned" &&
  ! podman pull --quiet "$pinned" >/dev/null 2>&1; then
  echo "images: podman cannot pull $pinned; building on the local stand-in (scripts/container-base.sh): not for publishing" >&2
  base=local
fi
[ "$base" = local ] && base=$(scripts/container-base.sh)
[ -n "$base" ] && args+=(--build-arg "NODE_IMAGE=$base")

ca=${EXTRA_CA_CERTS:-${NODE_EXTRA_CA_CERTS:-}}
[ -n "$ca" ] && args+=(--secret "id=ca,src=$ca")
# podman: the build's RUN steps use the host's network, so no network set-up
# is needed (and none is possible on some machines).
[ "$engine" = podman ] && args+=(--network host)
[ "$engine" = docker ] && export DOCKER_BUILDKIT=1

for service in "${services[@]}"; do
  echo "images: $engine build shoal-$service:$TAG${base:+ on $base}" >&2
  "$engine" build "${args[@]}" --build-arg "SERVICE=$service" -t "shoal-$service:$TAG" .
done
