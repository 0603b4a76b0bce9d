#!/usr/bin/env bash
# Ferry's whole test suite — the one command the README names and .ci/run
# calls. It installs and starts the real backends the tests need (each on
# 127.0.0.1, data in temp dirs), then runs formatting and vet checks, every
# Go test under the race detector, a short fuzz run and the Python
# client-side tests. A fresh machine of the project's kind needs nothing
# installed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s (at %ds)\n' "$*" "$SECONDS"; }

export FERRY_TEST_CACHE="${FERRY_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test}"
mkdir -p "$FERRY_TEST_CACHE"

step "gofmt"
unformatted=$(git ls-files -z '*.go' | xargs -0 -r gofmt -l)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "test backends"
test/backends/install.sh
test/backends/s3.sh install
test/backends/azure.sh install
test/backends/gcs.sh install
test/backends/sftp.sh install
test/backends/databases.sh
# This script installed every backend above, so a test that cannot find one
# fails instead of skipping (a skipped backend test proves nothing).
export FERRY_REQUIRE_BACKENDS=1

step "build ferry"
FERRY_BIN="$(mktemp -d)/ferry"
export FERRY_BIN
# Flags: internal/buildflags (idle RSS; README § Benchmarks).
go build -tags disable_grpc_modules -ldflags=-extldflags=-Wl,-Ttext-segment=0x401000 -o "$FERRY_BIN" .

# -json through test/gotest_report.py: the usual ok/FAIL lines and every
# failed test's output, then the slowest tests and packages (the suite's
# budget is 15 minutes on 2 cores; the report shows where it goes).
step "go test -race"
go test -race -count=1 -timeout 25m -json ./... | python3 test/gotest_report.py

# A fixed number of executions, not a duration: Go 1.26's fuzz coordinator
# can fail a duration-bounded run with a bare "context deadline exceeded"
# when its workers are starved of CPU at the deadline (golang/go#75804,
# fixed in 1.27); a count has no deadline to race. 150,000 executions take
# about 20 s on a loaded 2-core machine, a few seconds on a quiet one.
step "fuzz path validation (fixed number of executions)"
go test -run '^$' -fuzz '^FuzzSafePath$' -fuzztime "${FERRY_FUZZTIME:-150000x}" ./stores/

step "python client tests"
python3 -m unittest discover -s test/python -p 'test_*.py' -v

step "all tests passed in ${SECONDS}s"
