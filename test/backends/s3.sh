#!/usr/bin/env bash
# S3 test backends for Ferry: MinIO and versitygw, built with `go install`
# into a cache outside the repo so that later runs start in seconds.
#
#   test/backends/s3.sh install            build missing binaries (idempotent)
#   test/backends/s3.sh bin                print the bin directory
#   test/backends/s3.sh start minio|versitygw DIR
#                                          start one on 127.0.0.1 (free port),
#                                          data in DIR; prints KEY=VALUE lines
#                                          (ENDPOINT, ACCESS_KEY, SECRET_KEY, PID)
#   test/backends/s3.sh stop PID           stop a server started by `start`
#
# Cache layout ($FERRY_TEST_CACHE, default ~/.cache/ferry-test):
#   bin/                 minio, versitygw (+ .version stamps)
#   go/path go/modcache go/cache   GOPATH, GOMODCACHE, GOCACHE for these builds
#
# MinIO is AGPL: it is only ever run as an external binary, never imported.
set -euo pipefail

MINIO_MOD="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
VERSITYGW_MOD="github.com/versity/versitygw/cmd/versitygw"
VERSITYGW_VERSION="v1.8.0"

CACHE="${FERRY_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test}"
BIN="$CACHE/bin"

build() { # name module version [extra GOFLAGS]
  local name=$1 mod=$2 ver=$3 flags=${4:-}
  local stamp="$BIN/$name.version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$ver" ]; then
    echo "$name $ver: cached ($BIN/$name)"
    return 0
  fi
  echo "$name $ver: building (go install; minutes on a cold cache)"
  mkdir -p "$BIN" "$CACHE/go/path" "$CACHE/go/modcache" "$CACHE/go/cache"
  local start=$SECONDS
  (
    cd "$CACHE"   # outside any module: go install pkg@version
    env GOBIN="$BIN" GOPATH="$CACHE/go/path" GOMODCACHE="$CACHE/go/modcache" \
      GOCACHE="$CACHE/go/cache" GOTOOLCHAIN=local CGO_ENABLED=0 \
      GOFLAGS="-buildvcs=false $flags" \
      go install "$mod@$ver"
  )
  echo "$ver" > "$stamp"
  echo "$name $ver: built in $((SECONDS - start))s"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # url seconds
  local url=$1 n=$2
  for _ in $(seq 1 $((n * 10))); do
    if code=$(curl -s -o /dev/null -w '%{http_code}' "$url") && [ "$code" != 000 ]; then
      echo "$code"; return 0
    fi
    sleep 0.1
  done
  return 1
}

cmd=${1:-install}
case "$cmd" in
  install)
    build minio "$MINIO_MOD" "$MINIO_VERSION" "-mod=mod"
    build versitygw "$VERSITYGW_MOD" "$VERSITYGW_VERSION"
    ;;
  install-minio) build minio "$MINIO_MOD" "$MINIO_VERSION" "-mod=mod" ;;
  install-versitygw) build versitygw "$VERSITYGW_MOD" "$VERSITYGW_VERSION" ;;
  bin) echo "$BIN" ;;
  start)
    kind=${2:?start minio|versitygw DIR}; dir=${3:?start minio|versitygw DIR}
    mkdir -p "$dir/data"
    port=$(free_port)
    ak="ferry$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
    sk="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    case "$kind" in
      minio)
        port2=$(free_port)
        MINIO_ROOT_USER="$ak" MINIO_ROOT_PASSWORD="$sk" MINIO_BROWSER=off \
          MINIO_UPDATE=off setsid "$BIN/minio" server "$dir/data" --quiet \
          --address "127.0.0.1:$port" --console-address "127.0.0.1:$port2" \
          >"$dir/server.log" 2>&1 &
        pid=$!
        wait_http "http://127.0.0.1:$port/minio/health/live" 60 >/dev/null ||
          { cat "$dir/server.log" >&2; kill "$pid"; exit 1; }
        ;;
      versitygw)
        setsid "$BIN/versitygw" --port "127.0.0.1:$port" --access "$ak" --secret "$sk" \
          posix "$dir/data" >"$dir/server.log" 2>&1 &
        pid=$!
        wait_http "http://127.0.0.1:$port/" 60 >/dev/null ||
          { cat "$dir/server.log" >&2; kill "$pid"; exit 1; }
        ;;
      *) echo "unknown backend $kind" >&2; exit 2 ;;
    esac
    echo "ENDPOINT=http://127.0.0.1:$port"
    echo "ACCESS_KEY=$ak"
    echo "SECRET_KEY=$sk"
    echo "PID=$pid"
    ;;
  stop)
    pid=${2:?stop PID}
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    ;;
  *) echo "usage: $0 install|bin|start KIND DIR|stop PID" >&2; exit 2 ;;
esac
