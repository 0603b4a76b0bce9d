package otlp

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// lines runs q and renders each row as its columns joined by "|" (NULL as
// "<nil>"), in the order the query gives.
func lines(t *testing.T, db *metadata.DB, q string, args ...any) []string {
	t.Helper()
	var out []string
	err := db.Read(context.Background(), func(tx *metadata.Tx) error {
		return tx.Each(context.Background(), q, args, func(r *sql.Rows) error {
			cols, _ := r.Columns()
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				return err
			}
			parts := make([]string, len(cols))
			for i, v := range vals {
				parts[i] = "<nil>"
				if v.Valid {
					parts[i] = v.String
				}
			}
			out = append(out, strings.Join(parts, "|"))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func kvlist(kvs ...*commonpb.KeyValue) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: kvs}}}
}

func intv(n int64) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: n}}
}

func dbl(f float64) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: f}}
}

// TestExtrasUsageCostSessionTags: token usage and cost are summed into the
// trace's metadata across requests (MLflow's JSON-string attributes and
// plain OTLP key-value lists alike), with trace_metrics / span_metrics rows
// and the model dimensions on the span; the first session / user stays;
// mlflow.traceTag.* attributes become trace tags.
func TestExtrasUsageCostSessionTags(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		addExperiment(t, db, 1, "active")
		app := newApp(db)
		tr := id(16, 0xc3)
		traceID := "tr-" + hex.EncodeToString(tr)
		root := span(tr, id(8, 1), nil, "agent", 1_000_000_000, 2_000_000_000, okCode,
			kv("mlflow.chat.tokenUsage", str(`{"input_tokens": 100, "output_tokens": 50, "total_tokens": 150}`)),
			kv("mlflow.llm.cost", str(`{"input_cost": 0.01, "output_cost": 0.02, "total_cost": 0.03}`)),
			kv("mlflow.llm.model", str(`"gpt-4-turbo"`)), kv("mlflow.llm.provider", str("openai")),
			kv("session.id", str("session-123")), kv("user.id", str("alice")),
			kv("mlflow.traceTag.env", str("prod")), kv("mlflow.traceTag."+strings.Repeat("k", 300), str("too long key")),
			kv("mlflow.traceTag.", str("no key")), kv("mlflow.traceTag.mlflow.trace.spansLocation", str("ARTIFACT_REPO")))
		if a := post(t, app, pbHeaders("1"), mustMarshal(t, request("", root))); a.status != 200 {
			t.Fatalf("first: %d %s", a.status, a.body)
		}
		child := span(tr, id(8, 2), id(8, 1), "llm", 1_100_000_000, 1_900_000_000, okCode,
			kv("mlflow.chat.tokenUsage", kvlist(kv("input_tokens", intv(200)), kv("output_tokens", intv(75)), kv("total_tokens", intv(275)),
				kv("cache_read_input_tokens", intv(7)))),
			kv("mlflow.llm.cost", kvlist(kv("input_cost", dbl(0.005)), kv("output_cost", dbl(0.01)), kv("total_cost", dbl(0.015)))),
			kv("session.id", str("other-session")), kv("user.id", str("bob")), kv("mlflow.traceTag.env", str("staging")))
		broken := span(tr, id(8, 3), id(8, 1), "tool", 1_200_000_000, 1_300_000_000, okCode,
			kv("mlflow.chat.tokenUsage", str("not json")), kv("mlflow.llm.cost", str(`{"total_cost": "free"}`)))
		if a := post(t, app, pbHeaders("1"), mustMarshal(t, request("", child, broken))); a.status != 200 {
			t.Fatalf("second: %d %s", a.status, a.body)
		}

		got, _ := readTrace(t, db, traceID)
		want := map[string]string{
			"mlflow.trace.tokenUsage":     `{"input_tokens": 300, "output_tokens": 125, "total_tokens": 425, "cache_read_input_tokens": 7}`,
			"mlflow.trace.cost":           `{"input_cost": 0.015, "output_cost": 0.03, "total_cost": 0.045}`,
			"mlflow.trace.session":        "session-123",
			"mlflow.trace.user":           "alice",
			"mlflow.trace_schema.version": "3",
		}
		if !reflect.DeepEqual(got.metadata, want) {
			t.Fatalf("metadata %v", got.metadata)
		}
		if got.tags["env"] != "staging" || len(got.tags) != 4 || got.tags["mlflow.trace.spansLocation"] != "TRACKING_STORE" { // env + spansLocation, artifactLocation, traceName
			t.Fatalf("tags %v", got.tags)
		}
		k := db.Dialect().Quote("key")
		if tm := lines(t, db, "SELECT "+k+", value FROM trace_metrics WHERE request_id = ? ORDER BY "+k, traceID); !reflect.DeepEqual(tm,
			[]string{"cache_read_input_tokens|7", "input_tokens|300", "output_tokens|125", "total_tokens|425"}) {
			t.Fatalf("trace_metrics %v", tm)
		}
		sm := lines(t, db, "SELECT span_id, "+k+", value FROM span_metrics WHERE trace_id = ? ORDER BY span_id, "+k, traceID)
		if !reflect.DeepEqual(sm, []string{
			"0101010101010101|input_cost|0.01", "0101010101010101|output_cost|0.02", "0101010101010101|total_cost|0.03",
			"0202020202020202|input_cost|0.005", "0202020202020202|output_cost|0.01", "0202020202020202|total_cost|0.015",
		}) {
			t.Fatalf("span_metrics %v", sm)
		}
		dims := lines(t, db, "SELECT span_id, dimension_attributes FROM spans WHERE trace_id = ? ORDER BY span_id", traceID)
		if len(dims) != 3 || dims[1] != "0202020202020202|<nil>" || dims[2] != "0303030303030303|<nil>" {
			t.Fatalf("dimension_attributes %v", dims)
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(dims[0], "0101010101010101|")), &d); err != nil ||
			!reflect.DeepEqual(d, map[string]any{"mlflow.llm.model": "gpt-4-turbo", "mlflow.llm.provider": "openai"}) {
			t.Fatalf("root dimension_attributes %v (%v)", dims[0], err)
		}
	})
}

