#!/usr/bin/env bash
# Azure test backend for Ferry: Azurite (the Azure Storage emulator) from
# the npm registry, installed into a cache outside the repo so that later
# runs start in seconds. Node comes from Debian's packages.
#
#   test/backends/azure.sh install         install Azurite if missing (idempotent)
#   test/backends/azure.sh bin             print the directory holding azurite-blob
#   test/backends/azure.sh start DIR       start azurite-blob on 127.0.0.1 (free port),
#                                          data in DIR; prints KEY=VALUE lines
#                                          (ENDPOINT, ACCOUNT, ACCOUNT_KEY, PID)
#   test/backends/azure.sh stop PID        stop a server started by `start`
#
# Cache layout ($FERRY_TEST_CACHE, default ~/.cache/ferry-test):
#   azurite/node_modules/.bin/azurite-blob   (+ azurite/.version stamp)
#
# 3.37.0 declares Node >= 22 while Debian bookworm's Node is 20 (npm warns
# EBADENGINE and installs); the whole Azure suite passes on Node 20. It is
# the first Azurite that verifies azblob 1.8.3's user-delegation SAS
# (string-to-sign layout of service version 2026-04-06 and later), which
# 3.35 refused with 403; stores/azure TestDefaultAzureCredential uses them.
set -euo pipefail

AZURITE_VERSION="3.37.0"
# Azurite's fixed development account (public, documented by Microsoft).
ACCOUNT="devstoreaccount1"
ACCOUNT_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

CACHE="${FERRY_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test}"
DIR="$CACHE/azurite"
BIN="$DIR/node_modules/.bin"

install() {
  if [ -x "$BIN/azurite-blob" ] && [ "$(cat "$DIR/.version" 2>/dev/null)" = "$AZURITE_VERSION" ]; then
    echo "azurite $AZURITE_VERSION: cached ($BIN/azurite-blob)"
    return 0
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "installing nodejs and npm (Debian)"
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  echo "azurite $AZURITE_VERSION: installing (npm; about a minute on a cold cache)"
  mkdir -p "$DIR"
  local start=$SECONDS
  (
    cd "$DIR"
    [ -f package.json ] || echo '{"name":"ferry-test-azurite","private":true}' > package.json
    npm install --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
  )
  echo "$AZURITE_VERSION" > "$DIR/.version"
  echo "azurite $AZURITE_VERSION: installed in $((SECONDS - start))s"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

cmd=${1:-install}
case "$cmd" in
  install) install ;;
  bin) echo "$BIN" ;;
  start)
    dir=${2:?start DIR}
    mkdir -p "$dir/data"
    port=$(free_port)
    setsid "$BIN/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
      --location "$dir/data" --skipApiVersionCheck --disableTelemetry --loose \
      >"$dir/server.log" 2>&1 &
    pid=$!
    ok=
    for _ in $(seq 1 600); do
      code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/$ACCOUNT?comp=list" || true)
      if [ -n "$code" ] && [ "$code" != 000 ]; then ok=1; break; fi
      sleep 0.1
    done
    [ -n "$ok" ] || { cat "$dir/server.log" >&2; kill "$pid"; exit 1; }
    echo "ENDPOINT=http://127.0.0.1:$port/$ACCOUNT"
    echo "ACCOUNT=$ACCOUNT"
    echo "ACCOUNT_KEY=$ACCOUNT_KEY"
    echo "PID=$pid"
    ;;
  stop)
    pid=${2:?stop PID}
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    ;;
  *) echo "usage: $0 install|bin|start DIR|stop PID" >&2; exit 2 ;;
esac
