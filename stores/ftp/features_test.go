package ftp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/ftp"
	"github.com/ferryml/ferry/stores/internal/hostiletest"
	"github.com/ferryml/ferry/stores/internal/leftovers/sweeptest"
	"github.com/ferryml/ferry/test/backends/ftpsrv"
)

func roundTrip(t *testing.T, s stores.Store) {
	t.Helper()
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	if err := s.Put(ctx, "x/y.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	rc, _, err := s.Open(ctx, "x/y.bin", 5, 10)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "5678901234" {
		t.Fatalf("ranged read back %q, %v", b, err)
	}
	l, err := s.List(ctx, "x", stores.ListPage{})
	if err != nil || len(l.Entries) != 1 || l.Entries[0].Size != int64(len(data)) {
		t.Fatalf("List = %+v, %v", l, err)
	}
	if err := s.Delete(ctx, "x"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

func openURI(t *testing.T, uri string) (stores.Store, error) {
	t.Helper()
	s, err := stores.Open(context.Background(), uri)
	if err == nil {
		t.Cleanup(func() { s.(*ftp.Store).Close() })
	}
	return s, err
}

func TestLoginsAndTLS(t *testing.T) {
	srv := ftpsrv.Start(t)
	base := fmt.Sprintf("ftp://%s:%s@%s%s", srv.User, url.QueryEscape(srv.Password), srv.Addr(), srv.Root)

	t.Run("plain", func(t *testing.T) {
		s, err := openURI(t, base+"/plain")
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
	})
	t.Run("explicit FTPS from the URI, CA from the env", func(t *testing.T) {
		t.Setenv(ftp.EnvTLSCAFile, srv.CAFile)
		s, err := openURI(t, base+"/tls?tls=explicit")
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
	})
	t.Run("explicit FTPS from the env", func(t *testing.T) {
		t.Setenv(ftp.EnvTLS, "explicit")
		t.Setenv(ftp.EnvTLSCAFile, srv.CAFile)
		s, err := openURI(t, base+"/tls2")
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
	})
	t.Run("FTPS with an untrusted certificate", func(t *testing.T) {
		t.Setenv(ftp.EnvTLS, "explicit")
		_, err := openURI(t, base+"/tls3")
		if !errors.Is(err, stores.ErrPermission) {
			t.Fatalf("Open with an untrusted certificate = %v; want ErrPermission", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		const pw = "Wr0ngS3cret"
		_, err := openURI(t, fmt.Sprintf("ftp://%s:%s@%s%s", srv.User, pw, srv.Addr(), srv.Root))
		if !errors.Is(err, stores.ErrPermission) {
			t.Fatalf("Open with a wrong password = %v; want ErrPermission", err)
		}
		if strings.Contains(err.Error(), pw) {
			t.Fatalf("error repeats the password: %v", err)
		}
	})
	t.Run("unreachable server", func(t *testing.T) {
		const pw = "Unr3achS3cret"
		_, err := openURI(t, "ftp://u:"+pw+"@127.0.0.1:1/x")
		if !errors.Is(err, stores.ErrUnavailable) {
			t.Fatalf("Open of a closed port = %v; want ErrUnavailable", err)
		}
		if strings.Contains(err.Error(), pw) {
			t.Fatalf("error repeats the password: %v", err)
		}
	})
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
// is committed, and after a restart the same store works again.
func TestServerKilledMidUpload(t *testing.T) {
	srv := ftpsrv.Start(t)
	cfg := config(t, srv, srv.Root+"/fault")
	cfg.MaxConnections = 2
	s, err := ftp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := instrument(s)
	ctx := context.Background()
	if err := in.Put(ctx, "old", strings.NewReader("previous"), 8); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 32<<20/16)
	for _, key := range []string{"new/obj", "old"} {
		err := in.Put(ctx, key, &killingReader{data: data, after: 1 << 20, kill: srv.Kill}, int64(len(data)))
		if !errors.Is(err, stores.ErrUnavailable) {
			t.Fatalf("Put(%q) with the server killed midway = %v; want ErrUnavailable", key, err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		if key == "new/obj" {
			if _, err := in.Stat(ctx, key); !errors.Is(err, stores.ErrNotFound) {
				t.Fatalf("Stat(%q) after the failed upload = %v; want ErrNotFound", key, err)
			}
			continue
		}
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
	l, err := in.List(ctx, "", stores.ListPage{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range l.Entries {
		names = append(names, e.Key)
	}
	if got := strings.Join(names, ","); got != "new,old" && got != "old" {
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

// TestPoolBounded: with every connection carrying a download, the next
// operation waits; more concurrent transfers than connections all finish.
func TestPoolBounded(t *testing.T) {
	srv := ftpsrv.Start(t)
	cfg := config(t, srv, srv.Root+"/pool")
	cfg.MaxConnections = 3
	s, err := ftp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 1<<20)
	if err := s.Put(ctx, "f", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
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
			if i%2 == 0 {
				k := fmt.Sprintf("up/%d", i)
				if err := s.Put(ctx, k, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Error(err)
				}
				return
			}
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

// TestHostileKeysNeverReachTheServer: with vsftpd stopped, every hostile
// key is refused as invalid (a key that reached the driver would fail as
// unavailable).
func TestHostileKeysNeverReachTheServer(t *testing.T) {
	srv := ftpsrv.Start(t)
	s, err := ftp.New(context.Background(), config(t, srv, srv.Root+"/hostile"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.Kill()
	in := instrument(s)
	if _, err := in.Stat(context.Background(), "ok"); !errors.Is(err, stores.ErrUnavailable) {
		t.Fatalf("Stat of a valid key with vsftpd down = %v; want ErrUnavailable", err)
	}
	hostiletest.Check(t, in)
}

// TestMissingRootMadeByFirstUpload: opening and listing a store whose
// root is missing writes nothing; the first upload makes it.
func TestMissingRootMadeByFirstUpload(t *testing.T) {
	srv := ftpsrv.Start(t)
	root := srv.Root + "/not/yet"
	s, err := ftp.New(context.Background(), config(t, srv, root))
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
	srv := ftpsrv.Start(t)
	root := srv.Root + "/sweep"
	s, err := ftp.New(context.Background(), config(t, srv, root))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sweeptest.Check(t, s, root, ftp.TempPrefix)
}
