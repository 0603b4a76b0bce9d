package sftp_test

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/sftp"
	"github.com/ferryml/ferry/stores/storetest"
	"github.com/ferryml/ferry/test/backends/sftpsrv"
)

// keyConfig is a configuration that logs in to srv with its key, checks
// its host key, and roots the store in a fresh directory.
func keyConfig(t testing.TB, srv *sftpsrv.Server, root string) sftp.Config {
	t.Helper()
	t.Setenv("HOME", t.TempDir()) // no ~/.ssh of the machine's
	t.Setenv("SSH_AUTH_SOCK", "")
	u := &url.URL{Scheme: "sftp", User: url.User(srv.User), Host: srv.Addr(), Path: root}
	t.Setenv(sftp.EnvKnownHosts, srv.KnownHosts)
	t.Setenv(sftp.EnvIdentityFile, srv.KeyFile)
	cfg, err := sftp.ConfigFromURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConformance(t *testing.T) {
	srv := sftpsrv.Start(t)
	cfg := keyConfig(t, srv, srv.Root)
	// x/crypto/ssh and pkg/sftp copy every received packet into a fresh
	// buffer: see storetest.Options.PerPacketGarbage.
	storetest.RunWithOptions(t, func(t *testing.T) stores.Store {
		c := cfg
		c.Root = srv.Root + "/" + strings.ReplaceAll(t.Name(), "/", "_")
		s, err := sftp.New(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return stores.Instrument(s, "sftp", stores.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	}, storetest.Options{PerPacketGarbage: true})
}
