package ftp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"

	"github.com/ferryml/ferry/stores/ftp"
	"github.com/ferryml/ferry/test/backends/ftpsrv"
	"github.com/ferryml/ferry/test/bench/benchutil"
)

// BenchmarkTransfer compares the driver's Put and Open with the library's
// own Stor and Retr on one connection to the same vsftpd, so a cost the
// driver adds shows against the baseline in one run. Besides time (noise
// on a shared machine) it reports this process's CPU time per GiB moved
// ("cpu-ms/GiB", from getrusage), which is what the driver controls.
//
// Uploads read from an in-memory stream in pieces of at most 64 KiB, as a
// socket delivers an HTTP body; downloads are copied to a loopback TCP
// connection, as the proxy sends a response, whose far end discards.
// FERRY_FTP_BENCH_SIZE sets the bytes per operation (default 64 MiB).
//
//	go test -run '^$' -bench Transfer -benchtime 4x ./stores/ftp/
func BenchmarkTransfer(b *testing.B) {
	size := int64(64 << 20)
	if v := os.Getenv("FERRY_FTP_BENCH_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("FERRY_FTP_BENCH_SIZE=%q: want a positive number of bytes", v)
		}
		size = n
	}
	srv := ftpsrv.Start(b)
	ctx := context.Background()
	cfg := config(b, srv, srv.Root+"/bench")
	s, err := ftp.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	store := instrument(s)

	direct, err := jftp.Dial(srv.Addr(), jftp.DialWithTimeout(30*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Quit()
	if err := direct.Login(srv.User, srv.Password); err != nil {
		b.Fatal(err)
	}
	directPath := srv.Root + "/direct.bin"

	sink := newSink(b)
	defer sink.Close()

	vsftpd := benchutil.ChildPID("vsftpd")
	run := func(b *testing.B, op func() error) {
		b.SetBytes(size)
		before, vsBefore := cpuTime(), benchutil.TreeCPU(vsftpd)
		b.ResetTimer()
		for range b.N {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		gib := float64(size) * float64(b.N) / (1 << 30)
		b.ReportMetric(float64((cpuTime()-before).Milliseconds())/gib, "cpu-ms/GiB")
		b.ReportMetric(float64((benchutil.TreeCPU(vsftpd)-vsBefore).Milliseconds())/gib, "vsftpd-cpu-ms/GiB")
	}
	b.Run("put/direct", func(b *testing.B) {
		run(b, func() error { return direct.Stor(directPath, &stream{left: size}) })
	})
	// What the driver does on the wire: a new file, renamed over the old.
	// Overwriting in place (put/direct) lets the server's file system drop
	// the previous round's pages unwritten, which makes it cheaper.
	b.Run("put/direct-rename", func(b *testing.B) {
		run(b, func() error {
			if err := direct.Stor(directPath+".tmp", &stream{left: size}); err != nil {
				return err
			}
			return direct.Rename(directPath+".tmp", directPath)
		})
	})
	b.Run("put/ferry", func(b *testing.B) {
		run(b, func() error { return store.Put(ctx, "blob.bin", &stream{left: size}, size) })
	})
	b.Run("get/direct", func(b *testing.B) {
		// Uploaded here when the put benchmarks did not run (-bench get).
		if n, err := direct.FileSize(directPath); err != nil || n != size {
			if err := direct.Stor(directPath, &stream{left: size}); err != nil {
				b.Fatal(err)
			}
		}
		run(b, func() error {
			r, err := direct.Retr(directPath)
			if err != nil {
				return err
			}
			n, err := io.Copy(sink, r)
			if cerr := r.Close(); err == nil {
				err = cerr
			}
			if err == nil && n != size {
				err = fmt.Errorf("got %d of %d bytes", n, size)
			}
			return err
		})
	})
	b.Run("get/ferry", func(b *testing.B) {
		if e, err := store.Stat(ctx, "blob.bin"); err != nil || e.Size != size {
			if err := store.Put(ctx, "blob.bin", &stream{left: size}, size); err != nil {
				b.Fatal(err)
			}
		}
		run(b, func() error {
			rc, _, err := store.Open(ctx, "blob.bin", 0, -1)
			if err != nil {
				return err
			}
			n, err := io.Copy(sink, rc)
			if cerr := rc.Close(); err == nil {
				err = cerr
			}
			if err == nil && n != size {
				err = fmt.Errorf("got %d of %d bytes", n, size)
			}
			return err
		})
	})
}

// stream yields left bytes in reads of at most 64 KiB and hides any
// WriterTo, like an HTTP request body.
type stream struct{ left int64 }

var streamChunk = make([]byte, 64<<10)

func (s *stream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	n := copy(p, streamChunk[:min(int64(len(streamChunk)), s.left)])
	s.left -= int64(n)
	return n, nil
}

// newSink returns the sending end of a loopback TCP connection whose
// receiving end discards everything.
func newSink(b *testing.B) *net.TCPConn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		// Closed only once accepted: closing a listener resets the
		// connections still queued on it.
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	return c.(*net.TCPConn)
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
