package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/config"
	"github.com/ferryml/ferry/proxy"
)

const (
	invalidHost = "Invalid Host header - possible DNS rebinding attack detected"
	corsBlocked = "Cross-origin request blocked"
)

func withSecurity(sec config.Security) func(*proxy.Options) {
	return func(o *proxy.Options) { o.Config.Security = sec }
}

// req sends one request to the server's root (not the artifacts base);
// host, when set, replaces the Host header.
func (s *testServer) req(t *testing.T, method, path, host string, body io.Reader, hdr ...string) (int, http.Header, string) {
	t.Helper()
	r, err := http.NewRequest(method, "http://"+s.addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		r.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(r)
	if err != nil {
		t.Fatalf("%s %s (Host %q): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

const artPath = "/api/2.0/mlflow-artifacts/artifacts/sec/x.txt"

// TestHostCheckDefaults: with no list, localhost, loopback, private and
// unspecified addresses (any port) and the bound host pass; other names,
// and names that only look like private addresses, get upstream's 403.
func TestHostCheckDefaults(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, withSecurity(config.Security{XFrameOptions: "SAMEORIGIN"}))
	_, port, _ := net.SplitHostPort(s.addr)
	allowed := []string{"localhost", "localhost:" + port, "LocalHost:1", "127.0.0.1", "127.0.0.1:" + port,
		"[::1]:" + port, "[::1]", "0.0.0.0:5000", "10.1.2.3", "172.16.0.1:80", "172.31.255.255",
		"192.168.1.10:5000", "[fd12:3456::1]:5000", "[fc00::1]", "127.0.0.2"}
	for _, h := range allowed {
		if st, _, body := s.req(t, http.MethodPut, artPath, h, strings.NewReader("x")); st != 200 {
			t.Errorf("PUT with Host %q: %d %q, want 200", h, st, body)
		}
	}
	refused := []string{"evil.example", "evil.example:" + port, "10.evil.example", "192.168.1.1.evil.example",
		"172.32.0.1", "8.8.8.8", "localhost.evil.example", "[fe80::1%25eth0]:1", "localhost:123456"}
	for _, h := range refused {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			var body io.Reader
			if m == http.MethodPut {
				body = strings.NewReader("x")
			}
			st, hdr, got := s.req(t, m, artPath, h, body)
			if st != 403 || got != invalidHost || hdr.Get("Content-Type") != "text/plain" {
				t.Errorf("%s with Host %q: %d %q (%s), want 403 %q text/plain", m, h, st, got, hdr.Get("Content-Type"), invalidHost)
			}
		}
	}
	// Malformed Host headers never reach a handler (fasthttp answers 400).
	for _, h := range []string{"[::1", "localhost:port", "::1"} {
		if st, _, _ := s.req(t, http.MethodPut, artPath, h, strings.NewReader("x")); st != 400 && st != 403 {
			t.Errorf("PUT with Host %q: %d, want 400 or 403", h, st)
		}
	}
	// Health checks and Prometheus use names of their own.
	for _, p := range []string{"/health", "/version", "/metrics"} {
		if st, _, body := s.req(t, http.MethodGet, p, "ferry:5000", nil); st != 200 {
			t.Errorf("GET %s with Host ferry:5000: %d %q, want 200", p, st, truncate(body))
		}
	}
	if st, _, _ := s.req(t, http.MethodGet, "/api/2.0/mlflow-artifacts/artifacts", "ferry:5000", nil); st != 403 {
		t.Errorf("listing with Host ferry:5000: %d, want 403", st)
	}
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// TestHostCheckBoundHost: the address Ferry binds is accepted by default.
func TestHostCheckBoundHost(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, func(o *proxy.Options) { o.Config.Host = "mlflow.internal" })
	if st, _, body := s.req(t, http.MethodGet, artPath, "mlflow.internal:5000", nil); st != 404 {
		t.Errorf("GET with the bound host: %d %q, want 404 (no such artifact)", st, body)
	}
	if st, _, _ := s.req(t, http.MethodGet, artPath, "other.internal:5000", nil); st != 403 {
		t.Errorf("GET with another host: %d, want 403", st)
	}
}

// TestHostCheckConfigured: a list replaces the defaults (as upstream);
// patterns are fnmatch; "*" accepts anything; disabled checks nothing.
func TestHostCheckConfigured(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, withSecurity(config.Security{AllowedHosts: []string{"mlflow.example.com", "*.corp.example", "gw.example:8443"}}))
	for h, want := range map[string]int{
		"mlflow.example.com": 200, "MLflow.Example.com": 200, "mlflow.example.com:5000": 200, "a.corp.example:8443": 200,
		"gw.example:8443": 200, "gw.example": 403, "gw.example:443": 403,
		"localhost": 403, "127.0.0.1": 403, "mlflow.example.com.evil": 403, "corp.example": 403,
	} {
		if st, _, _ := s.req(t, http.MethodPut, artPath, h, strings.NewReader("x")); st != want {
			t.Errorf("PUT with Host %q: %d, want %d", h, st, want)
		}
	}
	for _, sec := range []config.Security{{AllowedHosts: []string{"*"}}, {Disabled: true}} {
		s := startServer(t, nil, withSecurity(sec))
		if st, _, _ := s.req(t, http.MethodPut, artPath, "evil.example", strings.NewReader("x")); st != 200 {
			t.Errorf("%+v: PUT with Host evil.example: %d, want 200", sec, st)
		}
	}
}

// TestOriginCheck: state-changing API requests from foreign origins are
// refused; requests without Origin, safe methods and localhost or listed
// origins pass, and allowed origins get CORS headers.
func TestOriginCheck(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, withSecurity(config.Security{CORSAllowedOrigins: []string{"https://*.example.com", "https://app.test"}}))
	mpu := "/api/2.0/mlflow-artifacts/mpu/create/sec/big.bin"
	for _, p := range []string{"/api/2.0/mlflow/runs/create", "/ajax-api/2.0/mlflow/runs/create", "/v1/traces"} {
		st, hdr, body := s.req(t, http.MethodPost, p, "", strings.NewReader("{}"), "Origin", "https://evil.example", "Content-Type", "application/json")
		if st != 403 || body != corsBlocked || hdr.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("POST %s from evil.example: %d %q ACAO %q, want 403 %q", p, st, body, hdr.Get("Access-Control-Allow-Origin"), corsBlocked)
		}
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		if st, _, body := s.req(t, m, artPath, "", strings.NewReader("x"), "Origin", "null"); st != 403 || body != corsBlocked {
			t.Errorf("%s from Origin null: %d %q, want 403", m, st, body)
		}
	}
	// Safe methods are not blocked and get no CORS headers.
	st, hdr, _ := s.req(t, http.MethodGet, artPath, "", nil, "Origin", "https://evil.example")
	if st != 404 || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from evil.example: %d ACAO %q, want 404 without CORS headers", st, hdr.Get("Access-Control-Allow-Origin"))
	}
	// No Origin (curl, the Python client): nothing to check.
	if st, _, _ := s.req(t, http.MethodPut, artPath, "", strings.NewReader("x")); st != 200 {
		t.Errorf("PUT without Origin: %d, want 200", st)
	}
	for _, origin := range []string{"http://localhost:3000", "http://127.0.0.1", "http://[::1]:5000", "https://ui.example.com", "https://app.test"} {
		st, hdr, body := s.req(t, http.MethodPut, artPath, "", strings.NewReader("x"), "Origin", origin)
		if st != 200 || hdr.Get("Access-Control-Allow-Origin") != origin || hdr.Get("Access-Control-Allow-Credentials") != "true" ||
			hdr.Get("Vary") != "Origin" {
			t.Errorf("PUT from %s: %d %q, CORS headers %v", origin, st, body, hdr)
		}
	}
	if st, _, _ := s.req(t, http.MethodPost, mpu, "", strings.NewReader("{}"), "Origin", "https://ui.example.com.evil", "Content-Type", "application/json"); st != 403 {
		t.Errorf("POST from a look-alike origin: %d, want 403", st)
	}
}

