package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/test/ferrytest"
)

// ferryBin is the absolute path of the binary under test.
var ferryBin string

// TestMain uses $FERRY_BIN when set, otherwise builds the binary once.
func TestMain(m *testing.M) { ferrytest.Main(m, &ferryBin) }

// syncBuffer is a goroutine-safe buffer for a child's output.
type syncBuffer = ferrytest.LogBuffer

// ferry is one running `ferry server` process under test, with its own
// directories:
//
//	Root/            the test's temp dir
//	Root/work/       the server's working directory
//	Root/artifacts/  --artifacts-destination
//	Root/sentinel.txt  a file next to the artifact root that must never leak
type ferry struct {
	Port            int
	Prefix          string
	Root            string
	Work            string
	Dest            string
	Sentinel        string
	SentinelContent string

	cmd     *exec.Cmd
	logs    *syncBuffer
	done    chan struct{}
	waitErr error
	stopped bool
}

// startFerry starts `ferry server` with the harness's defaults followed by
// args (later flags win), waits for <prefix>/health and registers a cleanup
// that stops it with SIGTERM and fails the test unless it exits with 0.
func startFerry(t testing.TB, args ...string) *ferry {
	t.Helper()
	return startFerryEnv(t, nil, args...)
}

// startFerryEnv is startFerry with extra environment variables (KEY=VALUE).
func startFerryEnv(t testing.TB, env []string, args ...string) *ferry {
	t.Helper()
	root := t.TempDir()
	f := &ferry{
		Root:            root,
		Work:            filepath.Join(root, "work"),
		Dest:            filepath.Join(root, "artifacts"),
		Sentinel:        filepath.Join(root, "sentinel.txt"),
		SentinelContent: "FERRY-E2E-SENTINEL-" + randomHex(16),
	}
	for i, a := range args {
		if a == "--static-prefix" && i+1 < len(args) {
			f.Prefix = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--static-prefix="); ok {
			f.Prefix = v
		}
	}
	for _, d := range []string{f.Work, f.Dest} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(f.Sentinel, []byte(f.SentinelContent), 0o644); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		f.Port = freePort(t)
		full := append([]string{"server", "--host", "127.0.0.1", "--port", strconv.Itoa(f.Port),
			"--artifacts-destination", f.Dest}, args...)
		f.logs = &syncBuffer{}
		f.done = make(chan struct{})
		f.cmd = exec.Command(ferryBin, full...)
		f.cmd.Dir = f.Work
		f.cmd.Env = append(cleanEnv(), env...)
		f.cmd.Stdout = f.logs
		f.cmd.Stderr = f.logs
		if err := f.cmd.Start(); err != nil {
			t.Fatalf("starting ferry: %v", err)
		}
		go func(f *ferry, done chan struct{}) {
			f.waitErr = f.cmd.Wait()
			close(done)
		}(f, f.done)
		err := f.waitHealthy(30 * time.Second)
		if err == nil {
			break
		}
		f.kill()
		if attempt < 3 && strings.Contains(f.logs.String(), "address already in use") {
			continue // another process took the port between probe and bind
		}
		t.Fatalf("ferry did not become healthy: %v\nlogs:\n%s", err, f.logs.String())
	}
	t.Cleanup(func() {
		if !f.stopped {
			if code := f.Stop(t); code != 0 {
				t.Errorf("ferry exited with code %d at cleanup, want 0", code)
			}
		}
		if t.Failed() {
			t.Logf("ferry logs (tail):\n%s", tail(f.logs.String(), 16<<10))
		}
	})
	return f
}

// cleanEnv is this process's environment without the variables that would
// change how ferry is configured.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MLFLOW_") || strings.HasPrefix(k, "_MLFLOW_") || strings.HasPrefix(k, "FERRY_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (f *ferry) exited() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

func (f *ferry) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 2 * time.Second}
	for {
		if f.exited() {
			return fmt.Errorf("ferry exited: %v", f.waitErr)
		}
		resp, err := c.Get(f.URL("/health"))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) == "OK" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no 200 OK from %s within %s (last error %v)", f.URL("/health"), timeout, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Signal sends sig to the server process.
