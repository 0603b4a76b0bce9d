// Package proc holds what the test/backends server packages share to run a
// real server for a test: whether a missing one must fail the test, the
// install cache, a free port, and starting the process and waiting until
// it is ready. Servers run in their own process group and die with the
// test process, so an aborted run leaves none behind.
package proc

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Required reports whether a missing backend must fail the test rather
// than skip it: under CI=true or FERRY_REQUIRE_BACKENDS=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("FERRY_REQUIRE_BACKENDS") == "1"
}

// CacheRoot is where test/backends/*.sh install servers: $FERRY_TEST_CACHE,
// else ferry-test under $XDG_CACHE_HOME or ~/.cache.
func CacheRoot() string {
	if root := os.Getenv("FERRY_TEST_CACHE"); root != "" {
		return root
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "ferry-test")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tail is the last n bytes of b, trimmed, for a failure message.
func Tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// RandHex is n random bytes in hex, for fresh bucket and container names.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ErrExited is wrapped by WaitReady's error when the server exited before
// it was ready.
var ErrExited = errors.New("exited during start")

// Spawn starts cmd (name is for errors) with its output appended to
// logPath, in a process group of its own (so a stop can signal the whole
// group) and killed when the test process dies. The returned channel is
// closed once the process has exited and its log is closed.
func Spawn(name string, cmd *exec.Cmd, logPath string) (exited chan struct{}, err error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	exited = make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	return exited, nil
}

// WaitReady calls ready every interval until it reports true (nil), the
// process exits (an error wrapping ErrExited, with the tail of logPath),
// or timeout passes (an error naming addr).
func WaitReady(name, addr string, exited <-chan struct{}, logPath string, timeout, interval time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s %w:\n%s", name, ErrExited, Tail(b, 4096))
		default:
		}
		if ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer on %s within %v", name, addr, timeout)
		}
		time.Sleep(interval)
	}
}
