// Package azuritesrv starts Azurite, the Azure Storage emulator, for
// tests: its blob service, installed by test/backends/azure.sh into
// $FERRY_TEST_CACHE/azurite (default ~/.cache/ferry-test) or found on
// PATH as azurite-blob. Each server runs on 127.0.0.1 on a free port, with
// its data in the test's temp dir, and is stopped when the test ends.
//
// A missing Azurite skips the test, except when CI=true or
// FERRY_REQUIRE_BACKENDS=1, where it fails it.
//
// Azurite checks shared-key signatures and SAS signatures (a tampered SAS
// is refused with 403). With TLS and OAuth on (Options), it also accepts
// bearer tokens, checking their audience, issuer and lifetime but not
// their signature ("--oauth basic").
package azuritesrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/ferryml/ferry/test/backends/proc"
)

// Account and Key are Azurite's fixed development account and its key
// (public, documented by Microsoft for the emulator).
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Options turn on Azurite's TLS (needed for OAuth) and OAuth.
type Options struct {
	// CertFile and KeyFile are a PEM certificate and key for HTTPS.
	CertFile, KeyFile string
	// OAuth makes Azurite accept bearer tokens ("--oauth basic").
	OAuth bool
}

// Server is one running Azurite blob service.
type Server struct {
	// Endpoint is the blob service URL of the account,
	// "http(s)://127.0.0.1:PORT/devstoreaccount1".
	Endpoint string
	// Addr is "127.0.0.1:PORT".
	Addr string

	bin, dir, logPath string
	opts              Options
	mu                sync.Mutex
	cmd               *exec.Cmd
	exited            chan struct{}
}

// CacheDir is the directory azure.sh installs Azurite into.
func CacheDir() string {
	return filepath.Join(proc.CacheRoot(), "azurite")
}

// Binary finds azurite-blob, or skips (fails under CI) the test.
func Binary(t testing.TB) string {
	t.Helper()
	p := filepath.Join(CacheDir(), "node_modules", ".bin", "azurite-blob")
	if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
		return p
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p
	}
	msg := fmt.Sprintf("azurite-blob not found in %s or on PATH; run test/backends/azure.sh install", CacheDir())
	if proc.Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Start starts Azurite for the test and stops it at cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{bin: Binary(t), dir: t.TempDir(), opts: opts}
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	scheme := "http"
	if opts.CertFile != "" {
		scheme = "https"
	}
	s.Endpoint = scheme + "://" + s.Addr + "/" + Account
	s.logPath = filepath.Join(s.dir, "server.log")
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(s.logPath); err == nil && len(b) > 0 {
				t.Logf("azurite log (last 4 KiB):\n%s", proc.Tail(b, 4096))
			}
		}
	})
	return s
}

// Start (re)starts Azurite on the same address and data, and waits until
// it answers. It is a no-op while it runs.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	host, port, _ := net.SplitHostPort(s.Addr)
	args := []string{"--blobHost", host, "--blobPort", port, "--location", filepath.Join(s.dir, "data"),
		"--skipApiVersionCheck", "--disableTelemetry", "--loose"}
	if s.opts.CertFile != "" {
		args = append(args, "--cert", s.opts.CertFile, "--key", s.opts.KeyFile)
	}
	if s.opts.OAuth {
		args = append(args, "--oauth", "basic")
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = os.Environ()
	exited, err := proc.Spawn("azurite", cmd, s.logPath)
	if err != nil {
		return err
	}
	s.cmd, s.exited = cmd, exited

	err = proc.WaitReady("azurite", s.Addr, exited, s.logPath, 60*time.Second, 50*time.Millisecond, func() bool {
		// Any TCP accept means Node is listening; Azurite opens the port
		// only once it is ready.
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if errors.Is(err, proc.ErrExited) {
		s.cmd = nil
	}
	return err
}

// Stop stops Azurite (SIGTERM to its process group, then SIGKILL after
// 5 s) and waits for it.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
}

// Kill stops Azurite abruptly (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// ConnectionString is an account-key connection string for the server.
func (s *Server) ConnectionString() string {
	proto := "http"
	if strings.HasPrefix(s.Endpoint, "https:") {
		proto = "https"
	}
	return fmt.Sprintf("DefaultEndpointsProtocol=%s;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;", proto, Account, Key, s.Endpoint)
}

// Client is an azblob client with the account key, for setting up and
// inspecting containers outside the code under test. hc, when set, is its
// HTTP client (for TLS with a test CA).
func (s *Server) Client(t testing.TB, hc *http.Client) *azblob.Client {
	t.Helper()
	cred, err := azblob.NewSharedKeyCredential(Account, Key)
	if err != nil {
		t.Fatal(err)
	}
	var o *azblob.ClientOptions
	if hc != nil {
		o = &azblob.ClientOptions{}
		o.Transport = hc
	}
	c, err := azblob.NewClientWithSharedKeyCredential(s.Endpoint+"/", cred, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Container creates a fresh container and returns its name.
func (s *Server) Container(t testing.TB, hc *http.Client) string {
	t.Helper()
	name := "ferry-" + proc.RandHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client(t, hc).CreateContainer(ctx, name, nil); err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	return name
}

// Env is the environment for a Ferry reaching this server with the
// account key (FERRY_AZURE_BLOB_ENDPOINT_URL points the wasbs:// URI's
// account at the emulator).
func (s *Server) Env() []string {
	return []string{
		"FERRY_AZURE_BLOB_ENDPOINT_URL=" + s.Endpoint,
		"AZURE_STORAGE_ACCESS_KEY=" + Key,
	}
}

// URI is the wasbs:// destination of container and prefix.
func URI(container, prefix string) string {
	return "wasbs://" + container + "@" + Account + ".blob.core.windows.net/" + prefix
}
