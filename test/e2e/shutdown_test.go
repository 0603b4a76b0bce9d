package e2e

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// trickleReader hands out data in pieces with a pause before each piece,
// so an upload lasts about len(data)/piece*pause whatever buffer size the
// HTTP client reads with.
type trickleReader struct {
	data  []byte
	piece int
	pause time.Duration
	left  int // bytes left in the current piece
}

func (r *trickleReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.left == 0 {
		time.Sleep(r.pause)
		r.left = r.piece
	}
	n := copy(p[:min(len(p), r.left)], r.data)
	r.data = r.data[n:]
	r.left -= n
	return n, nil
}

// TestGracefulShutdown: SIGTERM in the middle of a slow 20 MiB upload
// stops new connections at once, lets the upload finish with 200 and a
// whole object, and then the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	f := startFerry(t, "--shutdown-timeout", "60s")
	data := randomBytes(20 << 20)
	u := f.Art("/api", "/artifacts/0/run/artifacts/slow.bin")

	type outcome struct {
		status int
		body   string
		err    error
		at     time.Time
	}
	done := make(chan outcome, 1)
	go func() {
		req, err := http.NewRequest(http.MethodPut, u, &trickleReader{data: data, piece: 256 << 10, pause: 25 * time.Millisecond})
		if err != nil {
			done <- outcome{err: err}
			return
		}
		req.ContentLength = int64(len(data))
		resp, err := bigClient.Do(req)
		if err != nil {
			done <- outcome{err: err, at: time.Now()}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- outcome{status: resp.StatusCode, body: string(b), err: err, at: time.Now()}
	}()

	// SIGTERM only once the server is inside the upload.
	eventually(t, 20*time.Second, "upload in flight", func() (bool, string) {
		_, _, inFlight := storeCounters(t, f, "put")
		return inFlight == 1, fmt.Sprint("in-flight puts: ", inFlight)
	})
	f.Signal(t, syscall.SIGTERM)
	signaled := time.Now()

	// New connections are refused while the upload is still running.
	refusedAt := time.Time{}
	eventually(t, 10*time.Second, "new connections refused after SIGTERM", func() (bool, string) {
		c, err := net.DialTimeout("tcp", f.Addr(), time.Second)
		if err == nil {
			c.Close()
			return false, "dial succeeded"
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return false, err.Error()
		}
		refusedAt = time.Now()
		return true, ""
	})

	var o outcome
	select {
	case o = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("upload did not finish within 60 s of SIGTERM")
	}
	if o.err != nil || o.status != 200 || o.body != "{}" {
		t.Fatalf("upload across SIGTERM: %d %q %v, want 200 {}", o.status, o.body, o.err)
	}
	if !o.at.After(refusedAt) {
		t.Errorf("the upload finished (%v) before new connections were refused (%v): the test did not overlap them", o.at.Sub(signaled), refusedAt.Sub(signaled))
	}
	stored, err := os.ReadFile(filepath.Join(f.Dest, "0", "run", "artifacts", "slow.bin"))
	if err != nil || sha256.Sum256(stored) != sha256.Sum256(data) {
		t.Fatalf("object after graceful shutdown: %d bytes, %v; want the whole %d bytes", len(stored), err, len(data))
	}
	if code := f.Wait(30 * time.Second); code != 0 {
		t.Fatalf("ferry exit code after SIGTERM: %d, want 0", code)
	}
	for _, msg := range []string{"shutting down: waiting for in-flight requests", "ferry stopped"} {
		if len(f.FindLogs(func(l logLine) bool { return l.Msg() == msg })) != 1 {
			t.Errorf("log line %q missing", msg)
		}
	}
	if tmp := tempFiles(t, f.Dest); len(tmp) != 0 {
		t.Errorf("temporary files after shutdown: %v", tmp)
	}
}
