package ftp_test

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"

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