func (f *ferry) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := f.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// code, or -1 (after killing it) when it did not exit in time.
func (f *ferry) Wait(timeout time.Duration) int {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-f.done:
	case <-timer.C:
		if !f.exited() {
			f.kill()
			return -1
		}
	}
	f.stopped = true
	if f.waitErr == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(f.waitErr, &ee) {
		return ee.ExitCode()
	}
	return -2
}

// Stop sends SIGTERM and waits for a clean exit, returning the exit code;
// a clean exit also logs "ferry stopped".
func (f *ferry) Stop(t testing.TB) int {
	t.Helper()
	if f.exited() {
		return f.Wait(0)
	}
	f.Signal(t, syscall.SIGTERM)
	code := f.Wait(30 * time.Second)
	if code == 0 && len(f.FindLogs(func(l logLine) bool { return l.Msg() == "ferry stopped" })) == 0 {
		t.Errorf("ferry exited 0 but never logged \"ferry stopped\"")
	}
	return code
}

func (f *ferry) kill() {
	if !f.exited() {
		_ = f.cmd.Process.Kill()
		<-f.done
	}
	f.stopped = true
}

// PID is the server's process id.
func (f *ferry) PID() int { return f.cmd.Process.Pid }

// Addr is host:port of the server.
func (f *ferry) Addr() string { return "127.0.0.1:" + strconv.Itoa(f.Port) }

// URL is an absolute URL for p under the static prefix.
func (f *ferry) URL(p string) string { return "http://" + f.Addr() + f.Prefix + p }

// Art is the URL of the mlflow-artifacts routes under api ("/api" or
// "/ajax-api") followed by p.
func (f *ferry) Art(api, p string) string { return f.URL(api + "/2.0/mlflow-artifacts" + p) }

// Logs is everything the server wrote so far.
func (f *ferry) Logs() string { return f.logs.String() }

// logLine is one JSON slog record.
type logLine map[string]any

// Msg is the record's message.
func (l logLine) Msg() string { s, _ := l["msg"].(string); return s }

// Str returns attribute k as a string ("" if absent or not a string).
func (l logLine) Str(k string) string { s, _ := l[k].(string); return s }

// FindLogs returns the JSON log records for which match is true.
func (f *ferry) FindLogs(match func(logLine) bool) []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(f.Logs()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

// --- HTTP -------------------------------------------------------------------

// client is for ordinary requests; bigClient has no overall timeout and is
// used for large streamed transfers (callers bound them with a context).
var (
	client = &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 64},
		Timeout:   60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	bigClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true, WriteBufferSize: 256 << 10, ReadBufferSize: 256 << 10}}
)

// result is a fully read HTTP response.
type result struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r result) String() string {
	return fmt.Sprintf("%d %s", r.Status, truncate(string(r.Body), 300))
}

// do sends one request; hdr is a list of alternating header names and
// values. body may be nil.
func do(t testing.TB, method, url string, body io.Reader, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return result{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// put uploads data with a Content-Length.
func put(t testing.TB, url string, data []byte, hdr ...string) result {
	t.Helper()
	return do(t, http.MethodPut, url, bytes.NewReader(data), hdr...)
}

// mustPut uploads data and fails unless the answer is 200 {}.
func mustPut(t testing.TB, url string, data []byte) {
	t.Helper()
	r := put(t, url, data)
	if r.Status != 200 || string(r.Body) != "{}" {
		t.Fatalf("PUT %s: %s, want 200 {}", url, r)
	}
}

// get downloads url.
func get(t testing.TB, url string, hdr ...string) result {
	t.Helper()
	return do(t, http.MethodGet, url, nil, hdr...)
}

// expectBody fails unless r has the status, the exact body and, when ct is
// not empty, exactly that Content-Type.
func expectBody(t testing.TB, what string, r result, status int, ct, body string) {
	t.Helper()
	if r.Status != status || string(r.Body) != body {
		t.Errorf("%s: got %d %q, want %d %q", what, r.Status, r.Body, status, body)
	}
	if ct != "" && r.Header.Get("Content-Type") != ct {
		t.Errorf("%s: Content-Type %q, want %q", what, r.Header.Get("Content-Type"), ct)
	}
}

// Exact JSON bodies the spec fixes.
const (
	jsonCT            = "application/json"
	emptyJSON         = `{}`
	invalidPathJSON   = `{"error_code":"INVALID_PARAMETER_VALUE","message":"Invalid path","sqlstate":"KAM00","error_class":"INVALID_PARAMETER_VALUE"}`
	mpuNotSupported   = `{"error_code":"NOT_IMPLEMENTED","message":"Multipart upload is not supported for the current artifact repository"}`
	presignNotSupport = `{"error_code":"NOT_IMPLEMENTED","message":"Multipart download is not supported for the current artifact repository"}`
)

// errBody decodes an MLflow error body.
type errBody struct {
	ErrorCode  string `json:"error_code"`
	Message    string `json:"message"`
	SQLState   string `json:"sqlstate"`
	ErrorClass string `json:"error_class"`
}

func decodeErr(t testing.TB, r result) errBody {
	t.Helper()
	var e errBody
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, truncate(string(r.Body), 300))
	}
	return e
}

