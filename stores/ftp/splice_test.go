package ftp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/ftp"
	"github.com/ferryml/ferry/test/backends/ftpsrv"
)

// tcpSink is a loopback TCP connection, as the proxy's response is: io.Copy
// into it lets Go splice from the FTP data socket. The far end hashes what
// arrives and calls onAt, if set, once it has received at bytes.
type tcpSink struct {
	*net.TCPConn
	got  atomic.Int64
	sum  chan []byte
	at   int64
	onAt func()
}

func newTCPSink(t *testing.T, at int64, onAt func()) *tcpSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpSink{sum: make(chan []byte, 1), at: at, onAt: onAt}
	go func() {
		// Closed only once accepted: closing a listener resets the
		// connections still queued on it.
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			s.sum <- nil
			return
		}
		defer c.Close()
		h := sha256.New()
		buf := make([]byte, 64<<10)
		fired := false
		for {
			n, err := c.Read(buf)
			h.Write(buf[:n])
			if s.got.Add(int64(n)) >= s.at && s.onAt != nil && !fired {
				fired = true
				s.onAt()
			}
			if err != nil {
				break
			}
		}
		s.sum <- h.Sum(nil)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s.TCPConn = c.(*net.TCPConn)
	return s
}

// finish closes the sending side and returns the hash of all received.
func (s *tcpSink) finish() []byte {
	_ = s.CloseWrite()
	sum := <-s.sum
	_ = s.Close()
	return sum
}

// TestDownloadSpliced: a plain-FTP download copied into a TCP connection
// (the path the proxy's response takes, where the kernel splices socket to
// socket) delivers exactly the requested range, and the connection goes
// back to the pool for the next one.
func TestDownloadSpliced(t *testing.T) {
	srv := ftpsrv.Start(t)
	cfg := config(t, srv, srv.Root+"/splice")
	cfg.MaxConnections = 1 // every Open reuses the connection the last one returned
	s, err := ftp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	data := make([]byte, 6<<20+123)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	if err := s.Put(ctx, "obj", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		offset, length int64
		want           []byte
	}{
		{"whole", 0, -1, data},
		{"from an offset to the end", 5 << 20, -1, data[5<<20:]},
		{"inside", 1000, 3 << 20, data[1000 : 1000+3<<20]},
		{"one byte", 77, 1, data[77:78]},
	} {
		for _, inst := range []bool{false, true} {
			st := stores.Store(s)
			if inst {
				st = instrument(s)
			}
			rc, _, err := st.Open(ctx, "obj", tc.offset, tc.length)
			if err != nil {
				t.Fatalf("%s: Open: %v", tc.name, err)
			}
			if _, ok := rc.(io.WriterTo); !ok {
				t.Fatalf("%s: the plain-FTP reader %T has no WriteTo: no splice", tc.name, rc)
			}
			sink := newTCPSink(t, 0, nil)
			n, err := io.Copy(sink, rc)
			if cerr := rc.Close(); err == nil {
				err = cerr
			}
			sum := sink.finish()
			if err != nil || n != int64(len(tc.want)) {
				t.Fatalf("%s (instrumented %v): copied %d bytes, %v; want %d", tc.name, inst, n, err, len(tc.want))
			}
			if want := sha256.Sum256(tc.want); !bytes.Equal(sum, want[:]) {
				t.Fatalf("%s (instrumented %v): the bytes received differ", tc.name, inst)
			}
		}
	}
	// Downloads to the end of the object hand their connection back;
	// those cut short (the last two ranges, twice each) discard it. New
	// dials twice (the MLSD probe, then the pool's first), and each of the
	// last three opens needs a new one.
	if d := ftp.DialCount(s); d != 5 {
		t.Fatalf("%d control connections dialled; want 5", d)
	}
}

// TestServerKilledMidSplice: a spliced download cut off by the server's
// death fails as ErrUnavailable rather than ending early as if complete,
// and after a restart the store serves the object whole.
func TestServerKilledMidSplice(t *testing.T) {
	srv := ftpsrv.Start(t)
	cfg := config(t, srv, srv.Root+"/splicekill")
	s, err := ftp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// Larger than the socket and pipe buffers in between, so the server
	// dies with most of it unsent.
	const size = 256 << 20
	if err := s.Put(ctx, "big", &stream{left: size}, size); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Open(ctx, "big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	sink := newTCPSink(t, 1<<20, srv.Kill)
	n, err := io.Copy(sink, rc)
	rc.Close()
	sink.finish()
	if n >= size || !errors.Is(err, stores.ErrUnavailable) {
		t.Fatalf("download with the server killed midway: %d of %d bytes, %v; want fewer and ErrUnavailable", n, size, err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	rc, _, err = s.Open(ctx, "big", 0, -1)
	if err != nil {
		t.Fatalf("Open after restart: %v", err)
	}
	sink = newTCPSink(t, 0, nil)
	n, err = io.Copy(sink, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	sink.finish()
	if err != nil || n != size {
		t.Fatalf("download after restart: %d of %d bytes, %v", n, size, err)
	}
}
