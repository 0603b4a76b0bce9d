package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	invalidHostText = "Invalid Host header - possible DNS rebinding attack detected"
	corsBlockedText = "Cross-origin request blocked"
)

// withHost is do with the Host header replaced.
func withHost(t testing.TB, method, url, host string, body []byte, hdr ...string) result {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, url, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// TestDNSRebinding: by default a foreign Host header reads, writes and
// deletes nothing (upstream 3.5+'s 403), while localhost, the bound
// address and private addresses work, and health checks and Prometheus
// scrapes are exempt.
func TestDNSRebinding(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	port := strconv.Itoa(f.Port)
	obj := f.Art("/api", "/artifacts/dns/secret.txt")
	mustPut(t, obj, []byte("secret"))

	for _, host := range []string{"evil.example", "evil.example:" + port, "10.evil.example:" + port} {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			var body []byte
			if m == http.MethodPut {
				body = []byte("overwritten")
			}
			r := withHost(t, m, obj, host, body)
			expectBody(t, m+" with Host "+host, r, 403, "text/plain", invalidHostText)
		}
		r := withHost(t, http.MethodPost, f.URL("/api/2.0/mlflow/experiments/create"), host, []byte(`{"name":"x"}`), "Content-Type", jsonCT)
		expectBody(t, "experiments/create with Host "+host, r, 403, "text/plain", invalidHostText)
	}
	expectBody(t, "the object after the refused requests", get(t, obj), 200, "", "secret")

	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "localhost", "192.168.0.7:" + port} {
		expectBody(t, "GET with Host "+host, withHost(t, http.MethodGet, obj, host, nil), 200, "", "secret")
		r := withHost(t, http.MethodPut, f.Art("/api", "/artifacts/dns/ok.txt"), host, []byte("ok"))
		expectBody(t, "PUT with Host "+host, r, 200, "", emptyJSON)
	}
	for _, p := range []string{"/health", "/version"} {
		if r := withHost(t, http.MethodGet, f.URL(p), "ferry.internal:5000", nil); r.Status != 200 {
			t.Errorf("GET %s with Host ferry.internal: %s, want 200", p, r)
		}
	}
	if r := withHost(t, http.MethodGet, "http://"+f.Addr()+"/metrics", "ferry.internal:5000", nil); r.Status != 200 {
		t.Errorf("GET /metrics with Host ferry.internal: %d, want 200", r.Status)
	}
}

// TestAllowedHostsFlagAndEnv: a deployment behind a DNS name lists it;
// the list replaces the defaults, and "*" or disabling turns the check off.
func TestAllowedHostsFlagAndEnv(t *testing.T) {
	t.Parallel()
	f := startFerryEnv(t, []string{"MLFLOW_SERVER_ALLOWED_HOSTS=mlflow.example.com,*.mlflow.internal"})
	obj := f.Art("/api", "/artifacts/h/x.txt")
	for host, want := range map[string]int{"mlflow.example.com": 200, "mlflow.example.com:443": 200,
		"a.mlflow.internal:5000": 200, "127.0.0.1:" + strconv.Itoa(f.Port): 403, "evil.example": 403} {
		if r := withHost(t, http.MethodPut, obj, host, []byte("x")); r.Status != want {
			t.Errorf("env list: PUT with Host %s: %s, want %d", host, r, want)
		}
	}
	g := startFerry(t, "--allowed-hosts", "*")
	if r := withHost(t, http.MethodPut, g.Art("/api", "/artifacts/h/x.txt"), "evil.example", []byte("x")); r.Status != 200 {
		t.Errorf("--allowed-hosts '*': %s, want 200", r)
	}
	h := startFerryEnv(t, []string{"MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE=true"})
	if r := withHost(t, http.MethodPut, h.Art("/api", "/artifacts/h/x.txt"), "evil.example", []byte("x"), "Origin", "https://evil.example"); r.Status != 200 {
		t.Errorf("security middleware disabled: %s, want 200", r)
	}
}

