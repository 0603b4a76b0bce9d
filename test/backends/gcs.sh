#!/usr/bin/env bash
# GCS test backend for Ferry: fake-gcs-server (JSON API, resumable uploads),
# built with `go install` into the same cache as the S3 servers so that
# later runs start in seconds.
#
#   test/backends/gcs.sh install           build fake-gcs-server if missing (idempotent)
#   test/backends/gcs.sh bin               print the bin directory
#   test/backends/gcs.sh start DIR         start it on 127.0.0.1 (free port), data in
#                                          DIR; prints KEY=VALUE lines (HOST, PID);
#                                          point clients at it with STORAGE_EMULATOR_HOST=HOST
#   test/backends/gcs.sh stop PID          stop a server started by `start`
#
# fake-gcs-server has no XML multipart API and does not check signed URLs;
# Ferry's tests cover those against their own server (test/backends/gcsxml).
set -euo pipefail

FAKEGCS_MOD="github.com/fsouza/fake-gcs-server"
FAKEGCS_VERSION="v1.56.1"

CACHE="${FERRY_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test}"
BIN="$CACHE/bin"

build() {
  local name=fake-gcs-server
  local stamp="$BIN/$name.version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$FAKEGCS_VERSION" ]; then
    echo "$name $FAKEGCS_VERSION: cached ($BIN/$name)"
    return 0
  fi
  echo "$name $FAKEGCS_VERSION: building (go install; minutes on a cold cache)"
  mkdir -p "$BIN" "$CACHE/go/path" "$CACHE/go/modcache" "$CACHE/go/cache"
  local start=$SECONDS
  (
    cd "$CACHE"   # outside any module: go install pkg@version
    env GOBIN="$BIN" GOPATH="$CACHE/go/path" GOMODCACHE="$CACHE/go/modcache" \
      GOCACHE="$CACHE/go/cache" GOTOOLCHAIN=local CGO_ENABLED=0 \
      GOFLAGS="-buildvcs=false" \
      go install "$FAKEGCS_MOD@$FAKEGCS_VERSION"
  )
  echo "$FAKEGCS_VERSION" > "$stamp"
  echo "$name $FAKEGCS_VERSION: built in $((SECONDS - start))s"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

cmd=${1:-install}
case "$cmd" in
  install) build ;;
  bin) echo "$BIN" ;;
  start)
    dir=${2:?start DIR}
    mkdir -p "$dir/data"
    port=$(free_port)
    setsid "$BIN/fake-gcs-server" -host 127.0.0.1 -port "$port" -scheme http \
      -backend filesystem -filesystem-root "$dir/data" \
      -external-url "http://127.0.0.1:$port" -public-host "127.0.0.1:$port" \
      -log-level warn >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
      if curl -sf -o /dev/null "http://127.0.0.1:$port/storage/v1/b"; then
        echo "HOST=127.0.0.1:$port"; echo "PID=$pid"; exit 0
      fi
      sleep 0.1
    done
    cat "$dir/server.log" >&2; kill "$pid"; exit 1
    ;;
  stop)
    pid=${2:?stop PID}
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    ;;
  *) echo "usage: $0 install|bin|start DIR|stop PID" >&2; exit 2 ;;
esac
