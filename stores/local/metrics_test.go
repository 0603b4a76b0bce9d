package local_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/local"
)

const (
	opsMetric      = "ferry_store_operations_total"
	bytesMetric    = "ferry_store_transferred_bytes_total"
	durationMetric = "ferry_store_operation_duration_seconds"
	inFlightMetric = "ferry_store_in_flight_operations"
)

// gathered returns the samples of one metric family by their labels other
// than store ("op=put,outcome=success"); histograms give their count. It
// fails the test if a sample is not labelled store="local".
func gathered(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if l.GetName() == "store" {
					if l.GetValue() != "local" {
						t.Fatalf("%s sample labelled store=%q", name, l.GetValue())
					}
					continue
				}
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			out[strings.Join(labels, ",")] = v
		}
	}
	return out
}

// ops builds the expected operations map from "op/outcome" pairs.
func ops(pairs ...string) map[string]float64 {
	out := map[string]float64{}
	for _, p := range pairs {
		op, outcome, _ := strings.Cut(p, "/")
		out["op="+op+",outcome="+outcome]++
	}
	return out
}

// readN opens key, reads n bytes (all when n < 0) through Read only, and
// closes.
func readN(ctx context.Context, s stores.Store, key string, offset, length int64, n int) error {
	rc, _, err := s.Open(ctx, key, offset, length)
	if err != nil {
		return err
	}
	defer rc.Close()
	if n < 0 {
		_, err = io.ReadAll(struct{ io.Reader }{rc})
		return err
	}
	_, err = io.ReadFull(rc, make([]byte, n))
	return err
}

// TestMetrics drives the instrumented wrapper over a local store through
// every outcome and checks ferry_store_operations_total, the byte counters,
// the duration histogram and the in-flight gauge.
func TestMetrics(t *testing.T) {
	payload := strings.Repeat("0123456789", 1000) // 10,000 bytes
	tests := []struct {
		name      string
		run       func(t *testing.T, ctx context.Context, s *stores.Instrumented, dir string)
		wantOps   map[string]float64
		wantBytes map[string]float64
	}{
		{"put and full get", func(t *testing.T, ctx context.Context, s *stores.Instrumented, _ string) {
			must(t, readN(ctx, s, "obj", 0, -1, -1))
		}, ops("get/success"), map[string]float64{"op=put": 10_000, "op=get": 10_000}},

		{"get through WriteTo", func(t *testing.T, ctx context.Context, s *stores.Instrumented, _ string) {
			rc, _, err := s.Open(ctx, "obj", 0, -1)
			must(t, err)
			_, err = io.Copy(io.Discard, rc)
			must(t, err)
			must(t, rc.Close())
		}, ops("get/success"), map[string]float64{"op=put": 10_000, "op=get": 10_000}},

		{"ranged gets", func(t *testing.T, ctx context.Context, s *stores.Instrumented, _ string) {
			must(t, readN(ctx, s, "obj", 100, 50, -1))
			must(t, readN(ctx, s, "obj", 9_990, -1, -1))
		}, ops("get/success", "get/success"), map[string]float64{"op=put": 10_000, "op=get": 60}},

		{"download cut short", func(t *testing.T, ctx context.Context, s *stores.Instrumented, _ string) {
			must(t, readN(ctx, s, "obj", 0, -1, 7))
		}, ops("get/canceled"), map[string]float64{"op=put": 10_000, "op=get": 7}},

		{"not found", func(t *testing.T, ctx context.Context, s *stores.Instrumented, _ string) {
			_, err := s.Stat(ctx, "missing")
			wantErr(t, err, stores.ErrNotFound)
			wantErr(t, readN(ctx, s, "missing/x", 0, -1, -1), stores.ErrNotFound)
			_, err = s.List(ctx, "missing", stores.ListPage{})
			must(t, err)
			must(t, s.Delete(ctx, "missing"))
		}, ops("stat/not_found", "get/not_found", "list/success", "delete/success"), map[string]float64{"op=put": 10_000}},

		{"client errors", func(t *testing.T, ctx context.Context, s *stores.Instrumented, _ string) {
			_, err := s.Stat(ctx, "../x")
			wantErr(t, err, stores.ErrInvalidKey)
			wantErr(t, readN(ctx, s, "obj", 10_000, -1, -1), stores.ErrInvalidRange)
			wantErr(t, readN(ctx, s, "", 0, -1, -1), stores.ErrIsDir)
			wantErr(t, s.Put(ctx, "short", strings.NewReader("twelve bytes"), 100), stores.ErrIncomplete)
			wantErr(t, s.Put(ctx, "", strings.NewReader("x"), 1), stores.ErrInvalidKey)
			wantErr(t, s.Put(ctx, "obj/below", strings.NewReader("x"), 1), stores.ErrInvalidKey)
		}, ops("stat/client_error", "get/client_error", "get/client_error", "put/client_error", "put/client_error", "put/client_error"),
			map[string]float64{"op=put": 10_000 + 12}},

		{"canceled", func(t *testing.T, ctx context.Context, s *stores.Instrumented, _ string) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			wantErr(t, s.Put(cctx, "c1", strings.NewReader("data"), 4), context.Canceled)
			cctx, cancel = context.WithCancel(ctx)
			defer cancel()
			body := &cancelAfter{cancel: cancel}
			wantErr(t, s.Put(cctx, "c2", body, -1), context.Canceled)
		}, ops("put/canceled", "put/canceled"), map[string]float64{"op=put": 10_000 + 8}},

		{"backend failure", func(t *testing.T, ctx context.Context, s *stores.Instrumented, _ string) {
			// The driver's directory handle is gone: every call fails with
			// an error that is none of the sentinels.
			must(t, s.Unwrap().(*local.Store).Close())
			_, err := s.Stat(ctx, "obj")
			wantClass(t, ctx, err, stores.OutcomeError)
			_, err = s.List(ctx, "", stores.ListPage{})
			wantClass(t, ctx, err, stores.OutcomeError)
			err = s.Put(ctx, "new", strings.NewReader("x"), 1)
			wantClass(t, ctx, err, stores.OutcomeError)
		}, ops("stat/error", "list/error", "put/error"), map[string]float64{"op=put": 10_000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			s, reg := instrument(newStore(t, dir))
			ctx := t.Context()
			must(t, s.Put(ctx, "obj", strings.NewReader(payload), int64(len(payload))))
			tt.run(t, ctx, s, dir)

			wantOps := maps.Clone(tt.wantOps)
			wantOps["op=put,outcome=success"]++
			if got := gathered(t, reg, opsMetric); !maps.Equal(got, wantOps) {
				t.Errorf("%s = %v\nwant %v", opsMetric, sorted(got), sorted(wantOps))
			}
			if got := gathered(t, reg, bytesMetric); !maps.Equal(got, tt.wantBytes) {
				t.Errorf("%s = %v\nwant %v", bytesMetric, sorted(got), sorted(tt.wantBytes))
			}
			if got := gathered(t, reg, durationMetric); !maps.Equal(got, wantOps) {
				t.Errorf("%s sample counts = %v\nwant %v (one per operation)", durationMetric, sorted(got), sorted(wantOps))
			}
			for labels, v := range gathered(t, reg, inFlightMetric) {
				if v != 0 {
					t.Errorf("%s{%s} = %v after every operation ended", inFlightMetric, labels, v)
				}
			}
		})
	}
}

