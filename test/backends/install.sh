#!/usr/bin/env bash
# Installs the real test backends that are missing, from Debian's packages:
# Prometheus (with promtool). Idempotent; fast when everything is there.
set -euo pipefail

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  # Debian would start packaged services on every interface; policy-rc.d
  # exit 101 stops that (the tests start their own on 127.0.0.1).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # In case a service got started anyway.
  pkill -x prometheus 2>/dev/null || true
fi
prometheus --version 2>&1 | head -1