// TestPreflight: an allowed origin's preflight gets 204 and the CORS
// headers; a foreign one gets 400 without Access-Control-Allow-Origin.
func TestPreflight(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, withSecurity(config.Security{CORSAllowedOrigins: []string{"https://ui.example.com"}}))
	st, hdr, body := s.req(t, http.MethodOptions, artPath, "", nil, "Origin", "https://ui.example.com",
		"Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "content-type, x-request-id")
	if st != 204 || body != "" {
		t.Errorf("preflight: %d %q, want 204", st, body)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":      "https://ui.example.com",
		"Access-Control-Allow-Methods":     "GET, POST, PUT, DELETE, OPTIONS, PATCH",
		"Access-Control-Allow-Headers":     "content-type, x-request-id",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Max-Age":           "600",
		"Vary":                             "Origin",
	} {
		if got := hdr.Get(k); got != want {
			t.Errorf("preflight %s = %q, want %q", k, got, want)
		}
	}
	st, hdr, body = s.req(t, http.MethodOptions, artPath, "", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "PUT")
	if st != 400 || body != "Disallowed CORS origin" || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign preflight: %d %q ACAO %q", st, body, hdr.Get("Access-Control-Allow-Origin"))
	}
	st, _, body = s.req(t, http.MethodOptions, artPath, "", nil, "Origin", "https://ui.example.com", "Access-Control-Request-Method", "TRACE")
	if st != 400 || body != "Disallowed CORS method" {
		t.Errorf("preflight for TRACE: %d %q", st, body)
	}
	// A wildcard allows every origin, as upstream's "*".
	w := startServer(t, nil, withSecurity(config.Security{CORSAllowedOrigins: []string{"*"}}))
	st, hdr, _ = w.req(t, http.MethodPut, artPath, "", strings.NewReader("x"), "Origin", "https://anything.example")
	if st != 200 || hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("PUT with origins *: %d ACAO %q, want 200 *", st, hdr.Get("Access-Control-Allow-Origin"))
	}
}