// TestCrossOrigin: a state-changing request from a foreign page is
// refused; localhost and listed origins pass with CORS headers and get
// preflight answers; requests without Origin (the Python client) pass.
func TestCrossOrigin(t *testing.T) {
	t.Parallel()
	f := startFerry(t, "--cors-allowed-origins", "https://ui.example.com,https://*.corp.example", "--x-frame-options", "DENY")
	create := f.URL("/api/2.0/mlflow/experiments/create")
	r := do(t, http.MethodPost, create, strings.NewReader(`{"name":"from-evil"}`), "Content-Type", jsonCT, "Origin", "https://evil.example")
	expectBody(t, "cross-origin POST", r, 403, "text/plain", corsBlockedText)
	r = do(t, http.MethodPut, f.Art("/ajax-api", "/artifacts/o/x.txt"), strings.NewReader("x"), "Origin", "https://evil.example")
	expectBody(t, "cross-origin PUT", r, 403, "text/plain", corsBlockedText)
	r = do(t, http.MethodDelete, f.Art("/api", "/artifacts/o"), nil, "Origin", "https://ui.example.com.evil")
	expectBody(t, "cross-origin DELETE from a look-alike", r, 403, "text/plain", corsBlockedText)

	for i, origin := range []string{"https://ui.example.com", "https://a.corp.example", "http://localhost:3000"} {
		r := do(t, http.MethodPost, create, strings.NewReader(fmt.Sprintf(`{"name":"allowed-%d"}`, i)), "Content-Type", jsonCT, "Origin", origin)
		if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != origin ||
			r.Header.Get("Access-Control-Allow-Credentials") != "true" || r.Header.Get("Vary") != "Origin" {
			t.Errorf("POST from %s: %s, headers %v; want 200 with CORS headers", origin, r, r.Header)
		}
		if r.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("X-Frame-Options %q, want DENY", r.Header.Get("X-Frame-Options"))
		}
	}
	r = do(t, http.MethodPost, create, strings.NewReader(`{"name":"no-origin"}`), "Content-Type", jsonCT)
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("POST without Origin: %s, ACAO %q", r, r.Header.Get("Access-Control-Allow-Origin"))
	}
	// A foreign page may read (the browser hides the answer: no CORS headers).
	r = do(t, http.MethodGet, f.URL("/api/2.0/mlflow/experiments/search?max_results=1"), nil, "Origin", "https://evil.example")
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from a foreign origin: %s, ACAO %q; want 200 without CORS headers", r, r.Header.Get("Access-Control-Allow-Origin"))
	}

	r = do(t, http.MethodOptions, f.Art("/api", "/artifacts/o/x.txt"), nil, "Origin", "https://ui.example.com",
		"Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "content-type")
	if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://ui.example.com" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "PUT") || r.Header.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Errorf("preflight from an allowed origin: %s, headers %v", r, r.Header)
	}
	r = do(t, http.MethodOptions, f.Art("/api", "/artifacts/o/x.txt"), nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "PUT")
	if r.Status != 400 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from a foreign origin: %s, ACAO %q", r, r.Header.Get("Access-Control-Allow-Origin"))
	}
	// The refused create made nothing.
	r = do(t, http.MethodGet, f.URL("/api/2.0/mlflow/experiments/get-by-name?experiment_name=from-evil"), nil)
	if r.Status != 404 {
		t.Errorf("the experiment a foreign page tried to create: %s, want 404", r)
	}
}

