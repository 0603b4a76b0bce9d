package domaintest

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
)

// BenchRequest is one request of a benchmark: method, path and JSON body
// ("" sends none).
type BenchRequest struct{ Method, Path, Body string }

// Call sends r to app in-process and returns the status and the whole
// body as text (status 0 and the error text when the app fails).
func Call(app *fiber.App, r BenchRequest) (int, string) {
	req := httptest.NewRequest(r.Method, r.Path, strings.NewReader(r.Body))
	if r.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := app.Test(req, 60000)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TimeRequests sends b.N requests req(i) (after 2 untimed warm-ups), each
// right after the reference request ref (the cheapest read of the domain
// that reaches the database: on a shared, loaded machine its time shows
// how much of a figure is waiting for the CPU rather than work), and
// reports the median and 10th/90th percentiles of the requests and the
// reference's median in ms. Any answer other than 200 fails b. With
// FERRY_BENCH_VERBOSE set it also logs the maximum.
func TimeRequests(b *testing.B, app *fiber.App, ref BenchRequest, req func(i int) BenchRequest) {
	for i := 0; i < 2; i++ {
		if st, out := Call(app, req(i)); st != 200 {
			b.Fatal(st, out)
		}
	}
	ds := make([]time.Duration, 0, b.N)
	refs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if st, out := Call(app, ref); st != 200 {
			b.Fatal(st, out)
		}
		refs = append(refs, time.Since(t0))
		r := req(i)
		t0 = time.Now()
		st, out := Call(app, r)
		ds = append(ds, time.Since(t0))
		if st != 200 {
			b.Fatal(st, out)
		}
	}
	b.StopTimer()
	pct := func(ds []time.Duration, p float64) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[int(float64(len(ds)-1)*p)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(ds, 0.5), "ms-p50")
	b.ReportMetric(pct(ds, 0.1), "ms-p10")
	b.ReportMetric(pct(ds, 0.9), "ms-p90")
	b.ReportMetric(pct(refs, 0.5), "ref-ms-p50")
	if os.Getenv("FERRY_BENCH_VERBOSE") != "" {
		b.Logf("%d requests: p50 %.2f ms, p10 %.2f, p90 %.2f, max %.2f; reference p50 %.2f ms", len(ds), pct(ds, 0.5), pct(ds, 0.1), pct(ds, 0.9), pct(ds, 1), pct(refs, 0.5))
	}
}

// Analyze refreshes planner statistics of the given tables after a bulk
// load, as PostgreSQL's autoanalyze and InnoDB's persistent statistics do
// by themselves within a minute (see test/bench/tracking). SQLite keeps
// none by itself and is left alone.
func Analyze(db *metadata.DB, tables ...string) error {
	return db.Write(context.Background(), func(tx *metadata.Tx) error {
		switch tx.Dialect() {
		case schema.Postgres:
			_, err := tx.Exec(context.Background(), "ANALYZE "+strings.Join(tables, ", "))
			return err
		case schema.MySQL:
			_, err := tx.Exec(context.Background(), "ANALYZE TABLE "+strings.Join(tables, ", "))
			return err
		}
		return nil
	})
}
