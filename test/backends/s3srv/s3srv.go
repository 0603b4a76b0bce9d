// Package s3srv starts real S3 servers for tests: MinIO and versitygw,
// built by test/backends/s3.sh into $FERRY_TEST_CACHE/bin (default
// ~/.cache/ferry-test/bin) or found on PATH. Each server runs on
// 127.0.0.1 on a free port, with its data in the test's temp dir, and is
// stopped when the test ends.
//
// A missing binary skips the test, except when CI=true or
// FERRY_REQUIRE_BACKENDS=1, where it fails it.
//
// MinIO is AGPL: it is only ever run as an external binary, never
// imported.
package s3srv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferryml/ferry/test/backends/proc"
)

// Kind names a server implementation.
type Kind string

// The servers this package can start.
const (
	// MinIO ignores x-amz-expected-bucket-owner.
	MinIO Kind = "minio"
	// Versitygw enforces x-amz-expected-bucket-owner; the owner id is the
	// root access key.
	Versitygw Kind = "versitygw"
)

// Server is one running S3 server.
type Server struct {
	Kind Kind
	// Endpoint is "http://127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// Owner is the account id S3 compares x-amz-expected-bucket-owner
	// with ("" when the server does not check it).
	Owner string

	bin, dir, addr string
	logPath        string
	mu             sync.Mutex
	cmd            *exec.Cmd
	exited         chan struct{}
}

// CacheBin is the directory s3.sh installs the servers into.
func CacheBin() string {
	return filepath.Join(proc.CacheRoot(), "bin")
}

// Binary finds the server binary for kind, or skips (fails under CI) the
// test.
func Binary(t testing.TB, kind Kind) string {
	t.Helper()
	p := filepath.Join(CacheBin(), string(kind))
	if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
		return p
	}
	if p, err := exec.LookPath(string(kind)); err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found in %s or on PATH; run test/backends/s3.sh install", kind, CacheBin())
	if proc.Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Start starts a server of the given kind for the test and stops it at
// cleanup.
func Start(t testing.TB, kind Kind) *Server {
	t.Helper()
	s := &Server{
		Kind:      kind,
		bin:       Binary(t, kind),
		dir:       t.TempDir(),
		AccessKey: "ferry" + proc.RandHex(6),
		SecretKey: proc.RandHex(16),
	}
	if kind == Versitygw {
		s.Owner = s.AccessKey
	}
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s.addr = fmt.Sprintf("127.0.0.1:%d", port)
	s.Endpoint = "http://" + s.addr
	s.logPath = filepath.Join(s.dir, "server.log")
	if err := os.MkdirAll(filepath.Join(s.dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(s.logPath); err == nil && len(b) > 0 {
				t.Logf("%s log (last 4 KiB):\n%s", kind, proc.Tail(b, 4096))
			}
		}
	})
	return s
}

// Start (re)starts the server process on the same address and data, and
// waits until it answers. It is a no-op while the server runs.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	data := filepath.Join(s.dir, "data")
	var cmd *exec.Cmd
	switch s.Kind {
	case MinIO:
		console, err := proc.FreePort()
		if err != nil {
			return err
		}
		cmd = exec.Command(s.bin, "server", data, "--quiet", "--address", s.addr,
			"--console-address", fmt.Sprintf("127.0.0.1:%d", console))
		cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	case Versitygw:
		cmd = exec.Command(s.bin, "--port", s.addr, "--access", s.AccessKey, "--secret", s.SecretKey, "posix", data)
		cmd.Env = os.Environ()
	default:
		return fmt.Errorf("unknown server kind %q", s.Kind)
	}
	exited, err := proc.Spawn(string(s.Kind), cmd, s.logPath)
	if err != nil {
		return err
	}
	s.cmd, s.exited = cmd, exited
	url := s.Endpoint + "/"
	if s.Kind == MinIO {
		url = s.Endpoint + "/minio/health/live"
	}
	err = proc.WaitReady(string(s.Kind), s.addr, exited, s.logPath, 60*time.Second, 50*time.Millisecond, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return s.Kind != MinIO || resp.StatusCode == http.StatusOK
	})
	if errors.Is(err, proc.ErrExited) {
		s.cmd = nil
	}
	return err
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Kill stops the server abruptly (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Client is a plain minio-go client with the root credentials, for
// setting up and inspecting buckets outside the code under test.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.addr, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Bucket creates a fresh bucket and returns its name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name := "ferry-" + proc.RandHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("make bucket %s on %s: %v", name, s.Kind, err)
	}
	return name
}

// Env is the environment for a Ferry talking to this server as upstream
// MLflow would (endpoint, credentials, region).
func (s *Server) Env() []string {
	return []string{
		"MLFLOW_S3_ENDPOINT_URL=" + s.Endpoint,
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_DEFAULT_REGION=us-east-1",
	}
}
