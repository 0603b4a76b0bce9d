package gcs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferryml/ferry/stores"
)

// sessionServer answers the JSON API's resumable upload calls the way GCS
// documents them and records what it was sent; failStarts makes the first
// session starts answer 503, cutAfter makes it drop the PUT's connection
// after that many bytes.
type sessionServer struct {
	*httptest.Server
	failStarts atomic.Int32
	cutAfter   int64

	mu        sync.Mutex
	starts    int
	got       map[string][]byte // finished objects by name
	cancelled int
	puts      []http.Header
}

const sessionSecret = "upload_id=SECRET-SESSION"

func newSessionServer(t *testing.T) *sessionServer {
	ss := &sessionServer{got: map[string][]byte{}}
	ss.Server = httptest.NewServer(http.HandlerFunc(ss.serve))
	t.Cleanup(ss.Close)
	return ss
}

func (ss *sessionServer) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/upload/storage/v1/b/bkt/o" && r.URL.Query().Get("uploadType") == "resumable":
		ss.mu.Lock()
		ss.starts++
		ss.mu.Unlock()
		if ss.failStarts.Add(-1) >= 0 {
			http.Error(w, `{"error": {"code": 503, "message": "try later"}}`, http.StatusServiceUnavailable)
			return
		}
		name := r.URL.Query().Get("name")
		if r.Header.Get("X-Upload-Content-Length") == "" || !strings.Contains(r.Header.Get("Content-Type"), "application/json") {
			http.Error(w, `{"error": {"code": 400, "message": "bad start"}}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Location", ss.URL+"/session/"+name+"?"+sessionSecret)
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/session/"):
		ss.mu.Lock()
		ss.puts = append(ss.puts, r.Header.Clone())
		ss.mu.Unlock()
		var body io.Reader = r.Body
		if ss.cutAfter > 0 {
			body = io.LimitReader(r.Body, ss.cutAfter)
		}
		data, err := io.ReadAll(body)
		if ss.cutAfter > 0 {
			// Drop the connection as a dying server would.
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		if err != nil || int64(len(data)) != r.ContentLength {
			return // short body: nothing is finalised
		}
		ss.mu.Lock()
		ss.got[strings.TrimPrefix(r.URL.Path, "/session/")] = data
		ss.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"name": "x"}`)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/session/"):
		ss.mu.Lock()
		ss.cancelled++
		ss.mu.Unlock()
		w.WriteHeader(499)
	default:
		http.Error(w, `{"error": {"code": 400, "message": "unexpected call"}}`, http.StatusBadRequest)
	}
}

func sessionStore(t *testing.T, ss *sessionServer) *Store {
	t.Helper()
	s, err := newStore(context.Background(), Config{Bucket: "bkt", Prefix: "p", EmulatorHost: ss.URL,
		UploadChunkSize: ChunkAlign, MultipartThreshold: 4 << 20, Timeout: DefaultTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStreamedPut: an upload of known size from one chunk to below the
// threshold is one session start and one PUT declaring the whole object,
// whose body is the object; a session start that meets an outage is
// retried.
func TestStreamedPut(t *testing.T) {
	ss := newSessionServer(t)
	ss.failStarts.Store(2)
	s := sessionStore(t, ss)
	data := bytes.Repeat([]byte("0123456789abcdef"), (1<<20)/16+3)
	if err := s.Put(context.Background(), "a/b.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !bytes.Equal(ss.got["p/a/b.bin"], data) {
		t.Fatalf("the server got %d bytes; want the %d sent", len(ss.got["p/a/b.bin"]), len(data))
	}
	if ss.starts != 3 || len(ss.puts) != 1 {
		t.Errorf("%d session starts (2 refused) and %d PUTs; want 3 and 1", ss.starts, len(ss.puts))
	}
	if cr, want := ss.puts[0].Get("Content-Range"), fmt.Sprintf("bytes 0-%d/%d", len(data)-1, len(data)); cr != want {
		t.Errorf("Content-Range %q; want %q", cr, want)
	}
}

// TestStreamedPutFailures: a body that fails or ends early, or a server
// that drops the connection, leaves no object, cancels the session, and
// yields an error that does not carry the session URI (a bearer
// credential).
func TestStreamedPutFailures(t *testing.T) {
	const size = 2 << 20
	errBody := errors.New("client went away")
	for _, tc := range []struct {
		name     string
		body     io.Reader
		cutAfter int64
		want     error
	}{
		{"body ends early", bytes.NewReader(make([]byte, size/2)), 0, stores.ErrIncomplete},
		{"body fails", io.MultiReader(bytes.NewReader(make([]byte, size/2)), iotestErr{errBody}), 0, errBody},
		{"server drops the connection", bytes.NewReader(make([]byte, size)), size / 4, stores.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := newSessionServer(t)
			ss.cutAfter = tc.cutAfter
			s := sessionStore(t, ss)
			err := s.Put(context.Background(), "x.bin", tc.body, size)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Put = %v; want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the error shows the session URI: %v", err)
			}
			ss.mu.Lock()
			defer ss.mu.Unlock()
			if len(ss.got) != 0 || ss.cancelled != 1 {
				t.Errorf("%d objects stored, %d sessions cancelled; want 0 and 1", len(ss.got), ss.cancelled)
			}
		})
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }
