package sftp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/internal/hostiletest"
	"github.com/ferryml/ferry/stores/internal/leftovers/sweeptest"
	"github.com/ferryml/ferry/stores/sftp"
	"github.com/ferryml/ferry/test/backends/sftpsrv"
)

// open opens uri through the scheme table, as Ferry does.
func open(t *testing.T, uri string) (stores.Store, error) {
	t.Helper()
	s, err := stores.Open(context.Background(), uri)
	if err == nil {
		t.Cleanup(func() { s.(*sftp.Store).Close() })
	}
	return s, err
}

func roundTrip(t *testing.T, s stores.Store) {
	t.Helper()
	ctx := context.Background()
	if err := s.Put(ctx, "x/y.txt", strings.NewReader("hello"), 5); err != nil {
		t.Fatalf("Put: %v", err)
	}
	rc, _, err := s.Open(ctx, "x/y.txt", 0, -1)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "hello" {
		t.Fatalf("read back %q, %v", b, err)
	}
}

func TestLogins(t *testing.T) {
	srv := sftpsrv.Start(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv(sftp.EnvKnownHosts, srv.KnownHosts)
	t.Setenv(sftp.EnvIdentityFile, "")

	t.Run("password in the URI", func(t *testing.T) {
		u := fmt.Sprintf("sftp://%s:%s@%s%s/pw", srv.User, url.QueryEscape(srv.Password), srv.Addr(), srv.Root)
		s, err := open(t, u)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
	})
	t.Run("wrong password", func(t *testing.T) {
		u := fmt.Sprintf("sftp://%s:%s@%s%s/pw", srv.User, "wrong-secret-pw", srv.Addr(), srv.Root)
		_, err := open(t, u)
		if !errors.Is(err, stores.ErrPermission) {
			t.Fatalf("Open with a wrong password = %v; want ErrPermission", err)
		}
		if strings.Contains(err.Error(), "wrong-secret-pw") {
			t.Fatalf("error repeats the password: %v", err)
		}
	})
	t.Run("key file from the env", func(t *testing.T) {
		t.Setenv(sftp.EnvIdentityFile, srv.KeyFile)
		s, err := open(t, fmt.Sprintf("sftp://%s@%s%s/key", srv.User, srv.Addr(), srv.Root))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
	})
	t.Run("~/.ssh/config alias with HostName, User, Port, IdentityFile", func(t *testing.T) {
		sshDir := filepath.Join(home, ".ssh")
		if err := os.MkdirAll(sshDir, 0o700); err != nil {
			t.Fatal(err)
		}
		conf := fmt.Sprintf("Host artifacts-box\n  HostName %s\n  User %s\n  Port %d\n  IdentityFile %s\n",
			srv.Host, srv.User, srv.Port, srv.KeyFile)
		if err := os.WriteFile(filepath.Join(sshDir, "config"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(sshDir, "config"))
		s, err := open(t, "sftp://artifacts-box"+srv.Root+"/alias")
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
	})
	t.Run("key in the ssh-agent", func(t *testing.T) {
		if _, err := exec.LookPath("ssh-agent"); err != nil {
			t.Skip("no ssh-agent")
		}
		sock := filepath.Join(t.TempDir(), "agent.sock")
		agent := exec.Command("ssh-agent", "-D", "-a", sock)
		if err := agent.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("ssh-agent did not create its socket")
			}
		}
		add := exec.Command("ssh-add", srv.KeyFile)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add: %v: %s", err, out)
		}
		t.Setenv("SSH_AUTH_SOCK", sock)
		s, err := open(t, fmt.Sprintf("sftp://%s@%s%s/agent", srv.User, srv.Addr(), srv.Root))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
	})
	t.Run("no credentials at all", func(t *testing.T) {
		_, err := open(t, fmt.Sprintf("sftp://%s@%s%s/none", srv.User, srv.Addr(), srv.Root))
		if !errors.Is(err, stores.ErrPermission) {
			t.Fatalf("Open without credentials = %v; want ErrPermission", err)
		}
	})
}

