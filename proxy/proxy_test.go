package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/config"
	"github.com/ferryml/ferry/proxy"
	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/local"
	"github.com/ferryml/ferry/test/ferrytest"
)

// testServer is the proxy app served in-process on 127.0.0.1:0 over a
// local store wrapped in stores.Instrument with a fresh registry.
type testServer struct {
	addr   string
	dir    string
	base   string
	reg    *prometheus.Registry
	logs   *ferrytest.LogBuffer
	client *http.Client
}

// startServer builds the app with proxy.New; wrap, when not nil, wraps the
// local store before it is instrumented; opts adjust the options (and the
// config) before the app is built.
func startServer(t *testing.T, wrap func(stores.Store) stores.Store, opts ...func(*proxy.Options)) *testServer {
	t.Helper()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var s stores.Store = st
	if wrap != nil {
		s = wrap(st)
	}
	reg := prometheus.NewRegistry()
	logs := &ferrytest.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	inst := stores.Instrument(s, "local", stores.NewMetrics(reg), log)
	cfg := &config.Config{
		Host: "127.0.0.1", ServeArtifacts: true, ArtifactsDestination: dir,
		ShutdownTimeout: 10 * time.Second, PresignedDownloadTTL: 300 * time.Second,
		LogLevel: "debug", LogFormat: "json", Workers: 1,
	}
	o := proxy.Options{
		Config: cfg, Artifacts: inst, Registry: reg, Gatherer: reg, Log: log, FerryVersion: "test",
	}
	for _, fn := range opts {
		fn(&o)
	}
	srv, err := proxy.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.App.Listener(ln) }()
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true},
		Timeout:   60 * time.Second,
	}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		if err := srv.App.ShutdownWithTimeout(10 * time.Second); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", tail(logs.String(), 8<<10))
		}
	})
	return &testServer{
		addr:   ln.Addr().String(),
		dir:    dir,
		base:   "http://" + ln.Addr().String() + "/api/2.0/mlflow-artifacts",
		reg:    reg,
		logs:   logs,
		client: client,
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// do sends a request and returns status, headers and body; transport
// errors are returned, not fatal, so goroutines can report them.
func (s *testServer) do(method, path string, body []byte, hdr ...string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data, err
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConcurrentDistinctPaths: 32 clients upload and download their own
// objects at once (whole and ranged); every byte comes back, no 5xx.
func TestConcurrentDistinctPaths(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	const clients = 32
	var wg sync.WaitGroup
	errs := make(chan error, clients*4)
	for i := 0; i < clients; i++ {
		data := randomBytes(t, 64<<10+i*37<<10)
		wg.Add(1)
		go func(i int, data []byte) {
			defer wg.Done()
			path := fmt.Sprintf("/artifacts/distinct/%02d/obj.bin", i)
			for round := 0; round < 3; round++ {
				st, _, body, err := s.do(http.MethodPut, path, data)
				if err != nil || st != 200 || string(body) != "{}" {
					errs <- fmt.Errorf("client %d PUT: %d %q %v", i, st, body, err)
					return
				}
				st, _, body, err = s.do(http.MethodGet, path, nil)
				if err != nil || st != 200 || !bytes.Equal(body, data) {
					errs <- fmt.Errorf("client %d GET: %d, %d bytes (want %d), %v", i, st, len(body), len(data), err)
					return
				}
				from := len(data) / 3
				st, _, body, err = s.do(http.MethodGet, path, nil, "Range", fmt.Sprintf("bytes=%d-", from))
				if err != nil || st != 206 || !bytes.Equal(body, data[from:]) {
					errs <- fmt.Errorf("client %d ranged GET: %d, %d bytes, %v", i, st, len(body), err)
					return
				}
				data[0]++ // the next round overwrites with different content
			}
		}(i, data)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st, _, body, err := s.do(http.MethodGet, "/artifacts?path=distinct", nil)
	if err != nil || st != 200 || strings.Count(string(body), `"is_dir":true`) != clients {
		t.Errorf("listing: %d %v %s", st, err, body)
	}
	if strings.Contains(string(body), ".ferry-upload-") {
		t.Errorf("listing shows temporary uploads: %s", body)
	}
}

// TestConcurrentSamePath: 32 writers replace one object while readers
// download it; every download is exactly one writer's complete content
// (or 404 before the first commit), never a mix or a prefix, and no 5xx.
func TestConcurrentSamePath(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	const writers, readers = 32, 8
	const path = "/artifacts/same/obj.bin"
	contents := make([][]byte, writers)
	valid := map[[32]byte]bool{}
	for i := range contents {
		contents[i] = randomBytes(t, 128<<10+i*29<<10)
		valid[sha256.Sum256(contents[i])] = true
	}
	errs := make(chan error, writers+readers*2)
	stop := make(chan struct{})
	var readerWG, writerWG sync.WaitGroup
	reads := make([]int, readers)
	for r := 0; r < readers; r++ {
		readerWG.Add(1)
		go func(r int) {
			defer readerWG.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st, _, body, err := s.do(http.MethodGet, path, nil)
				switch {
				case err != nil:
					errs <- fmt.Errorf("reader %d: %v", r, err)
					return
				case st == 404:
				case st == 200 && valid[sha256.Sum256(body)]:
					reads[r]++
				default:
					errs <- fmt.Errorf("reader %d: %d with %d bytes matching no writer", r, st, len(body))
					return
				}
			}
		}(r)
	}
	for w := 0; w < writers; w++ {
		writerWG.Add(1)
		go func(w int) {
			defer writerWG.Done()
			st, _, body, err := s.do(http.MethodPut, path, contents[w])
			if err != nil || st != 200 {
				errs <- fmt.Errorf("writer %d PUT: %d %q %v", w, st, body, err)
				return
			}
			for i := 0; i < 2; i++ {
				st, _, body, err = s.do(http.MethodGet, path, nil)
				if err != nil || st != 200 || !valid[sha256.Sum256(body)] {
					errs <- fmt.Errorf("writer %d GET after PUT: %d, %d bytes, %v", w, st, len(body), err)
					return
				}
			}
		}(w)
	}
	writerWG.Wait()
	close(stop)
	readerWG.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st, _, body, err := s.do(http.MethodGet, "/artifacts?path=same", nil)
	if err != nil || st != 200 || !strings.HasPrefix(string(body), `{"files":[{"path":"obj.bin","is_dir":false,"file_size":`) || strings.Count(string(body), `"path"`) != 1 {
		t.Errorf("listing after concurrent writes: %d %v %s", st, err, body)
	}
}

// TestMetricsLabelsStableAcrossKeepAlive: requests with different methods on
// one keep-alive connection must leave valid, distinct label values behind
// (fiber's Ctx.Method aliases the connection's reused header buffer).
func TestMetricsLabelsStableAcrossKeepAlive(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	s.client.Transport.(*http.Transport).MaxConnsPerHost = 1
	steps := []struct {
		method string
		body   []byte
	}{
		{http.MethodPut, []byte("hello")},
		{http.MethodGet, nil},
		{http.MethodHead, nil},
		{http.MethodDelete, nil},
		{http.MethodGet, nil},
		{http.MethodPut, []byte("again")},
	}
	for _, st := range steps {
		if _, _, _, err := s.do(st.method, "/artifacts/m/a.txt", st.body); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics after mixed methods on one connection: %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "ferry_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[label(m, "method")+" "+label(m, "code")] += m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"PUT 200": 2, "GET 200": 1, "GET 404": 1, "HEAD 200": 1, "DELETE 200": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("ferry_http_requests_total{method,code=%s} = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// label returns the value of the named label of a gathered metric.
func label[M interface{ GetLabel() []L }, L interface {
	GetName() string
	GetValue() string
}](m M, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestRangeNotSatisfiableIsNotAnAttachment: a 416 carries Content-Range
// bytes */size and an error body, which must not be offered as the file.
func TestRangeNotSatisfiableIsNotAnAttachment(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	if st, _, _, err := s.do(http.MethodPut, "/artifacts/r/a.bin", []byte("0123456789")); err != nil || st != 200 {
		t.Fatalf("PUT: %d %v", st, err)
	}
	st, h, body, err := s.do(http.MethodGet, "/artifacts/r/a.bin", nil, "Range", "bytes=10-")
	if err != nil || st != 416 {
		t.Fatalf("GET: %d %v", st, err)
	}
	if h.Get("Content-Range") != "bytes */10" {
		t.Errorf("Content-Range %q, want bytes */10", h.Get("Content-Range"))
	}
	if h.Get("Content-Disposition") != "" {
		t.Errorf("416 error body offered as the file: Content-Disposition %q", h.Get("Content-Disposition"))
	}
	if !strings.Contains(string(body), `"error_code":"INVALID_PARAMETER_VALUE"`) || h.Get("Content-Type") != "application/json" {
		t.Errorf("416 body %q (%s), want MLflow error JSON", body, h.Get("Content-Type"))
	}
}

// ctxStore makes every reader it opens fail once the context given to Open
// is done, as cloud SDKs do with response bodies tied to the request.
type ctxStore struct{ stores.Store }

func (c ctxStore) Unwrap() stores.Store { return c.Store }

func (c ctxStore) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, stores.Entry, error) {
	rc, e, err := c.Store.Open(ctx, key, offset, length)
	if err != nil {
		return nil, e, err
	}
	return ctxReadCloser{ctx: ctx, rc: rc}, e, nil
}

type ctxReadCloser struct {
	ctx context.Context
	rc  io.ReadCloser
}

func (c ctxReadCloser) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("reading body: %w", err)
	}
	return c.rc.Read(p)
}

func (c ctxReadCloser) Close() error { return c.rc.Close() }

// TestDownloadContextLivesWhileStreaming: the context a store gets for a
// download must stay alive until the body has been streamed, else stores
// whose readers honour it (S3, GCS, Azure SDKs) deliver nothing.
func TestDownloadContextLivesWhileStreaming(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(st stores.Store) stores.Store { return ctxStore{st} })
	data := randomBytes(t, 3<<20)
	if st, _, _, err := s.do(http.MethodPut, "/artifacts/c/big.bin", data); err != nil || st != 200 {
		t.Fatalf("PUT: %d %v", st, err)
	}
	for _, rng := range []string{"", "bytes=1000-", "bytes=-5"} {
		var hdr []string
		if rng != "" {
			hdr = []string{"Range", rng}
		}
		st, _, body, err := s.do(http.MethodGet, "/artifacts/c/big.bin", nil, hdr...)
		want := data
		switch rng {
		case "bytes=1000-":
			want = data[1000:]
		case "bytes=-5":
			want = data[len(data)-5:]
		}
		if err != nil || (st != 200 && st != 206) || !bytes.Equal(body, want) {
			t.Errorf("GET Range %q through a context-honouring store: %d, %d of %d bytes, %v", rng, st, len(body), len(want), err)
		}
	}
	// The completed downloads count as successes, not cancellations.
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ferry_store_operations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "op") == "get" && label(m, "outcome") != "success" {
				t.Errorf("get outcome %q counted %v times", label(m, "outcome"), m.GetCounter().GetValue())
			}
		}
	}
}

