// Package e2e holds Ferry's black-box tests: each test starts the real
// `ferry server` binary on a free 127.0.0.1 port with its own working
// directory and artifact destination, talks to it over HTTP (or raw TCP),
// and reads its JSON logs, its /metrics and its /proc status. The binary
// comes from $FERRY_BIN, or is built once by TestMain.
//
// All code lives in _test.go files; this file only documents the package.
package e2e
