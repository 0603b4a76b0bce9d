package sftp_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/ferryml/ferry/stores/sftp"
	"github.com/ferryml/ferry/test/backends/sftpsrv"
)

// BenchmarkTransfer uploads and downloads 64 MiB through the driver
// against the test sshd, for -benchmem and -memprofile: where a transfer's
// memory goes (see NOTES.md § Peak RSS).
//
//	go test -run '^$' -bench BenchmarkTransfer -benchmem -memprofile /tmp/sftp.mem ./stores/sftp/
func BenchmarkTransfer(b *testing.B) {
	srv := sftpsrv.Start(b)
	cfg := keyConfig(b, srv, srv.Root+"/bench")
	s, err := sftp.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<20/16)
	ctx := context.Background()
	b.SetBytes(2 * int64(len(data)))
	for b.Loop() {
		if err := s.Put(ctx, "obj", struct{ io.Reader }{bytes.NewReader(data)}, int64(len(data))); err != nil {
			b.Fatal(err)
		}
		rc, _, err := s.Open(ctx, "obj", 0, -1)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != int64(len(data)) {
			b.Fatalf("read %d bytes, %v", n, err)
		}
	}
}
