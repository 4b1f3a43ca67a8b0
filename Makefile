# The two commands of the README: `make run` and `make test`. Both install
# what they need on a fresh machine (Node 24 and pnpm from the npm registry,
# Debian packages for the tests).
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
PKG_JSONS := package.json $(wildcard packages/*/package.json services/*/package.json tests/package.json bench/package.json)

.PHONY: run test test-images check typecheck lint format system-deps native bench-deps local-up local-down chart images clean

.tools/bin/pnpm: scripts/toolchain.sh
	@scripts/toolchain.sh >/dev/null

node_modules/.shoal-installed: .tools/bin/pnpm pnpm-lock.yaml $(PKG_JSONS)
	pnpm install --frozen-lockfile
	@touch $@

## run: the tracker on one machine: HTTP + UDP on 6969, in-memory store.
run: node_modules/.shoal-installed native
	cd services/announce-gateway && exec node --disable-warning=ExperimentalWarning src/main.ts

## test: formatting, typecheck, lint, and every test (unit, conformance, real servers, real clients),
## then the container tests (test-images) on their own, so their image builds never load the timed drills.
test: system-deps node_modules/.shoal-installed native
	pnpm run format:check
	pnpm run typecheck
	pnpm run lint
	pnpm test
	@$(MAKE) --no-print-directory test-images

## local-up: the three services + Redis Sentinel + PostgreSQL as local processes (docs/local-topology.md).
local-up: node_modules/.shoal-installed system-deps
	deploy/local/up.sh

## local-down: stop the local topology; no process is left.
local-down:
	deploy/local/down.sh

## chart: lint (--strict) and render helm/shoal with Helm 3 and Helm 4, defaults and every ci/ values file.
chart: system-deps
	@scripts/helm.sh >/dev/null
	@for helm in .tools/helm3/helm .tools/helm4/helm; do \
	  $$helm lint --strict helm/shoal >/dev/null && \
	  for values in "" helm/shoal/ci/*-values.yaml; do \
	    $$helm template shoal helm/shoal $${values:+-f $$values} >/dev/null || exit 1; \
	  done && echo "$$($$helm version --short): lint and render ok"; \
	done

## images: the three service images from the one Dockerfile, with Docker if an engine runs, else podman (docs/kubernetes.md "Images").
images:
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || scripts/system-deps.sh images
	scripts/images.sh

## test-images: the images built (cached) and run with podman: the split topology as containers, and each image as the chart runs it (docs/testing.md "Container test").
test-images: node_modules/.shoal-installed system-deps
	@scripts/system-deps.sh images
	pnpm vitest run --config tests/images/vitest.config.ts

system-deps:
	@scripts/system-deps.sh test

## native: the UDP batching addon (docs/udp-batch.md), compiled with the system's cc and the
## npm package node-api-headers; never fails: without it the gateway uses node:dgram and logs why.
native: node_modules/.shoal-installed
	@node --disable-warning=ExperimentalWarning services/announce-gateway/src/udp-batch-build.ts

bench-deps: node_modules/.shoal-installed
	@scripts/system-deps.sh bench

typecheck lint: node_modules/.shoal-installed
	pnpm run $@

format: node_modules/.shoal-installed
	pnpm run format

clean:
	rm -rf node_modules */*/node_modules .tools