// TestExtrasFinalized: a trace start-trace finalized keeps its time range,
// session, user, token usage and cost whatever later spans say; tags from
// spans still land.
func TestExtrasFinalized(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		addExperiment(t, db, 1, "active")
		app := newApp(db)
		tr := id(16, 0xd4)
		traceID := "tr-" + hex.EncodeToString(tr)
		ctx := context.Background()
		err := db.Write(ctx, func(tx *metadata.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, execution_time_ms, status) VALUES (?, 1, 1000, 500, 'OK')", traceID); err != nil {
				return err
			}
			k, v := tx.Dialect().Quote("key"), tx.Dialect().Quote("value")
			for _, m := range [][2]string{{"mlflow.trace.infoFinalized", "true"}, {"mlflow.trace.session", "s-auth"},
				{"mlflow.trace.tokenUsage", `{"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}`}} {
				if _, err := tx.Exec(ctx, "INSERT INTO trace_request_metadata ("+k+", "+v+", request_id) VALUES (?, ?, ?)", m[0], m[1], traceID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sp := span(tr, id(8, 1), nil, "llm", 1_000_000, 9_000_000_000, errCode,
			kv("mlflow.chat.tokenUsage", str(`{"input_tokens": 999, "output_tokens": 999, "total_tokens": 1998}`)),
			kv("mlflow.llm.cost", str(`{"total_cost": 19.98}`)),
			kv("session.id", str("s-spans")), kv("user.id", str("u-spans")), kv("mlflow.traceTag.team", str("ml")))
		if a := post(t, app, pbHeaders("1"), mustMarshal(t, request("", sp))); a.status != 200 {
			t.Fatalf("export: %d %s", a.status, a.body)
		}
		got, _ := readTrace(t, db, traceID)
		if got.ts != 1000 || got.exec.Int64 != 500 || got.status != "OK" {
			t.Fatalf("trace_info changed: %+v", got)
		}
		if got.metadata["mlflow.trace.session"] != "s-auth" || got.metadata["mlflow.trace.tokenUsage"] != `{"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}` {
			t.Fatalf("metadata %v", got.metadata)
		}
		if _, ok := got.metadata["mlflow.trace.cost"]; ok {
			t.Fatalf("cost written on a finalized trace: %v", got.metadata)
		}
		if _, ok := got.metadata["mlflow.trace.user"]; ok {
			t.Fatalf("user written on a finalized trace: %v", got.metadata)
		}
		if got.tags["team"] != "ml" {
			t.Fatalf("tags %v", got.tags)
		}
		if n := count(t, db, "trace_metrics"); n != 0 {
			t.Fatalf("trace_metrics rows %d", n)
		}
		if n := count(t, db, "span_metrics"); n != 1 { // the span's own cost is still a span fact
			t.Fatalf("span_metrics rows %d", n)
		}
	})
}