// TestXFrameOptions: SAMEORIGIN by default (via config), DENY, NONE drops it.
func TestXFrameOptions(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{"SAMEORIGIN": "SAMEORIGIN", "DENY": "DENY", "": ""} {
		s := startServer(t, nil, withSecurity(config.Security{XFrameOptions: v}))
		_, hdr, _ := s.req(t, http.MethodGet, "/health", "", nil)
		if got := hdr.Get("X-Frame-Options"); got != want {
			t.Errorf("X-Frame-Options %q: got %q", v, got)
		}
		if got := hdr.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("X-Content-Type-Options: %q", got)
		}
	}
}

// rawExchange writes head (and body) on a fresh connection and reads the
// answer; it reports how long the answer took.
func rawExchange(t *testing.T, addr, head string, body []byte, timeout time.Duration) (*http.Response, string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within %s: %v", timeout, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(data), time.Since(start)
}

// TestStalledUploadAborted: an upload that stops sending is answered 400
// after the stall timeout, and the local store leaves no temp file.
func TestStalledUploadAborted(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, func(o *proxy.Options) { o.Config.BodyStallTimeout = 300 * time.Millisecond })
	head := fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000000\r\n\r\n", artPath, s.addr)
	// More than fasthttp's 8 KiB prefetch, so the store has a temp file open.
	resp, body, took := rawExchange(t, s.addr, head, make([]byte, 100<<10), 10*time.Second)
	if resp.StatusCode != 400 || !strings.Contains(body, "stalled") {
		t.Errorf("stalled upload: %d %s, want 400 naming the stall", resp.StatusCode, body)
	}
	if took > 5*time.Second {
		t.Errorf("the stalled upload was answered after %s", took)
	}
	if left := uploadTempFiles(s.dir); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "sec", "x.txt")); !os.IsNotExist(err) {
		t.Errorf("the stalled upload was committed (%v)", err)
	}
	// A slow but steady upload is not a stalled one.
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 8; i++ {
			time.Sleep(100 * time.Millisecond)
			_, _ = pw.Write([]byte("0123456789"))
		}
		pw.Close()
	}()
	r, _ := http.NewRequest(http.MethodPut, "http://"+s.addr+artPath, pr)
	r.ContentLength = 80
	resp2, err := s.client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 200 {
		t.Errorf("slow steady upload: %d, want 200", resp2.StatusCode)
	}
}