func TestHostKeyChecking(t *testing.T) {
	srv := sftpsrv.Start(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv(sftp.EnvIdentityFile, srv.KeyFile)
	uri := fmt.Sprintf("sftp://%s:%s@%s%s", srv.User, url.QueryEscape(srv.Password), srv.Addr(), srv.Root)

	t.Run("unknown host is refused with the fix in the message", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(sftp.EnvKnownHosts, empty)
		_, err := open(t, uri)
		if !errors.Is(err, stores.ErrPermission) {
			t.Fatalf("Open of an unknown host = %v; want ErrPermission", err)
		}
		for _, want := range []string{"not in", "ssh-keyscan", sftp.EnvInsecureIgnoreHostKey, "SHA256:"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if strings.Contains(err.Error(), srv.Password) {
			t.Fatalf("error repeats the password: %v", err)
		}
	})
	t.Run("no known_hosts file at all", func(t *testing.T) {
		t.Setenv(sftp.EnvKnownHosts, filepath.Join(t.TempDir(), "missing"))
		_, err := open(t, uri)
		if !errors.Is(err, stores.ErrPermission) || !strings.Contains(err.Error(), "no known_hosts") {
			t.Fatalf("Open without known_hosts = %v; want ErrPermission naming the missing file", err)
		}
	})
	t.Run("changed host key", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "known_hosts")
		// A valid ed25519 key that is not the server's.
		line := fmt.Sprintf("[%s]:%d ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n", srv.Host, srv.Port)
		if err := os.WriteFile(other, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(sftp.EnvKnownHosts, other)
		_, err := open(t, uri)
		if !errors.Is(err, stores.ErrPermission) || !strings.Contains(err.Error(), "differs") {
			t.Fatalf("Open with a changed host key = %v; want ErrPermission saying the key differs", err)
		}
	})
	t.Run("opt-out", func(t *testing.T) {
		t.Setenv(sftp.EnvKnownHosts, filepath.Join(t.TempDir(), "missing"))
		t.Setenv(sftp.EnvInsecureIgnoreHostKey, "true")
		s, err := open(t, uri)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
	})
	t.Run("opt-out must be a boolean", func(t *testing.T) {
		t.Setenv(sftp.EnvInsecureIgnoreHostKey, "yes please")
		if _, err := open(t, uri); err == nil {
			t.Fatal("Open accepted a malformed boolean")
		}
	})
}