// TestSlowHeadersAndIdleConnections: a client that trickles its headers is
// cut off after --read-header-timeout, an idle keep-alive connection after
// --idle-timeout.
func TestSlowHeadersAndIdleConnections(t *testing.T) {
	t.Parallel()
	f := startFerry(t, "--read-header-timeout", "1s", "--idle-timeout", "1s")
	conn, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, _ = io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: "+f.Addr()+"\r\n")
	go func() {
		for i := 0; i < 100; i++ {
			if _, err := io.WriteString(conn, "X-Slow: 1\r\n"); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(8 * time.Second))
	got, _ := io.ReadAll(conn)
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("slow headers: connection open for %s, want it closed about 1s after the first byte", took)
	}
	if bytes.Contains(got, []byte("200 OK")) {
		t.Errorf("slow headers were served: %q", got)
	}

	idle, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_, _ = io.WriteString(idle, "GET /health HTTP/1.1\r\nHost: "+f.Addr()+"\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start = time.Now()
	_ = idle.SetReadDeadline(time.Now().Add(8 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: read gave %v, want EOF (closed by the server)", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("idle connection closed after %s, want about 1s", took)
	}
}

// TestStalledUpload: an upload that stops sending is aborted after
// --body-stall-timeout; nothing is committed and no temp file is left.
func TestStalledUpload(t *testing.T) {
	t.Parallel()
	f := startFerry(t, "--body-stall-timeout", "1s")
	conn, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s/api/2.0/mlflow-artifacts/artifacts/stall/model.bin HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", f.Prefix, f.Addr(), 1<<30)
	_, _ = conn.Write(make([]byte, 4<<20))
	eventually(t, 5*time.Second, "a temp file while the upload runs", func() (bool, string) {
		n := len(tempFiles(t, f.Dest))
		return n == 1, fmt.Sprintf("%d temp files", n)
	})
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the stalled upload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "stalled") {
		t.Errorf("stalled upload: %d %s, want 400 naming the stall", resp.StatusCode, body)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("answered %s after the data stopped", took)
	}
	if left := tempFiles(t, f.Dest); len(left) > 0 {
		t.Errorf("temp files left after the stalled upload: %v", left)
	}
	if _, err := os.Stat(filepath.Join(f.Dest, "stall", "model.bin")); !os.IsNotExist(err) {
		t.Errorf("the stalled upload was committed (stat: %v)", err)
	}
	if m := f.Metrics(t); m.Sum("ferry_store_operations_total", "op=put", "outcome=client_error") != 1 {
		t.Errorf("the stalled put is not counted as a client error")
	}
}

// TestJSONBodiesShareAMemoryCap: ten concurrent 31 MiB JSON bodies (that
// took RSS to 1.1 GiB before the cap) are served within the default cap;
// the server's peak RSS stays bounded.
func TestJSONBodiesShareAMemoryCap(t *testing.T) {
	if testing.Short() {
		t.Skip("310 MiB of JSON skipped with -short")
	}
	f := startFerry(t)
	pad := bytes.Repeat([]byte("a"), 31<<20)
	body := append(append([]byte(`{"path":"x.bin","upload_id":"`), pad...), `","parts":[]}`...)
	var wg sync.WaitGroup
	results := make([]result, 10)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = do(t, http.MethodPost, f.Art("/api", "/mpu/complete/j.bin"), bytes.NewReader(body), "Content-Type", jsonCT)
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		// The whole body was read and decoded; the local store has no
		// multipart uploads, so the answer is upstream's 501.
		if r.Status != 501 {
			t.Errorf("request %d: %s, want 501 after decoding", i, r)
		}
	}
	rss, err := peakRSS(f.PID())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server peak RSS after 10 concurrent 31 MiB JSON bodies: %.0f MiB", float64(rss)/(1<<20))
	if rss > 400<<20 {
		t.Errorf("peak RSS %d MiB, want under 400 MiB (the default cap is 128 MiB of bodies)", rss>>20)
	}
}

// TestClientMistakesAre4xx: a malformed chunk size, an artifact path that
// is not UTF-8 and a range with a sign are the client's mistakes.
func TestClientMistakesAre4xx(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	for _, target := range []string{"/api/2.0/mlflow-artifacts/artifacts/c/x.bin", "/api/2.0/mlflow-artifacts/mpu/create/c/y.bin"} {
		method := http.MethodPut
		if strings.Contains(target, "/mpu/") {
			method = http.MethodPost
		}
		conn, err := net.Dial("tcp", f.Addr())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", method, f.Prefix+target, f.Addr())
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s %s with chunk size zz: %v", method, target, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s %s with chunk size zz: %d %s, want 400", method, target, resp.StatusCode, b)
		}
	}
	if left := tempFiles(t, f.Dest); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}

	for _, p := range []string{"/artifacts/c/a%FF.txt", "/artifacts/c/%C3/b.txt", "/artifacts/c/a%25FF.txt"} {
		expectBody(t, "PUT "+p, put(t, f.Art("/api", p), []byte("x")), 400, jsonCT, invalidPathJSON)
		expectBody(t, "GET "+p, get(t, f.Art("/api", p)), 400, jsonCT, invalidPathJSON)
	}
	r := rawRequest(t, f.Addr(), http.MethodPut, f.Prefix+"/api/2.0/mlflow-artifacts/artifacts/c/raw\xffname.txt", []byte("x"))
	expectBody(t, "PUT with a raw 0xff byte in the path", r, 400, jsonCT, invalidPathJSON)
	expectBody(t, "list ?path=%FF", get(t, f.Art("/api", "/artifacts?path=c%2F%FF")), 400, jsonCT, invalidPathJSON)
	if entries, _ := os.ReadDir(filepath.Join(f.Dest, "c")); len(entries) > 0 {
		t.Errorf("non-UTF-8 uploads were stored: %v", entries)
	}

	obj := f.Art("/api", "/artifacts/c/range.txt")
	mustPut(t, obj, []byte("0123456789"))
	for _, h := range []string{"bytes=+1-2", "bytes=1-+2", "bytes=-+2"} {
		r := get(t, obj, "Range", h)
		if r.Status != 200 || string(r.Body) != "0123456789" {
			t.Errorf("Range %q: %s, want 200 with the whole object (not a valid range)", h, r)
		}
	}
	if r := get(t, obj, "Range", "bytes=1-2"); r.Status != 206 || string(r.Body) != "12" {
		t.Errorf("Range bytes=1-2: %s", r)
	}
}