// TestExtrasRunLink: x-mlflow-run-id links the request's completed traces
// (root span present) to the run, once; an id the link columns cannot hold
// (too long, not UTF-8; fasthttp itself refuses a NUL) is ignored and the spans are still stored, as
// are NUL-carrying session ids and tag values (dropped).
func TestExtrasRunLink(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		addExperiment(t, db, 1, "active")
		app := newApp(db)
		done, open := id(16, 0xe5), id(16, 0xf6)
		body := mustMarshal(t, request("",
			span(done, id(8, 1), nil, "root", 1_000_000_000, 2_000_000_000, okCode),
			span(open, id(8, 2), id(8, 9), "child", 1_000_000_000, 2_000_000_000, okCode)))
		h := pbHeaders("1")
		h[RunHeader] = "0123456789abcdef0123456789abcdef"
		for i := 0; i < 2; i++ {
			if a := post(t, app, h, body); a.status != 200 {
				t.Fatalf("export %d: %d %s", i, a.status, a.body)
			}
		}
		links := lines(t, db, "SELECT source_type, source_id, destination_type, destination_id FROM entity_associations")
		if !reflect.DeepEqual(links, []string{"trace|tr-" + hex.EncodeToString(done) + "|run|0123456789abcdef0123456789abcdef"}) {
			t.Fatalf("links %v", links)
		}
		for i, bad := range []string{strings.Repeat("r", 37) + "' OR 1=1 --", "run\xff\xfe"} {
			h[RunHeader] = bad
			other := id(16, byte(0x17+i))
			if a := post(t, app, h, mustMarshal(t, request("", span(other, id(8, 1), nil, "root", 1, 2, okCode,
				kv("session.id", str("s\x00")), kv("mlflow.traceTag.nul", str("a\x00b")))))); a.status != 200 {
				t.Fatalf("run id %q: %d %s", bad, a.status, a.body)
			}
			got, ok := readTrace(t, db, "tr-"+hex.EncodeToString(other))
			if !ok || count(t, db, "entity_associations") != 1 || got.metadata["mlflow.trace.session"] != "" || got.tags["nul"] != "" {
				t.Fatalf("run id %q: trace stored %v (%+v), links %d", bad, ok, got, count(t, db, "entity_associations"))
			}
		}
	})
}

// TestAddSat: token sums saturate rather than wrap.
func TestAddSat(t *testing.T) {
	const max, min = int64(^uint64(0) >> 1), -int64(^uint64(0)>>1) - 1
	for _, c := range [][3]int64{{1, 2, 3}, {max, 1, max}, {max - 1, max, max}, {min, -1, min}, {-5, 3, -2}} {
		if got := addSat(c[0], c[1]); got != c[2] {
			t.Errorf("addSat(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}
