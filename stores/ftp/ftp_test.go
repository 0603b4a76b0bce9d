package ftp_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/ftp"
	"github.com/ferryml/ferry/stores/storetest"
	"github.com/ferryml/ferry/test/backends/ftpsrv"
)

func config(t testing.TB, srv *ftpsrv.Server, root string) ftp.Config {
	t.Helper()
	u := &url.URL{Scheme: "ftp", User: url.UserPassword(srv.User, srv.Password), Host: srv.Addr(), Path: root}
	cfg, err := ftp.ConfigFromURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func instrument(s stores.Store) stores.Store {
	return stores.Instrument(s, "ftp", stores.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
}

func TestConformance(t *testing.T) {
	srv := ftpsrv.Start(t)
	conformance(t, srv, config(t, srv, srv.Root), storetest.Options{})
}

// TestConformanceFTPS runs the suite over explicit FTPS (AUTH TLS, PROT P),
// with vsftpd requiring data connections to resume the TLS session.
func TestConformanceFTPS(t *testing.T) {
	srv := ftpsrv.Start(t)
	t.Setenv(ftp.EnvTLS, "explicit")
	t.Setenv(ftp.EnvTLSCAFile, srv.CAFile)
	// Under the race detector crypto/tls's pooled record buffers are
	// reallocated (see raceEnabled): the live heap is checked instead.
	conformance(t, srv, config(t, srv, srv.Root), storetest.Options{PerPacketGarbage: raceEnabled})
}

func conformance(t *testing.T, srv *ftpsrv.Server, cfg ftp.Config, opts storetest.Options) {
	storetest.RunWithOptions(t, func(t *testing.T) stores.Store {
		c := cfg
		c.Root = srv.Root + "/" + strings.ReplaceAll(t.Name(), "/", "_")
		s, err := ftp.New(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return instrument(s)
	}, opts)
}

// failingReader fails at once, before any byte.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errBodyFailed }

var errBodyFailed = errors.New("the client went away")

// TestFTPSUploadWithoutAByte: over FTPS an upload whose body fails before
// its first byte never started the data connection's TLS handshake.
// Closing it then waited for the server until the store's timeout (60 s
// per such upload); closing it without a handshake makes vsftpd drop the
// whole session. Now it fails at once on the same control connection. (An
// empty body, also checked, was not slow before.)
func TestFTPSUploadWithoutAByte(t *testing.T) {
	srv := ftpsrv.Start(t)
	t.Setenv(ftp.EnvTLS, "explicit")
	t.Setenv(ftp.EnvTLSCAFile, srv.CAFile)
	cfg := config(t, srv, srv.Root)
	cfg.MaxConnections = 1
	s, err := ftp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// 20 s: far under the 60 s the hang took, far over a loaded machine's
	// round trips.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Put(ctx, "warm", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	dials := ftp.DialCount(s)
	if err := s.Put(ctx, "empty", strings.NewReader(""), 0); err != nil {
		t.Fatalf("empty upload: %v", err)
	}
	if info, err := s.Stat(ctx, "empty"); err != nil || info.Size != 0 {
		t.Errorf("empty object: %+v, %v", info, err)
	}
	if err := s.Put(ctx, "failed", failingReader{}, 10); !errors.Is(err, errBodyFailed) {
		t.Errorf("upload whose body failed at once: %v, want the body's error", err)
	}
	if _, err := s.Stat(ctx, "failed"); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("failed upload left an object: %v", err)
	}
	if d := ftp.DialCount(s) - dials; d != 0 {
		t.Errorf("%d new control connections: the server dropped the session", d)
	}
}
