package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireTool finds a backend binary. Missing, it fails the test when CI or
// FERRY_REQUIRE_BACKENDS is set (test/backends/install.sh installs it),
// and skips it otherwise.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" || os.Getenv("FERRY_REQUIRE_BACKENDS") != "" {
		t.Fatalf("%s is not installed (run test/backends/install.sh): %v", name, err)
	}
	t.Skipf("%s is not installed (run test/backends/install.sh); set FERRY_REQUIRE_BACKENDS=1 to make this a failure", name)
	return ""
}

// TestPrometheusScrapesFerry runs a real Prometheus scraping the ferry
// under test every second and waits until it reports the bytes of an
// upload in ferry_store_transferred_bytes_total{op="put"}.
func TestPrometheusScrapesFerry(t *testing.T) {
	t.Parallel()
	prom := requireTool(t, "prometheus")
	f := startFerry(t)

	// A mixed workload on one keep-alive connection, so label values that
	// alias reused buffers would break the scrape.
	const size = 3<<20 + 12345
	u := f.Art("/api", "/artifacts/0/run/artifacts/weights.bin")
	mustPut(t, u, randomBytes(size))
	if r := get(t, u); r.Status != 200 || len(r.Body) != size {
		t.Fatalf("GET: %d, %d bytes", r.Status, len(r.Body))
	}
	do(t, http.MethodHead, u, nil)
	get(t, f.Art("/api", "/artifacts/0/run/artifacts/none.bin"))
	get(t, f.Art("/api", "/artifacts?path=0/run/artifacts"))

	dir := t.TempDir()
	promPort := freePort(t)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ferry
    scrape_interval: 1s
    scrape_timeout: 1s
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:%d"]
`, f.Port)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd := exec.Command(prom, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(promPort))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", tail(out.String(), 8<<10))
		}
	})

	promURL := "http://127.0.0.1:" + strconv.Itoa(promPort)
	query := func(q string) ([]promSeries, error) {
		resp, err := client.Get(promURL + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var body struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []promSeries `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return nil, err
		}
		if body.Status != "success" {
			return nil, fmt.Errorf("query %s: %s", q, body.Error)
		}
		return body.Data.Result, nil
	}
	eventually(t, 60*time.Second, "prometheus reports the uploaded bytes", func() (bool, string) {
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v\n%s", err, tail(out.String(), 4<<10))
		default:
		}
		res, err := query(`ferry_store_transferred_bytes_total{op="put"}`)
		if err != nil {
			return false, err.Error()
		}
		if len(res) != 1 {
			return false, fmt.Sprintf("%d series", len(res))
		}
		return res[0].Value[1] == strconv.Itoa(size), fmt.Sprintf("value %v", res[0].Value)
	})
	res, err := query(`up{job="ferry"}`)
	if err != nil || len(res) != 1 || res[0].Value[1] != "1" {
		t.Errorf("up{job=\"ferry\"}: %v %v, want one series with value 1", res, err)
	}
	res, err = query(`ferry_store_transferred_bytes_total{op="get"}`)
	if err != nil || len(res) != 1 || res[0].Value[1] != strconv.Itoa(size) {
		t.Errorf("ferry_store_transferred_bytes_total{op=\"get\"}: %v %v, want %d", res, err, size)
	}
}

// promSeries is one instant-vector element of a Prometheus query answer.
type promSeries struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// TestPromtoolCheckMetrics runs `promtool check metrics` on /metrics after a
// workload that touches every route, status class and store outcome.
func TestPromtoolCheckMetrics(t *testing.T) {
	t.Parallel()
	promtool := requireTool(t, "promtool")
	f := startFerry(t)
	u := f.Art("/api", "/artifacts/p/a.txt")
	mustPut(t, u, []byte("hello"))
	get(t, u)
	get(t, u, "Range", "bytes=1-2")
	get(t, u, "Range", "bytes=100-")
	do(t, http.MethodHead, u, nil)
	get(t, f.Art("/ajax-api", "/artifacts?path=p"))
	get(t, f.Art("/api", "/artifacts/p/missing"))
	get(t, f.Art("/api", "/artifacts/..%2Fx"))
	do(t, http.MethodPost, f.Art("/api", "/mpu/create/p"), strings.NewReader(`{"path":"a"}`), "Content-Type", jsonCT)
	get(t, f.Art("/api", "/presigned/p/a.txt"))
	get(t, f.URL("/no/such/route"))
	get(t, f.URL("/api/2.0/mlflow/experiments/search"))
	do(t, http.MethodDelete, u, nil)

	r := get(t, "http://"+f.Addr()+"/metrics")
	if r.Status != 200 {
		t.Fatalf("/metrics: %s", r)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(r.Body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	m, err := parseMetrics(string(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ferry_build_info", "ferry_http_requests_total", "ferry_http_request_duration_seconds_count",
		"ferry_store_operations_total", "ferry_store_transferred_bytes_total", "ferry_store_in_flight_operations",
		"ferry_http_requests_in_flight", "go_goroutines", "process_resident_memory_bytes"} {
		found := false
		for _, s := range m {
			found = found || s.Name == name
		}
		if !found {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if got := m.Sum("ferry_store_operations_total", "op=get", "outcome=not_found"); got != 1 {
		t.Errorf("not_found gets: %v, want 1", got)
	}
	// The tracking call answers 400 or 501 as the API grows; count only the
	// artifact route's refusal of the traversal.
	if got := m.Sum("ferry_http_requests_total", "code=400", "route=/api/2.0/mlflow-artifacts/artifacts/*"); got != 1 {
		t.Errorf("400 responses on the artifact route counted: %v, want 1", got)
	}
}
