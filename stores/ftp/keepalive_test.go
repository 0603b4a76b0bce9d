package ftp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/stores/ftp"
	"github.com/ferryml/ferry/test/backends/ftpsrv"
)

// TestKeepAlive runs vsftpd with a 3 s idle_session_timeout and leaves a
// pooled connection quiet for 5 s. Without keep-alive the server drops it
// (the next operation still works, but only by dialling again: that
// proves the timeout bites); with a 1 s keep-alive the same connection
// serves the operation.
func TestKeepAlive(t *testing.T) {
	srv := ftpsrv.Start(t, "idle_session_timeout=3")
	for _, tc := range []struct {
		name       string
		keepAlive  time.Duration
		wantRedial bool
	}{
		{"off", -1, true},
		{"1s", time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := config(t, srv, srv.Root+"/keepalive-"+tc.name)
			cfg.KeepAlive = tc.keepAlive
			cfg.MaxConnections = 1
			ctx := context.Background()
			s, err := ftp.New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Put(ctx, "k", strings.NewReader("v"), 1); err != nil {
				t.Fatal(err)
			}
			before := ftp.DialCount(s)
			time.Sleep(5 * time.Second)
			if e, err := s.Stat(ctx, "k"); err != nil || e.Size != 1 {
				t.Fatalf("Stat after 5 s idle = %+v, %v", e, err)
			}
			if redialed := ftp.DialCount(s) > before; redialed != tc.wantRedial {
				t.Fatalf("dialled again after 5 s idle: %v; want %v", redialed, tc.wantRedial)
			}
		})
	}
}