// TestMetricsInFlightDownload checks that a download counts as in flight
// until its reader is closed, and that its bytes are counted as they flow.
func TestMetricsInFlightDownload(t *testing.T) {
	s, reg := instrument(newStore(t, t.TempDir()))
	ctx := t.Context()
	data := strings.Repeat("x", 5<<20) // more than one counter flush
	must(t, s.Put(ctx, "big", strings.NewReader(data), int64(len(data))))
	rc, _, err := s.Open(ctx, "big", 0, -1)
	must(t, err)
	if got := gathered(t, reg, inFlightMetric)["op=get"]; got != 1 {
		t.Fatalf("in-flight gets while the reader is open = %v; want 1", got)
	}
	if _, err := io.ReadFull(rc, make([]byte, 4<<20+1)); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, reg, bytesMetric)["op=get"]; got < 4<<20 {
		t.Fatalf("get bytes before Close = %v; want at least the 4 MiB flushed", got)
	}
	if got := gathered(t, reg, opsMetric)["op=get,outcome=success"]; got != 0 {
		t.Fatalf("get counted as finished before Close")
	}
	must(t, rc.Close())
	if got := gathered(t, reg, opsMetric)["op=get,outcome=canceled"]; got != 1 {
		t.Fatalf("a download closed midway counted %v times as canceled; want 1", got)
	}
	if got := gathered(t, reg, inFlightMetric)["op=get"]; got != 0 {
		t.Fatalf("in-flight gets after Close = %v; want 0", got)
	}
	if got := gathered(t, reg, bytesMetric)["op=get"]; got != 4<<20+1 {
		t.Fatalf("get bytes after Close = %v; want %d", got, 4<<20+1)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v; want %v", err, want)
	}
}

func wantClass(t *testing.T, ctx context.Context, err error, want string) {
	t.Helper()
	if got := stores.Classify(ctx, err); got != want {
		t.Fatalf("Classify(%v) = %q; want %q", err, got, want)
	}
}

// sorted renders m with sorted keys for stable failure messages.
func sorted(m map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %v", k, m[k]))
	}
	return "{" + strings.Join(parts, "; ") + "}"
}