// uploadTempFiles lists the local store's upload temp files under dir.
func uploadTempFiles(dir string) []string {
	var left []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".ferry-upload-") {
			left = append(left, p)
		}
		return nil
	})
	return left
}

// TestTrickledUploadAborted: an upload that keeps sending, but below the
// minimum rate, is answered 400 naming the rate once a stall timeout of
// waiting has passed (two at most), nothing is committed and no temp
// file is left; a body at three times the minimum goes through, judged
// over several windows.
func TestTrickledUploadAborted(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, func(o *proxy.Options) {
		// 2 s, not less: under a loaded suite a goroutine descheduled past
		// its read deadline reads a timeout although data is waiting, and
		// the steady body below would be called stalled.
		o.Config.BodyStallTimeout = 2 * time.Second
		o.Config.BodyMinRate = 1000
	})
	// Each body starts with more than fasthttp reads before it calls the
	// handler, so the rest arrives while the store is writing.
	const burst = 64 << 10
	// send writes on a raw connection and reads the answer there, so an
	// early answer is read rather than lost to a failed write.
	// The body after the burst goes at rate bytes/s for total bytes, paced
	// by the clock: a writer that slept late catches up, so a descheduled
	// test goroutine does not make a steady body look slow.
	send := func(path string, rate, total int) (int, string) {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", path, s.addr, burst+total)
		go func() {
			if _, err := conn.Write(make([]byte, burst)); err != nil {
				return
			}
			start := time.Now()
			for sent := 0; sent < total; {
				time.Sleep(50 * time.Millisecond)
				due := min(total, int(float64(rate)*time.Since(start).Seconds()))
				if due > sent {
					if _, err := conn.Write(bytes.Repeat([]byte("x"), due-sent)); err != nil {
						return
					}
					sent = due
				}
			}
		}()
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// 200 bytes/s (every 50 ms), under the 1000 bytes/s minimum, though no
	// gap comes near the stall timeout.
	start := time.Now()
	code, body := send("/api/2.0/mlflow-artifacts/artifacts/sec/trickled.bin", 200, 2000)
	if code != 400 || !strings.Contains(body, "too slowly") || !strings.Contains(body, "BAD_REQUEST") {
		t.Errorf("trickled upload: %d %s; want 400 BAD_REQUEST naming the rate", code, body)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("the trickled upload was answered after %s; want within two 2s windows of waiting", took)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "sec", "trickled.bin")); !os.IsNotExist(err) {
		t.Errorf("the trickled upload was committed (%v)", err)
	}
	if left := uploadTempFiles(s.dir); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
	// 5000 bytes/s for 5 s, so windows after the burst's are judged too.
	// (A suite run once saw a 3000 bytes/s sender, paced by sleeps alone,
	// deliver 2100 bytes in a 2 s window.)
	if code, body := send("/api/2.0/mlflow-artifacts/artifacts/sec/steady.bin", 5000, 25000); code != 200 {
		t.Errorf("upload at five times the minimum rate: %d %s; want 200", code, body)
	}
}

// TestMalformedChunkedBody: a chunk size that is not hex is the client's
// mistake: 400, on an upload and on a JSON route.
func TestMalformedChunkedBody(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	for _, target := range []string{artPath, "/api/2.0/mlflow-artifacts/mpu/create/sec/big.bin"} {
		method := "PUT"
		if strings.Contains(target, "/mpu/") {
			method = "POST"
		}
		head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", method, target, s.addr)
		resp, body, _ := rawExchange(t, s.addr, head, []byte("zz\r\nhello\r\n0\r\n\r\n"), 10*time.Second)
		if resp.StatusCode != 400 {
			t.Errorf("%s %s with chunk size zz: %d %s, want 400", method, target, resp.StatusCode, body)
		}
	}
}

