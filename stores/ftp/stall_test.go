package ftp_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/ftp"
	"github.com/ferryml/ferry/test/backends/ftpsrv"
)

// TestServerStalledMidTransfer: a server that stops moving data mid-upload
// or mid-download (frozen with SIGSTOP: connections open, nothing sent,
// nothing answered) fails the transfer with ErrUnavailable within about
// Config.Timeout, on a spliced download, a copied (ranged) one, one read
// through the library's reader and an upload, instead of holding it forever; once the server is back, the
// store works again.
func TestServerStalledMidTransfer(t *testing.T) {
	srv := ftpsrv.Start(t)
	cfg := config(t, srv, srv.Root+"/stall")
	cfg.Timeout = 2 * time.Second
	s, err := ftp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// Larger than the socket buffers between Ferry and the server, so the
	// freeze catches the transfer with most of it still to move.
	const size = 32 << 20
	if err := s.Put(ctx, "big", &stream{left: size}, size); err != nil {
		t.Fatal(err)
	}
	// bound fails the test if f has not returned within limit.
	bound := func(what string, limit time.Duration, f func() error) error {
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- f() }()
		select {
		case err := <-done:
			t.Logf("%s: returned after %v: %v", what, time.Since(start).Round(time.Millisecond), err)
			return err
		case <-time.After(limit):
			srv.Resume()
			t.Fatalf("%s: still running %v after the server froze", what, limit)
			return nil
		}
	}
	for _, tc := range []struct {
		name           string
		offset, length int64
		sink           func(t *testing.T) (io.Writer, func())
	}{
		{"spliced download", 0, -1, func(t *testing.T) (io.Writer, func()) {
			k := newTCPSink(t, 8<<20, srv.Pause)
			return k, func() { k.finish() }
		}},
		{"copied download", 1, size - 2, func(t *testing.T) (io.Writer, func()) {
			return &pausingWriter{at: 4 << 20, pause: srv.Pause}, func() {}
		}},
		{"read download", 0, -1, func(t *testing.T) (io.Writer, func()) {
			return &pausingWriter{at: 4 << 20, pause: srv.Pause}, func() {}
		}},
	} {
		rc, _, err := s.Open(ctx, "big", tc.offset, tc.length)
		if err != nil {
			t.Fatal(err)
		}
		w, finish := tc.sink(t)
		var n int64
		err = bound(tc.name, 20*time.Second, func() error {
			var err error
			var src io.Reader = rc
			if tc.name == "read download" {
				src = struct{ io.Reader }{rc} // Read, not WriteTo: the library's own reads
			}
			n, err = io.Copy(w, src)
			return err
		})
		rc.Close()
		srv.Resume()
		finish()
		if n >= size-2 || !errors.Is(err, stores.ErrUnavailable) {
			t.Errorf("%s with the server frozen: %d bytes, %v; want fewer and ErrUnavailable", tc.name, n, err)
		}
	}

	body := &pausingReader{stream: stream{left: size}, at: 4 << 20, pause: srv.Pause}
	err = bound("upload", 20*time.Second, func() error { return s.Put(ctx, "frozen", body, size) })
	srv.Resume()
	if err == nil || !errors.Is(err, stores.ErrUnavailable) {
		t.Errorf("upload with the server frozen: %v; want ErrUnavailable", err)
	}
	if _, err := s.Stat(ctx, "frozen"); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("the frozen upload left an object: %v", err)
	}

	// Thawed, the server serves again through the same store.
	rc, e, err := s.Open(ctx, "big", 0, -1)
	if err != nil {
		t.Fatalf("Open after the server thawed: %v", err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil || n != size || e.Size != size {
		t.Fatalf("download after the server thawed: %d of %d bytes, %v", n, size, err)
	}
}

// pausingWriter discards what it is given and calls pause once at bytes.
type pausingWriter struct {
	got, at int64
	pause   func()
	fired   bool
}

func (w *pausingWriter) Write(p []byte) (int, error) {
	w.got += int64(len(p))
	if w.got >= w.at && !w.fired {
		w.fired = true
		w.pause()
	}
	return len(p), nil
}

// pausingReader is a stream that calls pause once at bytes read.
type pausingReader struct {
	stream
	read, at int64
	pause    func()
	fired    bool
}

func (r *pausingReader) Read(p []byte) (int, error) {
	n, err := r.stream.Read(p)
	r.read += int64(n)
	if r.read >= r.at && !r.fired {
		r.fired = true
		r.pause()
	}
	return n, err
}
