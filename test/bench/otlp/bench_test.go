// Package otlpbench measures OTLP span ingest (POST /v1/traces) on a real
// ferry server with SQLite: sustained spans/s and request latency at 100
// spans per request, and ferry's memory while it ingests. The reference in
// the same run is runs/log-batch with 100 metrics per request, the
// tracking write path of the same size, timed in alternating rounds.
//
//	FERRY_BENCH=1 go test -run TestOTLPBench -v -timeout 30m ./test/bench/otlp/
//
// FERRY_BENCH_ROUNDS (default 3) rounds of FERRY_BENCH_OTLP_SECONDS
// (default 15) per path, FERRY_BENCH_OTLP_CLIENTS (default 4) concurrent
// clients. Targets: 10,000 spans/s sustained, p99 ≤ 50 ms, and RssAnon in
// the last third of the OTLP time no more than 1.5× that of the first
// third plus 16 MiB (flat); FERRY_BENCH_STRICT=1 fails a missed target.
package otlpbench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ferryml/ferry/test/bench/benchutil"
	"github.com/ferryml/ferry/test/ferrytest"
)

const (
	spansPerRequest = 100
	targetSpansPerS = 10000
	targetP99       = 50 * time.Millisecond
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// otlpBody is one request: one trace of 100 spans (a root and 99
// children with a few attributes, as an instrumented agent sends them),
// its ids made from seq so every request writes new rows.
func otlpBody(seq uint64) []byte {
	tid := make([]byte, 16)
	for i := range 8 {
		tid[i] = byte(seq >> (8 * i))
	}
	tid[15] = 0xf1
	spans := make([]*tracepb.Span, spansPerRequest)
	start := uint64(time.Now().UnixNano())
	for i := range spans {
		sid := []byte{0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i) + 1}
		var parent []byte
		if i > 0 {
			parent = []byte{0, 0, 0, 0, 0, 0, 0, 1}
		}
		spans[i] = &tracepb.Span{
			TraceId: tid, SpanId: sid, ParentSpanId: parent, Name: "step-" + strconv.Itoa(i),
			StartTimeUnixNano: start + uint64(i)*1000, EndTimeUnixNano: start + uint64(i)*1000 + 500_000,
			Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK},
			Attributes: []*commonpb.KeyValue{
				{Key: "mlflow.spanType", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: `"LLM"`}}},
				{Key: "mlflow.spanInputs", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: `{"messages": [{"role": "user", "content": "What is the capital of France?"}]}`}}},
				{Key: "gen_ai.usage.input_tokens", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}},
			},
		}
	}
	b, _ := proto.Marshal(&collectorpb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}})
	return b
}

// logBatchBody is the reference request: 100 metrics for one run.
func logBatchBody(runID string, seq uint64) []byte {
	type metric struct {
		Key       string  `json:"key"`
		Value     float64 `json:"value"`
		Timestamp int64   `json:"timestamp"`
		Step      uint64  `json:"step"`
	}
	ms := make([]metric, spansPerRequest)
	for i := range ms {
		ms[i] = metric{"m" + strconv.Itoa(i), float64(i), time.Now().UnixMilli(), seq}
	}
	b, _ := json.Marshal(map[string]any{"run_id": runID, "metrics": ms})
	return b
}

type result struct {
	requests int
	elapsed  time.Duration
	lat      []time.Duration
}

func (r result) perSecond() float64 {
	return float64(r.requests*spansPerRequest) / r.elapsed.Seconds()
}

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), r.lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// drive runs clients loops of send for d and gathers latencies; a failed
// request fails t.
func drive(t *testing.T, clients int, d time.Duration, send func(seq uint64) error) result {
	var seq atomic.Uint64
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	var failed atomic.Value
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) && failed.Load() == nil {
				t0 := time.Now()
				if err := send(seq.Add(1)); err != nil {
					failed.Store(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(err)
	}
	return result{requests: len(all), elapsed: time.Since(start), lat: all}
}

func post(url, ctype string, headers map[string]string, body []byte) error {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, raw)
	}
	return nil
}

// rssSampler records RssAnon once a second (over both paths' rounds).
func rssSampler(pid int) (stop func() []int64) {
	var mu sync.Mutex
	var xs []int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if m, err := benchutil.ReadStatus(pid); err == nil {
				mu.Lock()
				xs = append(xs, m["RssAnon"])
				mu.Unlock()
			}
		}
	}()
	return func() []int64 { close(done); <-finished; return xs }
}

