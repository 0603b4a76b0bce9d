package tracking

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/internal/testdb"
)

// concurrencyDuration is FERRY_TEST_CONCURRENCY_DURATION (a Go duration
// such as "5s", or seconds), 30 s by default.
func concurrencyDuration(t *testing.T) time.Duration {
	v := strings.TrimSpace(os.Getenv("FERRY_TEST_CONCURRENCY_DURATION"))
	if v == "" {
		return 30 * time.Second
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("FERRY_TEST_CONCURRENCY_DURATION=%q: want a duration (30s) or seconds", v)
	}
	return time.Duration(n) * time.Second
}

type loggedPoint struct {
	Value     float64
	Timestamp int64
	Step      int64
}

// TestHTTPConcurrentMetricLogging: 16 clients log metrics to one run over
// real HTTP (log-metric and log-batch, each on its own key and on a shared
// one) for FERRY_TEST_CONCURRENCY_DURATION against the API on SQLite.
// Every request must succeed, and get-history must return exactly the
// points that were logged.
func TestHTTPConcurrentMetricLogging(t *testing.T) {
	t.Parallel()
	const clients = 16
	dur := concurrencyDuration(t)
	b := testdb.SQLite(t)
	db, err := metadata.Open(context.Background(), b.URI, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	api := NewAPI(db, APIConfig{DefaultArtifactRoot: "mlflow-artifacts:/", ServeArtifacts: true, Log: quiet})
	app := domaintest.NewClient(t, api.Handlers()).App
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	base := "http://" + ln.Addr().String() + "/api/2.0/mlflow"
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}

	call := func(method, path string, body any) (int, []byte, error) {
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			return 0, nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		return resp.StatusCode, out, err
	}
	st, out, err := call(http.MethodPost, "/runs/create", map[string]any{"experiment_id": "0"})
	if err != nil || st != 200 {
		t.Fatalf("create run: %d %s %v", st, out, err)
	}
	var created struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := json.Unmarshal(out, &created); err != nil {
		t.Fatal(err)
	}
	runID := created.Run.Info.RunID

	var (
		errCount atomic.Int64
		firstErr atomic.Value
		requests atomic.Int64
		mu       sync.Mutex
		logged   = map[string][]loggedPoint{}
		wg       sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		if errCount.Add(1) == 1 {
			firstErr.Store(fmt.Sprintf(format, args...))
		}
	}
	deadline := time.Now().Add(dur)
	for ci := 0; ci < clients; ci++ {
		wg.Add(1)
		go func(ci int) {
			defer wg.Done()
			own := fmt.Sprintf("client_%02d", ci)
			mine := map[string][]loggedPoint{}
			seq := int64(0)
			next := func(key string) map[string]any {
				seq++
				// Unique per (client, seq) on the shared key too.
				p := loggedPoint{Value: float64(ci)*1e6 + float64(seq) + 0.25, Timestamp: 1700000000000 + seq, Step: int64(ci)*1_000_000 + seq}
				mine[key] = append(mine[key], p)
				return map[string]any{"key": key, "value": p.Value, "timestamp": p.Timestamp, "step": p.Step}
			}
			for i := 0; time.Now().Before(deadline); i++ {
				var st int
				var out []byte
				var err error
				if i%2 == 0 {
					key := own
					if i%4 == 0 {
						key = "shared"
					}
					m := next(key)
					m["run_id"] = runID
					st, out, err = call(http.MethodPost, "/runs/log-metric", m)
				} else {
					batch := make([]map[string]any, 0, 20)
					for j := 0; j < 10; j++ {
						batch = append(batch, next(own), next("shared"))
					}
					st, out, err = call(http.MethodPost, "/runs/log-batch", map[string]any{"run_id": runID, "metrics": batch})
				}
				requests.Add(1)
				if err != nil || st != 200 {
					fail("client %d request %d: %d %s %v", ci, i, st, out, err)
					return
				}
			}
			mu.Lock()
			for k, v := range mine {
				logged[k] = append(logged[k], v...)
			}
			mu.Unlock()
		}(ci)
	}
	wg.Wait()
	if n := errCount.Load(); n > 0 {
		t.Fatalf("%d failed requests; first: %v", n, firstErr.Load())
	}
	total := 0
	for key, want := range logged {
		sort.Slice(want, func(i, j int) bool {
			a, b := want[i], want[j]
			if a.Timestamp != b.Timestamp {
				return a.Timestamp < b.Timestamp
			}
			if a.Step != b.Step {
				return a.Step < b.Step
			}
			return a.Value < b.Value
		})
		st, out, err := call(http.MethodGet, "/metrics/get-history?"+url.Values{"run_id": {runID}, "metric_key": {key}}.Encode(), nil)
		if err != nil || st != 200 {
			t.Fatalf("history %s: %d %v", key, st, err)
		}
		var h struct {
			Metrics []struct {
				Key       string  `json:"key"`
				Value     float64 `json:"value"`
				Timestamp int64   `json:"timestamp"`
				Step      int64   `json:"step"`
			} `json:"metrics"`
		}
		if err := json.Unmarshal(out, &h); err != nil {
			t.Fatal(err)
		}
		if len(h.Metrics) != len(want) {
			t.Fatalf("%s: %d points read, %d logged", key, len(h.Metrics), len(want))
		}
		for i, m := range h.Metrics {
			w := want[i]
			if m.Key != key || m.Value != w.Value || m.Timestamp != w.Timestamp || m.Step != w.Step {
				t.Fatalf("%s[%d]: got %+v want %+v", key, i, m, w)
			}
		}
		total += len(want)
	}
	if len(logged) != clients+1 {
		t.Fatalf("%d keys logged, want %d", len(logged), clients+1)
	}
	t.Logf("%d clients, %s: %d requests, %d metric points, all read back", clients, dur, requests.Load(), total)
}
