# syntax=docker/dockerfile:1
# One image per service:
#   docker build --build-arg SERVICE=announce-gateway -t shoal-announce-gateway .
#   docker build --build-arg SERVICE=storage-api      -t shoal-storage-api .
#   docker build --build-arg SERVICE=gc-worker        -t shoal-gc-worker .
# No build step: Node 24 strips the TypeScript types at load time.
# scripts/image-files.sh makes /app: the service and its workspace packages
# (moved out of node_modules, where Node refuses to strip types), production
# dependencies as the lockfile pins them, no test code; tests/src/image-files.test.ts
# checks the same script's output without a container engine.
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
ARG SERVICE
ARG PNPM_VERSION=10.34.8
RUN case "$SERVICE" in announce-gateway|storage-api|gc-worker) ;; \
      *) echo "build with --build-arg SERVICE=announce-gateway|storage-api|gc-worker" >&2; exit 1 ;; esac
RUN npm install --global --no-audit --no-fund "pnpm@${PNPM_VERSION}"
WORKDIR /src
# The lockfile alone fetches every package into the store, so this layer is
# cached across source edits.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
RUN --mount=type=cache,id=pnpm-store,target=/root/.local/share/pnpm/store \
    pnpm fetch --prod
COPY . .
RUN --mount=type=cache,id=pnpm-store,target=/root/.local/share/pnpm/store \
    sh scripts/image-files.sh "${SERVICE}" /app
RUN node --disable-warning=ExperimentalWarning --input-type=module -e "await import('/app/src/config.ts')"

FROM ${NODE_IMAGE}
ARG SERVICE
LABEL org.opencontainers.image.title="shoal-${SERVICE}"
ENV NODE_ENV=production
COPY --from=build /app /app
WORKDIR /app
# Matches the chart's podSecurityContext (runAsUser/runAsGroup 10001).
USER 10001:10001
# gateway: 6969 tcp+udp, admin 9090; storage-api: 8080, admin 9091; gc-worker: admin 9092.
EXPOSE 6969/tcp 6969/udp 8080 9090 9091 9092
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--disable-warning=ExperimentalWarning", "src/main.ts"]
