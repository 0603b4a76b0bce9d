// Package ferrytest holds what every black-box test package needs to run
// the real ferry binary: the binary itself ($FERRY_BIN, or built once per
// package run), a goroutine-safe buffer for a child's output, a free
// loopback port, a running `ferry server` (Server) and the HTTP calls the
// MLflow client makes against it.
package ferrytest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/buildflags"
)

// Main is a TestMain body: it sets *bin to the absolute path of $FERRY_BIN
// when set, else builds github.com/ferryml/ferry once into a temporary
// directory, runs the tests and exits with their code. A missing
// $FERRY_BIN or a failed build exits 1 before any test runs.
func Main(m *testing.M, bin *string) {
	code, err := run(m, bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferrytest:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M, bin *string) (int, error) {
	if env := os.Getenv("FERRY_BIN"); env != "" {
		abs, err := filepath.Abs(env)
		if err != nil {
			return 0, err
		}
		if _, err := os.Stat(abs); err != nil {
			return 0, fmt.Errorf("FERRY_BIN=%s: %w", env, err)
		}
		*bin = abs
		return m.Run(), nil
	}
	dir, err := os.MkdirTemp("", "ferry-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	*bin = filepath.Join(dir, "ferry")
	cmd := exec.Command("go", append(append([]string{"build"}, buildflags.Args()...), "-o", *bin, "github.com/ferryml/ferry")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("building ferry (set FERRY_BIN to skip): %w", err)
	}
	return m.Run(), nil
}

// LogBuffer is a bytes.Buffer that a child process and the test may use
// at once.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
