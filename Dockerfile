# One image per service; scripts/images.sh (`make images`) builds all three
# with Docker (BuildKit) or podman, and docs/kubernetes.md "Images" shows the
# commands for a registry:
#   docker build --build-arg SERVICE=announce-gateway -t shoal-announce-gateway .
#   docker build --build-arg SERVICE=storage-api      -t shoal-storage-api .
#   docker build --build-arg SERVICE=gc-worker        -t shoal-gc-worker .
# No build step: Node 24 strips the TypeScript types at load time.
# scripts/image-files.sh makes /app: the service and its workspace packages
# (moved out of node_modules, where Node refuses to strip types), production
# dependencies as the lockfile pins them, no test code, no type declarations
# or source maps; tests/src/image-files.test.ts checks the same script's
# output without a container engine.
#
# The base is node:24-slim pinned by digest (docs/kubernetes.md "Base image");
# NODE_IMAGE replaces it, e.g. with the local stand-in of scripts/container-base.sh.
ARG NODE_IMAGE=docker.io/library/node:24-slim@sha256:a9f5f7c91a432850b2a8a7797adf5eadb6c733ceed61167806cee7ea7fbc29df

FROM ${NODE_IMAGE} AS build
ARG PNPM_VERSION=10.34.8
# Builds behind a TLS-intercepting proxy pass its CA as the secret `ca`
# (--secret id=ca,src=FILE): npm and pnpm trust it through NODE_EXTRA_CA_CERTS,
# and a secret is mounted for one RUN only, so no layer keeps it.
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi; \
    npm install --global --no-audit --no-fund --no-update-notifier "pnpm@${PNPM_VERSION}"
WORKDIR /src
# The lockfile alone fetches every production package into the store, so
# this layer is cached across source edits. The store stays in this stage's
# layer rather than a cache mount: the offline deploy below needs every
# package in it, and a builder may empty a cache mount (prune) while keeping
# the layer that filled it.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi; \
    pnpm fetch --prod
# SERVICE only from here on, so the three builds share the layers above.
ARG SERVICE
RUN case "$SERVICE" in announce-gateway|storage-api|gc-worker) ;; \
      *) echo "build with --build-arg SERVICE=announce-gateway|storage-api|gc-worker" >&2; exit 1 ;; esac
COPY . .
RUN sh scripts/image-files.sh "${SERVICE}" /app
RUN node --disable-warning=ExperimentalWarning --input-type=module -e "await import('/app/src/config.ts')"

FROM ${NODE_IMAGE}
ARG SERVICE
LABEL org.opencontainers.image.title="shoal-${SERVICE}"
ENV NODE_ENV=production
COPY --from=build /app /app
WORKDIR /app
# Matches the chart's podSecurityContext (runAsUser/runAsGroup 10001).
USER 10001:10001
# gateway: 6969 tcp+udp, HTTPS 6970 when TLS is on, admin 9090; storage-api: 8080, admin 9091; gc-worker: admin 9092.
EXPOSE 6969/tcp 6969/udp 6970/tcp 8080 9090 9091 9092
STOPSIGNAL SIGTERM
# The service is process 1, which gets no default action for SIGTERM: the
# preload exits on a stop signal that comes before main.ts's drain listens.
ENTRYPOINT ["node", "--disable-warning=ExperimentalWarning", "--import", "@shoal/service/early-signals", "src/main.ts"]
