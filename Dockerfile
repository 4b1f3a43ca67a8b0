# syntax=docker/dockerfile:1
# One image per service:
#   docker build --build-arg SERVICE=announce-gateway -t shoal-announce-gateway .
#   docker build --build-arg SERVICE=storage-api      -t shoal-storage-api .
#   docker build --build-arg SERVICE=gc-worker        -t shoal-gc-worker .
# No build step: Node 24 strips the TypeScript types at load time. Node
# refuses to strip types under node_modules, and `pnpm deploy` copies the
# workspace packages there, so they are moved to /app/workspace and linked
# back (node_modules is hoisted, so their own dependencies still resolve).
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
    pnpm --filter "@shoal/${SERVICE}" deploy --legacy --prod --offline \
      --config.node-linker=hoisted /app
RUN set -eu; cd /app; mkdir workspace; \
    for p in node_modules/@shoal/*; do \
      n=$(basename "$p"); mv "$p" "workspace/$n"; ln -s "../../workspace/$n" "node_modules/@shoal/$n"; \
    done; \
    find /app -name '*.test.ts' -delete; \
    node --disable-warning=ExperimentalWarning --input-type=module -e "await import('/app/src/config.ts')"

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