func maxOf(xs []int64) int64 {
	var m int64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func TestOTLPBench(t *testing.T) {
	cfg := benchutil.Setup(t, "OTLP ingest")
	miss := benchutil.Misser(t, cfg.Strict)
	secs := time.Duration(envInt("FERRY_BENCH_OTLP_SECONDS", 15)) * time.Second
	clients := envInt("FERRY_BENCH_OTLP_CLIENTS", 4)
	dir := t.TempDir()
	bin := benchutil.BuildFerry(t, dir)
	fy := ferrytest.StartServer(t, bin, append(ferrytest.CleanEnv("MLFLOW_", "FERRY_"), cfg.Env...),
		"--backend-store-uri", "sqlite:///"+dir+"/bench.db", "--artifacts-destination", dir+"/artifacts")
	t.Logf("ferry pid %d; %d clients, %d rounds of %v per path, 100 spans (or metrics) a request; load %s",
		fy.PID(), clients, cfg.Rounds, secs, benchutil.Load())

	// The reference path logs metrics to one run.
	req, _ := http.NewRequest(http.MethodPost, fy.Base+"/api/2.0/mlflow/runs/create", bytes.NewReader([]byte(`{"experiment_id": "0"}`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]map[string]map[string]any // {"run": {"info": {"run_id": …}}}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	runID, _ := created["run"]["info"]["run_id"].(string)
	if runID == "" {
		t.Fatal("runs/create gave no run id")
	}

	otlp := func(seq uint64) error {
		return post(fy.Base+"/v1/traces", "application/x-protobuf", map[string]string{"x-mlflow-experiment-id": "0"}, otlpBody(seq))
	}
	var batchSeq atomic.Uint64
	logBatch := func(uint64) error {
		return post(fy.Base+"/api/2.0/mlflow/runs/log-batch", "application/json", nil, logBatchBody(runID, batchSeq.Add(1)))
	}

	stopRSS := rssSampler(fy.PID())
	var otlpRes, refRes []result
	for round := range cfg.Rounds {
		paths := []string{"otlp", "log-batch"}
		if round%2 == 1 {
			paths = []string{"log-batch", "otlp"}
		}
		for _, p := range paths {
			if p == "otlp" {
				r := drive(t, clients, secs, otlp)
				otlpRes = append(otlpRes, r)
				t.Logf("round %d otlp:      %7.0f spans/s  p50 %v  p99 %v  (%d requests)", round+1, r.perSecond(), r.pct(0.5), r.pct(0.99), r.requests)
			} else {
				r := drive(t, clients, secs, logBatch)
				refRes = append(refRes, r)
				t.Logf("round %d log-batch: %7.0f metrics/s p50 %v  p99 %v  (%d requests)", round+1, r.perSecond(), r.pct(0.5), r.pct(0.99), r.requests)
			}
		}
	}
	rss := stopRSS()

	med := func(rs []result, f func(result) float64) (float64, float64, float64) {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		sort.Float64s(xs)
		return xs[0], xs[len(xs)/2], xs[len(xs)-1]
	}
	lo, m, hi := med(otlpRes, result.perSecond)
	t.Logf("OTLP spans/s: median %.0f (min %.0f, max %.0f); target %d", m, lo, hi, targetSpansPerS)
	rlo, rm, rhi := med(refRes, result.perSecond)
	t.Logf("log-batch metrics/s (reference): median %.0f (min %.0f, max %.0f); OTLP/reference %.2f", rm, rlo, rhi, m/rm)
	_, p99, p99hi := med(otlpRes, func(r result) float64 { return float64(r.pct(0.99)) })
	t.Logf("OTLP p99: median %v (worst round %v); target %v", time.Duration(p99), time.Duration(p99hi), targetP99)
	if m < targetSpansPerS {
		miss("OTLP ingest %.0f spans/s, target %d", m, targetSpansPerS)
	}
	if time.Duration(p99) > targetP99 {
		miss("OTLP p99 %v, target %v", time.Duration(p99), targetP99)
	}
	if n := len(rss); n >= 6 {
		first, last := maxOf(rss[:n/3]), maxOf(rss[n-n/3:])
		t.Logf("ferry RssAnon: first third max %.1f MiB, last third max %.1f MiB, overall max %.1f MiB (%d samples, 1/s)",
			benchutil.MiB(first), benchutil.MiB(last), benchutil.MiB(maxOf(rss)), n)
		if float64(last) > 1.5*float64(first)+16<<20 {
			miss("RSS grew while ingesting: %.1f → %.1f MiB", benchutil.MiB(first), benchutil.MiB(last))
		}
	}
}