// TestUnreachableHidesPassword: connection errors name host and port,
// never the password.
func TestUnreachableHidesPassword(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv(sftp.EnvInsecureIgnoreHostKey, "true")
	const pw = "Sup3rS3cret"
	_, err := stores.Open(context.Background(), "sftp://alice:"+pw+"@127.0.0.1:1/srv")
	if !errors.Is(err, stores.ErrUnavailable) {
		t.Fatalf("Open of a closed port = %v; want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), pw) {
		t.Fatalf("error repeats the password: %v", err)
	}
}

// killingReader yields data until after bytes, then kills the server and
// keeps yielding, as a client still uploading would.
type killingReader struct {
	data  []byte
	off   int
	after int
	kill  func()
	once  sync.Once
}

func (k *killingReader) Read(p []byte) (int, error) {
	if k.off >= k.after {
		k.once.Do(k.kill)
	}
	if k.off >= len(k.data) {
		return 0, io.EOF
	}
	n := copy(p, k.data[k.off:])
	k.off += n
	return n, nil
}

// TestServerKilledMidUpload: the upload fails with ErrUnavailable, nothing
// is committed, and after the server restarts the same store works again.
func TestServerKilledMidUpload(t *testing.T) {
	srv := sftpsrv.Start(t)
	cfg := keyConfig(t, srv, srv.Root+"/fault")
	cfg.MaxConnections = 2
	s, err := sftp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := stores.Instrument(s, "sftp", stores.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if err := in.Put(ctx, "old", strings.NewReader("previous"), 8); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16)
	for _, key := range []string{"new/obj", "old"} {
		err := in.Put(ctx, key, &killingReader{data: data, after: 1 << 20, kill: srv.Kill}, int64(len(data)))
		if !errors.Is(err, stores.ErrUnavailable) {
			t.Fatalf("Put(%q) with the server killed midway = %v; want ErrUnavailable", key, err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		// The next request reconnects by itself.
		if key == "new/obj" {
			if _, err := in.Stat(ctx, key); !errors.Is(err, stores.ErrNotFound) {
				t.Fatalf("Stat(%q) after the failed upload = %v; want ErrNotFound", key, err)
			}
		} else {
			rc, _, err := in.Open(ctx, key, 0, -1)
			if err != nil {
				t.Fatalf("Open(%q) after restart: %v", key, err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != "previous" {
				t.Fatalf("%q after the failed replacement = %q; want the previous content", key, b)
			}
		}
	}
	// Nothing visible is left behind: the temporary files of the killed
	// uploads are hidden from listings (and removed with their directory).
	l, err := in.List(ctx, "", stores.ListPage{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range l.Entries {
		names = append(names, e.Key)
	}
	if strings.Join(names, ",") != "new,old" && strings.Join(names, ",") != "old" {
		t.Fatalf("listing after the failed uploads = %q", names)
	}
	if err := in.Put(ctx, "after/restart", strings.NewReader("ok"), 2); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	// The killed uploads' temporary files (and the directory the first
	// made) could not be removed while the server was down; the
	// operations since have removed them.
	var left []string
	err = filepath.WalkDir(srv.Root+"/fault", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		left = append(left, strings.TrimPrefix(p, srv.Root+"/fault"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(left, ","); got != ",/after,/after/restart,/old" {
		t.Fatalf("on the server after the failed uploads: %q", left)
	}
}

// TestPoolBounded: more concurrent downloads than connections all finish
// (the extra ones wait), and no more connections than the bound are made.
func TestPoolBounded(t *testing.T) {
	srv := sftpsrv.Start(t)
	cfg := keyConfig(t, srv, srv.Root+"/pool")
	cfg.MaxConnections = 3
	s, err := sftp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 1<<20)
	if err := s.Put(ctx, "f", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	// Hold all three connections with open readers; a fourth Open waits
	// until one is closed.
	var held []io.ReadCloser
	for range 3 {
		rc, _, err := s.Open(ctx, "f", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, rc)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := s.Stat(short, "f"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stat with every connection busy = %v; want it to wait until its deadline", err)
	}
	for _, rc := range held {
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			rc, _, err := s.Open(ctx, "f", int64(i), 1000)
			if err != nil {
				t.Error(err)
				return
			}
			defer rc.Close()
			if n, err := io.Copy(io.Discard, rc); err != nil || n != 1000 {
				t.Errorf("ranged read: %d bytes, %v", n, err)
			}
		})
	}
	wg.Wait()
}

// TestHostileKeysNeverReachTheServer: with sshd stopped, every hostile
// key is refused as invalid (a key that reached the driver would fail as
// unavailable).
func TestHostileKeysNeverReachTheServer(t *testing.T) {
	srv := sftpsrv.Start(t)
	s, err := sftp.New(context.Background(), keyConfig(t, srv, srv.Root+"/hostile"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.Kill()
	in := stores.Instrument(s, "sftp", stores.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	if _, err := in.Stat(context.Background(), "ok"); !errors.Is(err, stores.ErrUnavailable) {
		t.Fatalf("Stat of a valid key with sshd down = %v; want ErrUnavailable", err)
	}
	hostiletest.Check(t, in)
}

// TestMissingRootMadeByFirstUpload: opening and listing a store whose
// root is missing writes nothing; the first upload makes it.
func TestMissingRootMadeByFirstUpload(t *testing.T) {
	srv := sftpsrv.Start(t)
	root := srv.Root + "/not/yet"
	s, err := sftp.New(context.Background(), keyConfig(t, srv, root))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if l, err := s.List(ctx, "", stores.ListPage{}); err != nil || len(l.Entries) != 0 {
		t.Fatalf("List of a missing root = %+v, %v", l, err)
	}
	if e, err := s.Stat(ctx, ""); err != nil || !e.IsDir {
		t.Fatalf("Stat of a missing root = %+v, %v; want a directory", e, err)
	}
	if _, err := os.Stat(srv.Root + "/not"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("opening and listing made the root: %v", err)
	}
	if err := s.Put(ctx, "top.txt", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root + "/top.txt"); err != nil {
		t.Fatal(err)
	}
}

// TestRemoveStaleTemps: what a crash of Ferry leaves is swept once old.
func TestRemoveStaleTemps(t *testing.T) {
	srv := sftpsrv.Start(t)
	root := srv.Root + "/sweep"
	s, err := sftp.New(context.Background(), keyConfig(t, srv, root))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sweeptest.Check(t, s, root, sftp.TempPrefix)
}

// TestRequestsInFlight: FERRY_SFTP_REQUESTS_IN_FLIGHT is read, bounded and
// defaulted, and a transfer of many packets comes back intact whatever the
// bound (1 makes pkg/sftp read and write one packet at a time).
func TestRequestsInFlight(t *testing.T) {
	srv := sftpsrv.Start(t)
	cfg := keyConfig(t, srv, srv.Root+"/inflight")
	if cfg.RequestsInFlight != sftp.DefaultRequestsInFlight {
		t.Fatalf("default RequestsInFlight = %d; want %d", cfg.RequestsInFlight, sftp.DefaultRequestsInFlight)
	}
	u := &url.URL{Scheme: "sftp", User: url.User(srv.User), Host: srv.Addr(), Path: srv.Root}
	for _, bad := range []string{"0", "-1", "1025", "x", "1.5"} {
		t.Setenv(sftp.EnvRequestsInFlight, bad)
		if _, err := sftp.ConfigFromURL(u); err == nil || !strings.Contains(err.Error(), sftp.EnvRequestsInFlight) {
			t.Errorf("%s=%q: err = %v; want an error naming the variable", sftp.EnvRequestsInFlight, bad, err)
		}
	}
	t.Setenv(sftp.EnvRequestsInFlight, "3")
	if c, err := sftp.ConfigFromURL(u); err != nil || c.RequestsInFlight != 3 {
		t.Fatalf("%s=3: RequestsInFlight %d, err %v", sftp.EnvRequestsInFlight, c.RequestsInFlight, err)
	}

	for _, bad := range []string{"1023", "261121", "x"} {
		t.Setenv(sftp.EnvMaxPacket, bad)
		if _, err := sftp.ConfigFromURL(u); err == nil || !strings.Contains(err.Error(), sftp.EnvMaxPacket) {
			t.Errorf("%s=%q: err = %v; want an error naming the variable", sftp.EnvMaxPacket, bad, err)
		}
	}
	t.Setenv(sftp.EnvMaxPacket, "32768")
	if c, err := sftp.ConfigFromURL(u); err != nil || c.MaxPacket != 32768 {
		t.Fatalf("%s=32768: MaxPacket %d, err %v", sftp.EnvMaxPacket, c.MaxPacket, err)
	}

	data := make([]byte, 3<<20+12345) // about 100 packets, the last one short
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	// 0: a Config built by hand gets the defaults (on this OpenSSH server,
	// 255 KiB requests); an odd packet size exercises short last pieces.
	for _, tc := range []struct{ n, packet int }{{1, 0}, {2, 0}, {0, 0}, {1, 32768}, {0, 32768}, {3, 40000}} {
		n := tc.n
		c := cfg
		c.RequestsInFlight = n
		c.MaxPacket = tc.packet
		s, err := sftp.New(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		key := fmt.Sprintf("obj-%d-%d", n, tc.packet)
		if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("RequestsInFlight %d: Put: %v", n, err)
		}
		rc, _, err := s.Open(ctx, key, 0, -1)
		if err != nil {
			t.Fatalf("RequestsInFlight %d: Open: %v", n, err)
		}
		var got bytes.Buffer
		_, err = io.Copy(&got, rc)
		rc.Close()
		if err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("RequestsInFlight %d: read back %d bytes (equal %v), %v", n, got.Len(), bytes.Equal(got.Bytes(), data), err)
		}
		s.Close()
	}
}
