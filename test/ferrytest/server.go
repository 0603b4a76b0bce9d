package ferrytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is one running `ferry server` started by StartServer.
type Server struct {
	// Base is http://127.0.0.1:PORT.
	Base string
	// Logs is everything the server wrote to stdout and stderr so far.
	Logs *LogBuffer
	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer runs bin as `ferry server --host 127.0.0.1 --port P args...`
// on a free port P, with env as its whole environment and a fresh
// t.TempDir() as working directory, and returns once /health answers 200.
// It fails t if the server exits or is not healthy within 60 s. At cleanup
// it sends SIGTERM, kills after 20 s, and logs the tail of the server's
// output when t failed. The child dies with the test process (Pdeathsig),
// so an aborted run leaves no server behind.
func StartServer(t testing.TB, bin string, env []string, args ...string) *Server {
	t.Helper()
	port := FreePort(t)
	s := &Server{Base: fmt.Sprintf("http://127.0.0.1:%d", port), Logs: &LogBuffer{}, done: make(chan struct{})}
	full := append([]string{"server", "--host", "127.0.0.1", "--port", strconv.Itoa(port)}, args...)
	s.cmd = exec.Command(bin, full...)
	s.cmd.Dir = t.TempDir()
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = s.Logs, s.Logs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("ferry logs (tail):\n%s", Tail(s.Logs.String(), 8<<10))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.done:
			t.Fatalf("ferry exited at start:\n%s", s.Logs.String())
		default:
		}
		if resp, err := http.Get(s.Base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry not healthy after 60s:\n%s", s.Logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// ArtifactsURL is the mlflow-artifacts URL of route ("artifacts",
// "mpu/create", ...) and path under /api/2.0.
func (s *Server) ArtifactsURL(route, path string) string {
	return s.Base + "/api/2.0/mlflow-artifacts/" + route + "/" + path
}

// Metric sums the samples of the Prometheus metric name on /metrics whose
// line contains every one of want (e.g. `op="put"`); 0 when none does.
func (s *Server) Metric(t testing.TB, name string, want ...string) float64 {
	t.Helper()
	resp, err := http.Get(s.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// CleanEnv returns this process's environment without the variables that
// would steer a child ferry or its SDKs away from what a test sets: a name
// in drop ending in "_" removes every variable starting with it, any other
// name removes exactly that variable.
func CleanEnv(drop ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !dropped(k, drop) {
			env = append(env, kv)
		}
	}
	return env
}

func dropped(key string, drop []string) bool {
	for _, d := range drop {
		if key == d || (strings.HasSuffix(d, "_") && strings.HasPrefix(key, d)) {
			return true
		}
	}
	return false
}

// Tail returns the last n bytes of s (all of s when shorter), so that a
// failure message shows the end of a long log.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Do sends a request with the given headers and returns the status, the
// whole body and the headers; a transport or read error fails t. A
// *bytes.Reader body is sent with its length, as the MLflow client does,
// rather than chunked.
func Do(t testing.TB, method, url string, body io.Reader, header map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := body.(*bytes.Reader); ok {
		req.ContentLength = int64(r.Len())
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return resp.StatusCode, b, resp.Header
}

// PostJSON posts v as JSON to url and, when the answer is 200 and out is
// not nil, decodes it into out (a decoding error fails t). It returns the
// status and the body.
func PostJSON(t testing.TB, url string, v, out any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(v)
	code, body, _ := Do(t, http.MethodPost, url, bytes.NewReader(b), map[string]string{"Content-Type": "application/json"})
	if code == 200 && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
	}
	return code, body
}

// WaitStaleUploadSweep waits up to 30 s for the start-up sweep of stale
// uploads to log its result and checks it removed exactly removed
// leftovers.
func (s *Server) WaitStaleUploadSweep(t testing.TB, removed int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.Logs.String(), "stale uploads removed") {
		if time.Now().After(deadline) {
			t.Fatalf("no sweep logged within 30 s:\n%s", Tail(s.Logs.String(), 4<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if want := fmt.Sprintf(`"removed":%d`, removed); !strings.Contains(s.Logs.String(), want) {
		t.Errorf("sweep log does not say %s: %s", want, Tail(s.Logs.String(), 4<<10))
	}
}
