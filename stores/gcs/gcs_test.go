package gcs

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/storetest"
	"github.com/ferryml/ferry/test/backends/gcssrv"
	"github.com/ferryml/ferry/test/backends/gcsxml"
)

// testPrefix is the name prefix every test store writes under; objects
// planted beside it must survive everything the store does.
const testPrefix = "ferry/artifacts"

// emulatorConfig is a store configuration for bucket on srv, anonymous as
// Google's libraries are against an emulator.
func emulatorConfig(srv *gcssrv.Server, bucket string) Config {
	return Config{
		Bucket: bucket, Prefix: testPrefix, EmulatorHost: srv.Host,
		UploadChunkSize: DefaultUploadChunkSize, Timeout: DefaultTimeout,
	}
}

// plantNeighbours puts objects beside the store's prefix and checks at
// cleanup that they are untouched.
func plantNeighbours(t *testing.T, srv *gcssrv.Server, bucket string) {
	t.Helper()
	names := []string{"outside.txt", testPrefix + "-sibling/x", "ferry/artifact"}
	for _, n := range names {
		srv.Put(t, bucket, n, []byte(n))
	}
	t.Cleanup(func() {
		have := map[string]bool{}
		for _, o := range srv.Objects(t, bucket, "") {
			have[o.Name] = true
		}
		for _, n := range names {
			if !have[n] {
				t.Errorf("object %q outside the store's prefix is gone", n)
			}
		}
	})
}

func instrument(s stores.Store) stores.Store {
	return stores.Instrument(s, "gcs", stores.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
}

// TestConformance runs the shared store suite on fake-gcs-server with an
// anonymous client (no signer: Presign and Multipart are skipped here and
// run through gcsxml in TestConformanceSigned). Its chunk is the smallest
// GCS allows, so that the suite's failing 1 MiB bodies take the streamed
// path (streamPut) here and the buffered one in TestConformanceSigned;
// uploads of unknown size take the chunked Writer in both.
func TestConformance(t *testing.T) {
	srv := gcssrv.Start(t)
	storetest.Run(t, func(t *testing.T) stores.Store {
		bucket := srv.Bucket(t)
		plantNeighbours(t, srv, bucket)
		cfg := emulatorConfig(srv, bucket)
		cfg.UploadChunkSize = ChunkAlign
		s, err := New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.(*SigningStore); ok {
			t.Fatal("an anonymous client must not offer presigning")
		}
		return instrument(s)
	})
}

// signedConfig is a store configuration for bucket behind xs (gcsxml in
// front of fake-gcs-server) with the service-account key file of acct,
// whose tokens xs issues and requires.
func signedConfig(t *testing.T, xs *gcsxml.Server, acct *gcsxml.Account, bucket string) Config {
	return Config{
		Bucket: bucket, Prefix: testPrefix, EmulatorHost: xs.Host, CredentialsFile: acct.CredentialsFile(t),
		UploadChunkSize: DefaultUploadChunkSize, Timeout: DefaultTimeout,
	}
}

// TestConformanceSigned runs the shared suite through gcsxml with a
// service-account key: every request carries a token the server checks,
// and the Presign and Multipart subtests run against URLs whose V4
// signatures the server verifies.
func TestConformanceSigned(t *testing.T) {
	srv := gcssrv.Start(t)
	xs := gcsxml.Start(t, srv.Endpoint)
	xs.RequireAuth.Store(true)
	acct := xs.NewAccount(t, "ferry")
	// The subtests run in parallel, after this function returns: check
	// once they are done.
	t.Cleanup(func() {
		if xs.SignedOK.Load() == 0 {
			t.Error("no signed request reached the server")
		}
		if n := xs.OpenUploads(); n != 0 {
			t.Errorf("%d multipart uploads left open", n)
		}
	})
	storetest.Run(t, func(t *testing.T) stores.Store {
		bucket := srv.Bucket(t)
		plantNeighbours(t, srv, bucket)
		s, err := New(t.Context(), signedConfig(t, xs, acct, bucket))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.(*SigningStore); !ok {
			t.Fatal("a service-account key must allow presigning")
		}
		return instrument(s)
	})
}