// TestSlowHeadersCut: a client that sends its headers too slowly
// (slowloris) has its connection closed after the header timeout.
func TestSlowHeadersCut(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, func(o *proxy.Options) { o.Config.ReadHeaderTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, _ = io.WriteString(conn, "GET /health HTTP/1.1\r\n")
	var werr error
	for i := 0; i < 50 && werr == nil; i++ {
		time.Sleep(50 * time.Millisecond)
		_, werr = io.WriteString(conn, "X-Slow: 1\r\n")
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, rerr := conn.Read(buf)
	if rerr == nil && !strings.Contains(string(buf[:n]), "408") {
		t.Fatalf("slow headers got %q, want the connection closed (or a 408)", buf[:n])
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("slow headers were cut after %s", took)
	}
}

// TestJSONBudget: large JSON bodies share one memory budget; a request
// that finds no room within the queue wait gets 503, small bodies are
// never held up, and the room comes back when a request ends.
func TestJSONBudget(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, func(o *proxy.Options) {
		o.Config.JSONMemoryLimit = 64 << 20
		o.JSONQueueWait = 300 * time.Millisecond
	})
	const mpu = "/api/2.0/mlflow-artifacts/mpu/create/sec/big.bin"
	// A holds the whole budget: it announces 32 MiB (counted twice) and
	// sends only the start.
	hog, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(hog, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"path\":\"", mpu, s.addr, 32<<20)
	_, _ = hog.Write(make([]byte, 1<<20))
	time.Sleep(300 * time.Millisecond)

	big := `{"path":"` + strings.Repeat("a", 100<<10) + `"}`
	start := time.Now()
	st, _, body := s.req(t, http.MethodPost, mpu, "", strings.NewReader(big), "Content-Type", "application/json")
	if st != 503 || !strings.Contains(body, "TEMPORARILY_UNAVAILABLE") {
		t.Errorf("a large body while the budget is taken: %d %s, want 503 TEMPORARILY_UNAVAILABLE", st, body)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("refused after %s, before the queue wait", waited)
	}
	if st, _, body := s.req(t, http.MethodPost, mpu, "", strings.NewReader(`{"path":"x"}`), "Content-Type", "application/json"); st != 501 {
		t.Errorf("a small body while the budget is taken: %d %s, want 501 (local store has no multipart)", st, body)
	}
	hog.Close()
	eventually(t, 5*time.Second, func() bool {
		st, _, _ := s.req(t, http.MethodPost, mpu, "", strings.NewReader(big), "Content-Type", "application/json")
		return st == 501
	})
}

func eventually(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestChunkedJSONBody: a JSON body without a length is read in growing
// steps (charged to the budget as it grows) and decoded whole.
func TestChunkedJSONBody(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, func(o *proxy.Options) { o.Config.JSONMemoryLimit = 64 << 20 })
	const mpu = "/api/2.0/mlflow-artifacts/mpu/create/sec/big.bin"
	for _, size := range []int{10, 100 << 10, 5 << 20} {
		body := `{"path":"x.bin","pad":"` + strings.Repeat("a", size) + `"}`
		// io.MultiReader hides the length: the client sends it chunked.
		st, _, got := s.req(t, http.MethodPost, mpu, "", io.MultiReader(strings.NewReader(body)), "Content-Type", "application/json")
		if st != 501 {
			t.Errorf("chunked JSON of %d bytes: %d %s, want 501 (decoded, no multipart on local)", len(body), st, truncate(got))
		}
	}
	// 8 MiB over the limit: fasthttp alone discards up to 256 KiB left
	// unread after the answer and otherwise closes the connection with data
	// unread, which the kernel resets, and the client could see the reset
	// instead of the 400; the connection now lingers (wire.LingerAfterAnswer).
	big := io.MultiReader(strings.NewReader(`{"path":"`), strings.NewReader(strings.Repeat("a", 40<<20)), strings.NewReader(`"}`))
	if st, _, got := s.req(t, http.MethodPost, mpu, "", big, "Content-Type", "application/json"); st != 400 || !strings.Contains(got, "too large") {
		t.Errorf("chunked JSON over 32 MiB: %d %s, want 400 too large", st, truncate(got))
	}
}
