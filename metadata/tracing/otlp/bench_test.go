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
// BenchmarkIngest100Extras is the same request with every span an LLM call
// carrying token usage, cost, model and provider (the log_spans extras:
// span_metrics, dimension_attributes, usage/cost metadata, trace_metrics);
// BenchmarkIngest100SameBytes carries the same attribute values under keys
// Ferry does not interpret, so Extras − SameBytes is the extras' own cost.
// Run them alternately (NOTES.md has figures):
//
//	go test -c -o /tmp/otlp.test ./metadata/tracing/otlp/
//	/tmp/otlp.test -test.run '^$' -test.bench 'Ingest100SameBytes' -test.benchtime 300x
//	/tmp/otlp.test -test.run '^$' -test.bench 'Ingest100Extras' -test.benchtime 300x
func BenchmarkIngest100(b *testing.B) { benchIngest(b, false, "") }

// BenchmarkIngest100Extras: see BenchmarkIngest100.
func BenchmarkIngest100Extras(b *testing.B) { benchIngest(b, true, "") }

// BenchmarkIngest100SameBytes: see BenchmarkIngest100.
func BenchmarkIngest100SameBytes(b *testing.B) { benchIngest(b, true, "x.") }

// benchIngest posts b.N 100-span requests; with llm, each span carries the
// extras' attributes, their keys prefixed by prefix.
func benchIngest(b *testing.B, llm bool, prefix string) {
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
			if llm {
				sp.Attributes = append(sp.Attributes,
					kv(prefix+"mlflow.chat.tokenUsage", str(`{"input_tokens": 120, "output_tokens": 40, "total_tokens": 160}`)),
					kv(prefix+"mlflow.llm.cost", str(`{"input_cost": 0.0012, "output_cost": 0.0008, "total_cost": 0.002}`)),
					kv(prefix+"mlflow.llm.model", str(`"gpt-4o"`)), kv(prefix+"mlflow.llm.provider", str(`"openai"`)))
			}
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
