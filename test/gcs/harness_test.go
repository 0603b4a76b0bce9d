// Package gcse2e runs the ferry binary against GCS: fake-gcs-server, alone or
// behind test/backends/gcsxml (signed URLs, XML multipart, OAuth), and drives it over HTTP the
// way the MLflow client does.
package gcse2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// ferryBin is the binary under test: $FERRY_BIN, or built once.
var ferryBin string

func TestMain(m *testing.M) { ferrytest.Main(m, &ferryBin) }

type logBuffer = ferrytest.LogBuffer

// ferry is one running `ferry server`.
type ferry struct {
	Base string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	logs *logBuffer
	done chan struct{}
}

// startFerry runs `ferry server` with --artifacts-destination dest and the
// given environment (on top of a clean one), and stops it at cleanup.
func startFerry(t testing.TB, dest string, env []string, args ...string) *ferry {
	t.Helper()
	port := freePort(t)
	f := &ferry{Base: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &logBuffer{}, done: make(chan struct{})}
	full := append([]string{"server", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--artifacts-destination", dest, "--backend-store-uri", "sqlite:///" + filepath.Join(t.TempDir(), "mlflow.db")}, args...)
	f.cmd = exec.Command(ferryBin, full...)
	f.cmd.Dir = t.TempDir()
	f.cmd.Env = append(cleanEnv(), env...)
	f.cmd.Stdout, f.cmd.Stderr = f.logs, f.logs
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.cmd.Wait(); close(f.done) }()
	t.Cleanup(func() {
		_ = f.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-f.done:
		case <-time.After(20 * time.Second):
			_ = f.cmd.Process.Kill()
			<-f.done
		}
		if t.Failed() {
			t.Logf("ferry logs (tail):\n%s", tail(f.logs.String(), 8<<10))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-f.done:
			t.Fatalf("ferry exited at start:\n%s", f.logs.String())
		default:
		}
		if resp, err := http.Get(f.Base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return f
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry not healthy after 30s:\n%s", f.logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// PID is the server's process id.
func (f *ferry) PID() int { return f.cmd.Process.Pid }

// url is an mlflow-artifacts URL under /api/2.0.
func (f *ferry) url(route, path string) string {
	return f.Base + "/api/2.0/mlflow-artifacts/" + route + "/" + path
}

// metric sums the samples of a Prometheus metric whose labels contain
// every one of want (e.g. `op="put"`).
func (f *ferry) metric(t testing.TB, name string, want ...string) float64 {
	t.Helper()
	resp, err := http.Get(f.Base + "/metrics")
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
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MLFLOW_") || strings.HasPrefix(k, "FERRY_") || strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "GOOGLE_") || k == "STORAGE_EMULATOR_HOST" || k == "GCE_METADATA_HOST" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freePort(t testing.TB) int { t.Helper(); return ferrytest.FreePort(t) }

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// do sends a request and returns status, body.
func do(t testing.TB, method, url string, body io.Reader, header map[string]string) (int, []byte, http.Header) {
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

// postJSON posts v as JSON and decodes the answer into out (when 200).
func postJSON(t testing.TB, url string, v, out any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(v)
	code, body, _ := do(t, http.MethodPost, url, bytes.NewReader(b), map[string]string{"Content-Type": "application/json"})
	if code == 200 && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
	}
	return code, body
}
