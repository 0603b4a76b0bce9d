package otlp

import (
	"context"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// BenchmarkIngest100 is one 100-span request (one trace) through the
// handler in-process on SQLite: decode, convert and the transaction; the
// figure excludes HTTP. test/bench/otlp measures the live server.
//
//	go test -run '^$' -bench Ingest100 -benchtime 2000x ./metadata/tracing/otlp/
func BenchmarkIngest100(b *testing.B) {
	db, err := metadata.Open(context.Background(), "sqlite:///"+b.TempDir()+"/bench.db", domaintest.Quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	t := &testing.T{}
	addExperiment(t, db, 1, "active")
	app := newApp(db)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		req := manySpans(100)
		for _, sp := range req.ResourceSpans[0].ScopeSpans[0].Spans {
			sp.TraceId[2], sp.TraceId[3], sp.TraceId[4] = byte(i>>16), byte(i>>8), byte(i)
		}
		bodies[i] = mustMarshal(t, req)
	}
	b.SetBytes(int64(len(bodies[0])))
	b.ResetTimer()
	for i := range b.N {
		if a := post(t, app, pbHeaders("1"), bodies[i]); a.status != 200 {
			b.Fatalf("%d %s", a.status, a.body)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "spans/s")
}
