# syntax=docker/dockerfile:1
#
# Ferry: one binary in place of `mlflow server`.
#
#   docker build -t ferry .
#   docker run --rm -p 5000:5000 -v ferry-data:/data ferry
#
# With no flags it serves on 0.0.0.0:5000 with the embedded defaults, both
# relative to the working directory /data: SQLite at /data/mlflow.db and
# artifacts in /data/mlartifacts — mount a volume there to keep them. Any
# `mlflow server` flag can follow the image name, e.g.
#   docker run ... ferry server --host 0.0.0.0 --artifacts-destination /data/artifacts
# The HEALTHCHECK follows MLFLOW_PORT and MLFLOW_STATIC_PREFIX: set the port
# or prefix with those env vars rather than with flags to keep it right.

# --- build -----------------------------------------------------------------
# The full golang image has gcc and libc headers: mattn/go-sqlite3 is cgo.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Ferry's version, reported by `ferry version`, /metrics and X-Ferry-Version.
# The tag and -extldflags cut idle memory: see internal/buildflags.
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -tags disable_grpc_modules \
      -ldflags "-s -w -X main.version=${VERSION} -extldflags=-Wl,-Ttext-segment=0x401000" -o /out/ferry . \
    && /out/ferry version

# --- runtime ---------------------------------------------------------------
# glibc to match the cgo build; ca-certificates for TLS to S3 and databases;
# curl for the health check.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ferry \
    && useradd --system --uid 10001 --gid ferry --home-dir /data --no-create-home --shell /usr/sbin/nologin ferry \
    && mkdir -p /data \
    && chown ferry:ferry /data
COPY --from=build /out/ferry /usr/local/bin/ferry
USER ferry:ferry
WORKDIR /data
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${MLFLOW_PORT:-5000}${MLFLOW_STATIC_PREFIX:-}/health" || exit 1
ENTRYPOINT ["ferry"]
CMD ["server", "--host", "0.0.0.0"]