// TestDownloadClientGoneIsCanceled: a client that hangs up mid-download is
// counted as a canceled get, not as a store error, and the server goes on.
func TestDownloadClientGoneIsCanceled(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	// Far more than loopback socket buffers hold, so the server is still
	// writing when the client hangs up.
	data := randomBytes(t, 24<<20)
	if st, _, _, err := s.do(http.MethodPut, "/artifacts/g/big.bin", data); err != nil || st != 200 {
		t.Fatalf("PUT: %d %v", st, err)
	}
	host := strings.TrimPrefix(strings.TrimSuffix(s.base, "/api/2.0/mlflow-artifacts"), "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /api/2.0/mlflow-artifacts/artifacts/g/big.bin HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	if _, err := io.ReadFull(conn, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()

	deadline := time.Now().Add(30 * time.Second)
	for {
		canceled, errored, inFlight := 0.0, 0.0, 1.0
		mfs, err := s.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				switch {
				case mf.GetName() == "ferry_store_operations_total" && label(m, "op") == "get" && label(m, "outcome") == "canceled":
					canceled += m.GetCounter().GetValue()
				case mf.GetName() == "ferry_store_operations_total" && label(m, "op") == "get" && label(m, "outcome") == "error":
					errored += m.GetCounter().GetValue()
				case mf.GetName() == "ferry_store_in_flight_operations" && label(m, "op") == "get":
					inFlight = m.GetGauge().GetValue()
				}
			}
		}
		if inFlight == 0 && canceled+errored > 0 {
			if canceled != 1 || errored != 0 {
				t.Errorf("abandoned download counted canceled=%v error=%v, want canceled=1 error=0", canceled, errored)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("abandoned download never finished: canceled=%v error=%v in_flight=%v", canceled, errored, inFlight)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, _, body, err := s.do(http.MethodGet, "/artifacts/g/big.bin", nil); err != nil || st != 200 || !bytes.Equal(body, data) {
		t.Fatalf("download after an abandoned one: %d, %d bytes, %v", st, len(body), err)
	}
	if strings.Contains(s.logs.String(), `"level":"ERROR"`) {
		t.Errorf("a client hanging up was logged as an error:\n%s", tail(s.logs.String(), 4<<10))
	}
}

// TestUnmatchedRoutesLabel: requests that match no route are counted under
// route="unmatched", not under the middleware's "/".
func TestUnmatchedRoutesLabel(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	for _, p := range []string{"/nope", "/api/2.0/mlflow-artifacts/nothing", "/"} {
		req, _ := http.NewRequest(http.MethodGet, strings.TrimSuffix(s.base, "/api/2.0/mlflow-artifacts")+p, nil)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "ferry_http_requests_total" {
			for _, m := range mf.GetMetric() {
				routes[label(m, "route")] += m.GetCounter().GetValue()
			}
		}
	}
	if routes["unmatched"] != 3 || len(routes) != 1 {
		t.Errorf("ferry_http_requests_total by route = %v, want only unmatched=3", routes)
	}
}

// countingStore counts Stat and Open calls.
type countingStore struct {
	stores.Store
	stats, opens *atomic.Int64
}

func (c countingStore) Unwrap() stores.Store { return c.Store }

func (c countingStore) Stat(ctx context.Context, key string) (stores.Entry, error) {
	c.stats.Add(1)
	return c.Store.Stat(ctx, key)
}

func (c countingStore) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, stores.Entry, error) {
	c.opens.Add(1)
	return c.Store.Open(ctx, key, offset, length)
}

// TestRangedDownloadOneStoreCall: a "bytes=a-b" or "bytes=a-" download is
// one ranged Open (one request on S3), no Stat; only a range past the end
// (416, which names the size) and a suffix range need the Stat.
func TestRangedDownloadOneStoreCall(t *testing.T) {
	t.Parallel()
	var stats, opens atomic.Int64
	s := startServer(t, func(st stores.Store) stores.Store { return countingStore{st, &stats, &opens} })
	data := randomBytes(t, 1000)
	if st, _, _, err := s.do(http.MethodPut, "/artifacts/c/r.bin", data); err != nil || st != 200 {
		t.Fatalf("PUT: %d %v", st, err)
	}
	if st, _, _, err := s.do(http.MethodPut, "/artifacts/c/empty.bin", nil); err != nil || st != 200 {
		t.Fatalf("PUT: %d %v", st, err)
	}
	for _, tc := range []struct {
		path, rng    string
		status       int
		contentRange string
		body         []byte
		stats, opens int64
	}{
		{"/artifacts/c/r.bin", "bytes=10-19", 206, "bytes 10-19/1000", data[10:20], 0, 1},
		{"/artifacts/c/r.bin", "bytes=990-", 206, "bytes 990-999/1000", data[990:], 0, 1},
		{"/artifacts/c/r.bin", "bytes=995-5000", 206, "bytes 995-999/1000", data[995:], 0, 1},
		{"/artifacts/c/r.bin", "bytes=1000-", 416, "bytes */1000", nil, 1, 1},
		{"/artifacts/c/empty.bin", "bytes=0-", 416, "bytes */0", nil, 0, 1},
		{"/artifacts/c/r.bin", "bytes=-10", 206, "bytes 990-999/1000", data[990:], 1, 1},
		{"/artifacts/c/missing.bin", "bytes=0-9", 404, "", nil, 0, 1},
		{"/artifacts/c", "bytes=0-9", 400, "", nil, 0, 1},
	} {
		stats.Store(0)
		opens.Store(0)
		st, h, body, err := s.do(http.MethodGet, tc.path, nil, "Range", tc.rng)
		if err != nil || st != tc.status || h.Get("Content-Range") != tc.contentRange {
			t.Errorf("GET %s Range %q: %d Content-Range %q %v; want %d %q", tc.path, tc.rng, st, h.Get("Content-Range"), err, tc.status, tc.contentRange)
			continue
		}
		if tc.status == 206 && !bytes.Equal(body, tc.body) {
			t.Errorf("GET %s Range %q: %d bytes, want %d", tc.path, tc.rng, len(body), len(tc.body))
		}
		if stats.Load() != tc.stats || opens.Load() != tc.opens {
			t.Errorf("GET %s Range %q: %d Stat and %d Open calls; want %d and %d", tc.path, tc.rng, stats.Load(), opens.Load(), tc.stats, tc.opens)
		}
	}
}