// rawRequest writes a request byte for byte (target goes on the request
// line unchanged) on a new connection and reads the answer. extra is a list
// of complete header lines.
func rawRequest(t testing.TB, addr, method, target string, body []byte, extra ...string) result {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatalf("write: %v", err)
	}
	if body != nil {
		if _, err := conn.Write(body); err != nil {
			t.Fatalf("write body: %v", err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: reading response: %v", method, target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, target, err)
	}
	return result{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// --- metrics ----------------------------------------------------------------

// sample is one line of the Prometheus text exposition format.
type sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// metrics is a parsed /metrics page.
type metrics []sample

// parseMetrics parses the Prometheus text format (comments skipped).
func parseMetrics(text string) (metrics, error) {
	var out metrics
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n+1, line, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSample(line string) (sample, error) {
	s := sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, errors.New("no metric name")
	}
	s.Name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " ,")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.IndexByte(line, '=')
			if eq <= 0 || eq+1 >= len(line) || line[eq+1] != '"' {
				return s, errors.New("bad label")
			}
			name := line[:eq]
			line = line[eq+2:]
			var v strings.Builder
			closed := false
			for j := 0; j < len(line); j++ {
				c := line[j]
				if c == '\\' && j+1 < len(line) {
					j++
					switch line[j] {
					case 'n':
						v.WriteByte('\n')
					default:
						v.WriteByte(line[j])
					}
					continue
				}
				if c == '"' {
					line = line[j+1:]
					closed = true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return s, errors.New("unterminated label value")
			}
			s.Labels[name] = v.String()
		}
	}
	fields := strings.Fields(line)
	if len(fields) < 1 {
		return s, errors.New("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, err
	}
	s.Value = v
	return s, nil
}

// Sum adds the values of the samples named name whose labels match: each
// matcher is label=value, or label=!value for "not equal".
func (m metrics) Sum(name string, matchers ...string) float64 {
	total := 0.0
outer:
	for _, s := range m {
		if s.Name != name {
			continue
		}
		for _, mt := range matchers {
			k, v, _ := strings.Cut(mt, "=")
			if neg, ok := strings.CutPrefix(v, "!"); ok {
				if s.Labels[k] == neg {
					continue outer
				}
			} else if s.Labels[k] != v {
				continue outer
			}
		}
		total += s.Value
	}
	return total
}

// Metrics fetches and parses the server's /metrics (never prefixed).
func (f *ferry) Metrics(t testing.TB) metrics {
	t.Helper()
	r := get(t, "http://"+f.Addr()+"/metrics")
	if r.Status != 200 {
		t.Fatalf("GET /metrics: %s", r)
	}
	m, err := parseMetrics(string(r.Body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return m
}

// --- process ----------------------------------------------------------------

// peakRSS is the process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("odd VmHWM line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// --- small helpers -----------------------------------------------------------

func freePort(t testing.TB) int { t.Helper(); return ferrytest.FreePort(t) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// eventually polls cond every 20 ms until it returns true or timeout
// passes; then it fails the test with the last detail cond gave.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %s", what, timeout, detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tempFiles lists every file under dir whose name starts with the local
// store's temporary-upload prefix.
func tempFiles(t testing.TB, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".ferry-upload-") {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// apis are the two mounts of every mlflow-artifacts route.
var apis = []string{"/api", "/ajax-api"}
