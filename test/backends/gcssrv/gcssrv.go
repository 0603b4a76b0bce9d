// Package gcssrv starts a real fake-gcs-server (the GCS JSON API with
// resumable uploads, and XML-API object reads) for tests, built by
// test/backends/gcs.sh into $FERRY_TEST_CACHE/bin (default
// ~/.cache/ferry-test/bin) or found on PATH. It runs on 127.0.0.1 on a
// free port, with its data in the test's temp dir, and is stopped when
// the test ends.
//
// A missing binary skips the test, except when CI=true or
// FERRY_REQUIRE_BACKENDS=1, where it fails it.
//
// fake-gcs-server has no XML multipart API and does not check signed
// URLs; test/backends/gcsxml fronts it with both.
package gcssrv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/test/backends/proc"
	"github.com/ferryml/ferry/test/backends/s3srv"
)

// Version is the fake-gcs-server release test/backends/gcs.sh installs.
const Version = "v1.56.1"

// Server is one running fake-gcs-server.
type Server struct {
	// Host is "127.0.0.1:PORT", the value for STORAGE_EMULATOR_HOST.
	Host string
	// Endpoint is "http://127.0.0.1:PORT".
	Endpoint string

	bin, dir, logPath string
	mu                sync.Mutex
	cmd               *exec.Cmd
	exited            chan struct{}
}

// Binary finds fake-gcs-server, or skips (fails under CI) the test.
func Binary(t testing.TB) string {
	t.Helper()
	p := filepath.Join(s3srv.CacheBin(), "fake-gcs-server")
	if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
		return p
	}
	if p, err := exec.LookPath("fake-gcs-server"); err == nil {
		return p
	}
	msg := fmt.Sprintf("fake-gcs-server not found in %s or on PATH; run test/backends/gcs.sh install", s3srv.CacheBin())
	if proc.Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Start starts a fake-gcs-server for the test and stops it at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{bin: Binary(t), dir: t.TempDir()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Host = l.Addr().String()
	l.Close()
	s.Endpoint = "http://" + s.Host
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
				t.Logf("fake-gcs-server log (last 4 KiB):\n%s", proc.Tail(b, 4096))
			}
		}
	})
	return s
}

// Start (re)starts the server on the same address and data and waits
// until it answers. It is a no-op while the server runs.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	host, port, _ := net.SplitHostPort(s.Host)
	cmd := exec.Command(s.bin, "-host", host, "-port", port, "-scheme", "http",
		"-backend", "filesystem", "-filesystem-root", filepath.Join(s.dir, "data"),
		"-external-url", s.Endpoint, "-public-host", s.Host, "-log-level", "warn")
	exited, err := proc.Spawn("fake-gcs-server", cmd, s.logPath)
	if err != nil {
		return err
	}
	s.cmd, s.exited = cmd, exited
	err = proc.WaitReady("fake-gcs-server", s.Host, exited, s.logPath, 60*time.Second, 50*time.Millisecond, func() bool {
		resp, err := http.Get(s.Endpoint + "/storage/v1/b")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if errors.Is(err, proc.ErrExited) {
		s.cmd = nil
	}
	return err
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s) and waits.
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

// Bucket creates a fresh bucket and returns its name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name := "ferry-" + proc.RandHex(6)
	body, _ := json.Marshal(map[string]string{"name": name})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint+"/storage/v1/b?project=ferry-test", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("create bucket %s: %s: %s", name, resp.Status, b)
	}
	return name
}

// Object is one stored object as the server lists it.
type Object struct {
	Name string
	Size int64
}

// Objects lists every object in bucket whose name starts with prefix,
// straight from the server (outside the code under test).
func (s *Server) Objects(t testing.TB, bucket, prefix string) []Object {
	t.Helper()
	var out []Object
	token := ""
	for {
		q := url.Values{"prefix": {prefix}, "pageToken": {token}}
		resp, err := http.Get(s.Endpoint + "/storage/v1/b/" + url.PathEscape(bucket) + "/o?" + q.Encode())
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		var page struct {
			Items []struct {
				Name string `json:"name"`
				Size string `json:"size"`
			} `json:"items"`
			NextPageToken string `json:"nextPageToken"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, it := range page.Items {
			var n int64
			fmt.Sscan(it.Size, &n)
			out = append(out, Object{Name: it.Name, Size: n})
		}
		if page.NextPageToken == "" {
			return out
		}
		token = page.NextPageToken
	}
}

// Put stores data as bucket/name directly on the server.
func (s *Server) Put(t testing.TB, bucket, name string, data []byte) {
	t.Helper()
	q := url.Values{"uploadType": {"media"}, "name": {name}}
	resp, err := http.Post(s.Endpoint+"/upload/storage/v1/b/"+url.PathEscape(bucket)+"/o?"+q.Encode(), "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("put %s: %s: %s", name, resp.Status, b)
	}
}

// Env is the environment for a Ferry talking to this server as upstream
// MLflow would.
func (s *Server) Env() []string {
	return []string{"STORAGE_EMULATOR_HOST=" + s.Host}
}
