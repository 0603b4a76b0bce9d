// Package azuree2e runs the ferry binary against Azurite (started by
// test/backends/azuritesrv) with a wasbs:// destination and drives it
// over HTTP the way the MLflow client does: proxied transfers, presigned
// downloads and presigned multipart uploads straight to Azurite, and the
// faults (Azurite killed mid-upload, a wrong account key).
package azuree2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
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

// ferry is one running `ferry server`.
type ferry struct {
	Base string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	logs *ferrytest.LogBuffer
	done chan struct{}
}

// startFerry runs `ferry server` with --artifacts-destination dest and the
// given environment (on top of one without MLFLOW_, FERRY_ and AZURE_
// variables), and stops it at cleanup.
func startFerry(t testing.TB, dest string, env []string) *ferry {
	t.Helper()
	port := ferrytest.FreePort(t)
	f := &ferry{Base: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &ferrytest.LogBuffer{}, done: make(chan struct{})}
	f.cmd = exec.Command(ferryBin, "server", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--artifacts-destination", dest, "--backend-store-uri", "sqlite:///"+filepath.Join(t.TempDir(), "mlflow.db"))
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
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MLFLOW_") || strings.HasPrefix(k, "FERRY_") || strings.HasPrefix(k, "AZURE_") ||
			strings.HasPrefix(k, "IDENTITY_") || strings.HasPrefix(k, "MSI_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// do sends a request and returns status, body and headers.
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

type credential struct {
	URL        string            `json:"url"`
	PartNumber int               `json:"part_number"`
	Headers    map[string]string `json:"headers"`
}

type createResp struct {
	UploadID    string       `json:"upload_id"`
	Credentials []credential `json:"credentials"`
}

type part struct {
	PartNumber int    `json:"part_number"`
	ETag       string `json:"etag"`
	URL        string `json:"url"`
}

// putPart PUTs data to a credential's presigned URL with exactly its
// headers, as the MLflow client does, and returns the part for complete.
func putPart(t testing.TB, c credential, data []byte) (part, int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, c.URL, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return part{PartNumber: c.PartNumber, ETag: resp.Header.Get("ETag"), URL: c.URL}, resp.StatusCode, string(b)
}
