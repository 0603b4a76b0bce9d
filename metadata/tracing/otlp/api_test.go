package otlp

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

const (
	okCode  = tracepb.Status_STATUS_CODE_OK
	errCode = tracepb.Status_STATUS_CODE_ERROR
	unset   = tracepb.Status_STATUS_CODE_UNSET
)

// TestExportProtobuf: spans of two traces in one protobuf request become
// span rows, trace_info rows, tags and metadata; a later request with the
// missing root span completes the second trace and merges its times.
func TestExportProtobuf(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		addExperiment(t, db, 1, "active")
		app := newApp(db)
		ta, tb := id(16, 0xa1), id(16, 0xb2)
		root := span(ta, id(8, 1), nil, "agent", 1_000_000_000, 3_500_000_000, okCode,
			kv("mlflow.spanType", str("AGENT")), kv("mlflow.spanInputs", &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{
				KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{kv("q", str("hi"))}}}}),
			kv("count", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 7}}),
			kv("ratio", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1}}),
			kv("list", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
				Values: []*commonpb.AnyValue{str("a"), {Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}}}}}),
			kv("mlflow.traceRequestId", str("tr-forged")))
		child := span(ta, id(8, 2), id(8, 1), "llm", 1_200_000_000, 3_000_000_000, errCode,
			kv("mlflow.spanType", str(`"LLM"`))) // as MLflow-made spans carry it
		child.Events = []*tracepb.Span_Event{{Name: "exception", TimeUnixNano: 2_000_000_000,
			Attributes: []*commonpb.KeyValue{kv("exception.message", str("boom"))}}}
		orphan := span(tb, id(8, 3), id(8, 4), "tool", 5_000_000_000, 6_000_000_000, unset)

		a := post(t, app, pbHeaders("1"), mustMarshal(t, request("claude-code", root, child, orphan)))
		if a.status != 200 || a.ctype != "application/x-protobuf" || len(a.body) != 0 {
			t.Fatalf("export: %d %q %q", a.status, a.ctype, a.body)
		}
		idA, idB := "tr-"+hex.EncodeToString(ta), "tr-"+hex.EncodeToString(tb)
		tr, ok := readTrace(t, db, idA)
		if !ok || tr.exp != 1 || tr.ts != 1000 || !tr.exec.Valid || tr.exec.Int64 != 2500 || tr.status != "OK" {
			t.Fatalf("trace A: %+v", tr)
		}
		if tr.req.String != `{"q": "hi"}` || tr.tags["mlflow.trace.spansLocation"] != "TRACKING_STORE" ||
			tr.tags["mlflow.traceName"] != "agent" || tr.tags["mlflow.artifactLocation"] != "mlflow-artifacts:/1/traces/"+idA+"/artifacts" ||
			tr.metadata["mlflow.trace_schema.version"] != "3" {
			t.Errorf("trace A details: %+v", tr)
		}
		spans := readSpans(t, db, idA)
		if len(spans) != 2 {
			t.Fatalf("spans of A: %d", len(spans))
		}
		r := spans["0101010101010101"]
		if r.exp != 1 || r.parent.Valid || r.name != "agent" || r.typ.String != "AGENT" || r.status != "OK" ||
			r.start != 1_000_000_000 || r.end.Int64 != 3_500_000_000 || r.duration.Int64 != 2_500_000_000 {
			t.Errorf("root row: %+v", r)
		}
		attrs := r.content["attributes"].(map[string]any)
		want := map[string]any{
			"mlflow.traceRequestId": `"` + idA + `"`, // the derived id, JSON-encoded, not the forged one
			"mlflow.spanType":       "AGENT",         // values as the span carried them
			"mlflow.spanInputs":     map[string]any{"q": "hi"},
			"count":                 float64(7),
			"ratio":                 float64(1),
			"list":                  []any{"a", true},
			"service.name":          `"claude-code"`, // JSON-encoded, as upstream dumps it
		}
		for k, v := range want {
			if fmt.Sprint(attrs[k]) != fmt.Sprint(v) {
				t.Errorf("attribute %s = %#v, want %#v", k, attrs[k], v)
			}
		}
		if !strings.Contains(r.contentRaw, `"ratio": 1.0`) {
			t.Errorf("float not in Python's form: %s", r.contentRaw)
		}
		if r.content["trace_id"] != idA || r.content["span_id"] != "0101010101010101" || r.content["parent_span_id"] != nil ||
			r.content["status"].(map[string]any)["code"] != "OK" || r.content["otel_trace_id"] != idA[3:] {
			t.Errorf("root content: %s", r.contentRaw)
		}
		c := spans["0202020202020202"]
		if c.parent.String != "0101010101010101" || c.typ.String != "LLM" || c.status != "ERROR" || c.content["attributes"].(map[string]any)["service.name"] != nil {
			t.Errorf("child row: %+v", c)
		}
		if ev := c.content["events"].([]any); len(ev) != 1 || ev[0].(map[string]any)["attributes"].(map[string]any)["exception.message"] != "boom" {
			t.Errorf("child events: %s", c.contentRaw)
		}

		tr, _ = readTrace(t, db, idB)
		if tr.status != "IN_PROGRESS" || tr.ts != 5000 || tr.exec.Int64 != 1000 || tr.tags["mlflow.traceName"] != "" {
			t.Fatalf("trace B before its root: %+v", tr)
		}
		// The root of B arrives later, starting earlier and ending later;
		// the orphan span is sent again, with a new name (replaced).
		rootB := span(tb, id(8, 4), nil, "rootB", 4_000_000_000, 9_000_000_000, errCode)
		orphan.Name = "tool2"
		if a := post(t, app, pbHeaders("1"), mustMarshal(t, request("", rootB, orphan))); a.status != 200 {
			t.Fatalf("second export: %d %s", a.status, a.body)
		}
		tr, _ = readTrace(t, db, idB)
		if tr.status != "ERROR" || tr.ts != 4000 || tr.exec.Int64 != 5000 || tr.tags["mlflow.traceName"] != "rootB" {
			t.Errorf("trace B after its root: %+v", tr)
		}
		sb := readSpans(t, db, idB)
		if len(sb) != 2 || sb["0303030303030303"].name != "tool2" || sb["0404040404040404"].content["attributes"].(map[string]any)["service.name"] != nil {
			t.Errorf("spans of B: %+v", sb)
		}
	})
}

// otlpJSON is an OTLP JSON export request with hex ids.
func otlpJSON(traceHex, spanHex, parentHex string) string {
	parent := ""
	if parentHex != "" {
		parent = `"parentSpanId": "` + parentHex + `",`
	}
	return `{"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gemini-cli"}}]},
  "scopeSpans": [{"scope": {"name": "s"}, "spans": [{"traceId": "` + traceHex + `", "spanId": "` + spanHex + `", ` + parent + `
    "name": "json-span", "kind": 1, "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000500000000",
    "attributes": [{"key": "k", "value": {"stringValue": "v"}}], "status": {"code": 1},
    "links": [{"traceId": "` + traceHex + `", "spanId": "` + spanHex + `"}], "unknownField": 1}]}]}]}`
}

// TestExportJSONAndEncodings: OTLP JSON with hex ids (which protojson alone
// would read as base64), with Content-Type parameters, and gzip/deflate
// bodies of both formats.
func TestExportJSONAndEncodings(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		addExperiment(t, db, 1, "active")
		app := newApp(db)
		// 32 hex digits are also valid base64 (of 24 bytes): a parser that
		// skipped the conversion would store another id or fail.
		traceHex, spanHex := "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
		h := map[string]string{"Content-Type": "application/json; charset=utf-8", ExperimentHeader: "1"}
		if a := post(t, app, h, []byte(otlpJSON(traceHex, spanHex, ""))); a.status != 200 {
			t.Fatalf("json export: %d %s", a.status, a.body)
		}
		spans := readSpans(t, db, "tr-"+traceHex)
		r, ok := spans[spanHex]
		if !ok || r.start != 1_700_000_000_000_000_000 || r.status != "OK" || r.content["attributes"].(map[string]any)["service.name"] != `"gemini-cli"` {
			t.Fatalf("json span: %+v", spans)
		}

		writers := map[string]func(io.Writer) io.WriteCloser{
			"gzip":        func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
			"deflate":     func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) },
			"raw-deflate": func(w io.Writer) io.WriteCloser { z, _ := flate.NewWriter(w, 5); return z },
			"GZIP":        func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }, // the header in upper case
		}
		header := map[string]string{"gzip": "gzip", "deflate": "deflate", "raw-deflate": "deflate", "GZIP": "GZIP"}
		compress := func(name string, b []byte) []byte {
			var w bytes.Buffer
			z := writers[name](&w)
			z.Write(b)
			z.Close()
			return w.Bytes()
		}
		n := byte(0x10)
		for name := range writers {
			for _, isJSON := range []bool{false, true} {
				n++
				tid := id(16, n)
				var body []byte
				ct := "application/x-protobuf"
				if isJSON {
					body, ct = []byte(otlpJSON(hex.EncodeToString(tid), "0102030405060708", "")), "application/json"
				} else {
					body = mustMarshal(t, request("", span(tid, id(8, 9), nil, "z", 1, 2, okCode)))
				}
				a := post(t, app, map[string]string{"Content-Type": ct, ExperimentHeader: "1", "Content-Encoding": header[name]}, compress(name, body))
				if a.status != 200 {
					t.Errorf("%s json=%v: %d %s", name, isJSON, a.status, a.body)
				} else if _, ok := readTrace(t, db, "tr-"+hex.EncodeToString(tid)); !ok {
					t.Errorf("%s json=%v: no trace written", name, isJSON)
				}
			}
		}
	})
}

// TestExportRejects: upstream's checks and messages, each writing nothing.
func TestExportRejects(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		addExperiment(t, db, 1, "active")
		addExperiment(t, db, 2, "deleted")
		app := newApp(db)
		good := mustMarshal(t, request("", span(id(16, 7), id(8, 7), nil, "r", 1, 2, okCode)))
		pb := pbHeaders("1")
		with := func(h map[string]string, k, v string) map[string]string {
			out := map[string]string{}
			for a, b := range h {
				out[a] = b
			}
			if v == "" {
				delete(out, k)
			} else {
				out[k] = v
			}
			return out
		}
		bad16 := bytes.Repeat([]byte{0}, 16)
		for _, tc := range []struct {
			name    string
			headers map[string]string
			body    []byte
			status  int
			detail  string // {"detail": ...} answer
			code    string // MLflow error_code answer
		}{
			{"no content type", with(pb, "Content-Type", ""), good, 400, "Invalid Content-Type: None. Expected: application/x-protobuf or application/json", ""},
			{"text/plain", with(pb, "Content-Type", "text/plain"), good, 400, "Invalid Content-Type: text/plain. Expected: application/x-protobuf or application/json", ""},
			{"case differs", with(pb, "Content-Type", "Application/X-Protobuf"), good, 400, "Invalid Content-Type: Application/X-Protobuf. Expected: application/x-protobuf or application/json", ""},
			{"malformed protobuf", pb, []byte("this is not valid protobuf data\xff\xff\xff"), 400, "Invalid OpenTelemetry format", ""},
			{"truncated protobuf", pb, good[:len(good)-3], 400, "Invalid OpenTelemetry format", ""},
			{"empty request", pb, nil, 400, "Invalid OpenTelemetry format - no spans found", ""},
			{"malformed JSON", with(pb, "Content-Type", "application/json"), []byte(`{"resourceSpans": [`), 400, "Invalid OpenTelemetry format", ""},
			{"JSON wrong type", with(pb, "Content-Type", "application/json"), []byte(`{"resourceSpans": "x"}`), 400, "Invalid OpenTelemetry format", ""},
			{"JSON not hex id", with(pb, "Content-Type", "application/json"), []byte(otlpJSON("zz", "0102030405060708", "")), 400, "Invalid OpenTelemetry format", ""},
			{"JSON no spans", with(pb, "Content-Type", "application/json"), []byte(`{}`), 400, "Invalid OpenTelemetry format - no spans found", ""},
			{"JSON invalid UTF-8", with(pb, "Content-Type", "application/json"), []byte("{\"resourceSpans\": [{\"resource\": {\"attributes\": [{\"key\": \"\xff\"}]}}]}"), 400, "Invalid OpenTelemetry format", ""},
			{"bad gzip", with(pb, "Content-Encoding", "gzip"), good, 400, "Failed to decompress gzip payload", ""},
			{"bad deflate", with(pb, "Content-Encoding", "deflate"), []byte{0xff, 0xfe, 0xfd}, 400, "Failed to decompress deflate payload", ""},
			{"br", with(pb, "Content-Encoding", "br"), good, 400, "Unsupported Content-Encoding: br", ""},
			{"zero trace id", pb, mustMarshal(t, request("", span(bad16, id(8, 1), nil, "r", 1, 2, okCode))), 422, "Cannot convert OpenTelemetry span to MLflow span", ""},
			{"short span id", pb, mustMarshal(t, request("", span(id(16, 3), id(4, 1), nil, "r", 1, 2, okCode))), 422, "Cannot convert OpenTelemetry span to MLflow span", ""},
			{"unknown experiment", pbHeaders("99"), good, 404, "", "RESOURCE_DOES_NOT_EXIST"},
			{"SQL in experiment", pbHeaders("1 OR 1=1"), good, 404, "", "RESOURCE_DOES_NOT_EXIST"},
			{"deleted experiment", pbHeaders("2"), good, 400, "", "INVALID_PARAMETER_VALUE"},
		} {
			a := post(t, app, tc.headers, tc.body)
			if a.status != tc.status {
				t.Errorf("%s: %d %s, want %d", tc.name, a.status, a.body, tc.status)
				continue
			}
			got := a.json(t)
			if tc.detail != "" && got["detail"] != tc.detail {
				t.Errorf("%s: %s", tc.name, a.body)
			}
			if tc.code != "" && got["error_code"] != tc.code {
				t.Errorf("%s: %s", tc.name, a.body)
			}
		}
		// The header is checked first, with FastAPI's validation answer.
		a := post(t, app, map[string]string{"Content-Type": "text/plain"}, good)
		if a.status != 422 || !strings.Contains(string(a.body), `"loc":["header","x-mlflow-experiment-id"]`) {
			t.Errorf("missing header: %d %s", a.status, a.body)
		}
		if n := count(t, db, "trace_info") + count(t, db, "spans") + count(t, db, "trace_tags"); n != 0 {
			t.Errorf("rejected requests wrote %d rows", n)
		}
	})
}

// TestCollisionIsAtomic: a trace id that lives in another experiment fails
// the whole request; the request's other, new trace is not written either.
func TestCollisionIsAtomic(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		addExperiment(t, db, 1, "active")
		addExperiment(t, db, 2, "active")
		app := newApp(db)
		shared := id(16, 0x55)
		if a := post(t, app, pbHeaders("1"), mustMarshal(t, request("", span(shared, id(8, 1), nil, "r", 1, 2, okCode)))); a.status != 200 {
			t.Fatalf("first: %d %s", a.status, a.body)
		}
		fresh := id(16, 0x66)
		body := mustMarshal(t, request("", span(fresh, id(8, 1), nil, "new", 1, 2, okCode), span(shared, id(8, 2), id(8, 1), "child", 1, 2, okCode)))
		a := post(t, app, pbHeaders("2"), body)
		if a.status != 400 || a.json(t)["error_code"] != "INVALID_PARAMETER_VALUE" || !strings.Contains(string(a.body), "already exists in experiment 1") {
			t.Fatalf("collision: %d %s", a.status, a.body)
		}
		if _, ok := readTrace(t, db, "tr-"+hex.EncodeToString(fresh)); ok {
			t.Error("the request's other trace was written")
		}
		if n := len(readSpans(t, db, "tr-"+hex.EncodeToString(shared))); n != 1 {
			t.Errorf("shared trace has %d spans, want 1", n)
		}
		if tr, _ := readTrace(t, db, "tr-"+hex.EncodeToString(shared)); tr.exp != 1 {
			t.Errorf("shared trace moved: %+v", tr)
		}
	})
}

// manySpans is a request of n spans over n/100 traces (root + children).
func manySpans(n int) *collectorpb.ExportTraceServiceRequest {
	spans := make([]*tracepb.Span, 0, n)
	for i := 0; i < n; i++ {
		tid := make([]byte, 16)
		tid[0], tid[1], tid[15] = byte(i/100>>8), byte(i/100), 1
		sid := make([]byte, 8)
		sid[0], sid[1], sid[2], sid[7] = byte(i>>16), byte(i>>8), byte(i), 1
		var parent []byte
		if i%100 != 0 {
			parent = make([]byte, 8)
			j := i - i%100
			parent[0], parent[1], parent[2], parent[7] = byte(j>>16), byte(j>>8), byte(j), 1
		}
		spans = append(spans, span(tid, sid, parent, "s", uint64(1e9+i), uint64(2e9+i), okCode, kv("i", str("v"))))
	}
	return request("", spans...)
}

// TestSpanCap: a request at the span cap is written whole; one above it
// (100,000 spans, a few MB of protobuf) is refused with 413 before any
// database work, so SQLite alone shows it.
func TestSpanCap(t *testing.T) {
	db, err := metadata.Open(context.Background(), "sqlite:///"+t.TempDir()+"/ferry.db", domaintest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	addExperiment(t, db, 1, "active")
	app := newApp(db)
	// Serialized messages concatenate into one whose repeated fields hold
	// them all: 100,000 one-span resource entries, cheap to build.
	one := mustMarshal(t, request("", span(id(16, 9), id(8, 9), nil, "s", 1, 2, okCode)))
	a := post(t, app, pbHeaders("1"), bytes.Repeat(one, 100_000))
	if a.status != 413 || !strings.Contains(string(a.body), "Too many spans") {
		t.Fatalf("100,000 spans: %d %s", a.status, a.body)
	}
	if n := count(t, db, "spans"); n != 0 {
		t.Fatalf("refused request wrote %d spans", n)
	}
	if a := post(t, app, pbHeaders("1"), mustMarshal(t, manySpans(MaxSpans))); a.status != 200 {
		t.Fatalf("%d spans: %d %s", MaxSpans, a.status, a.body)
	}
	if n, tr := count(t, db, "spans"), count(t, db, "trace_info"); n != MaxSpans || tr != MaxSpans/100 {
		t.Errorf("wrote %d spans, %d traces", n, tr)
	}
}

// TestManyRowsPerRequest: a request larger than one multi-row statement
// (1,201 spans over 13 traces: three span statements) is written whole on
// every database.
func TestManyRowsPerRequest(t *testing.T) {
	body := mustMarshal(t, manySpans(1201))
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		addExperiment(t, db, 1, "active")
		if a := post(t, newApp(db), pbHeaders("1"), body); a.status != 200 {
			t.Fatalf("1,201 spans: %d %s", a.status, a.body)
		}
		if n, tr := count(t, db, "spans"), count(t, db, "trace_info"); n != 1201 || tr != 13 {
			t.Errorf("wrote %d spans, %d traces", n, tr)
		}
		if n := count(t, db, "trace_tags"); n != 13*3 {
			t.Errorf("%d trace tags, want 39", n)
		}
	})
}

// TestConcurrentSpansOfOneTrace: spans of one new trace arriving in
// concurrent requests (several exporters, or batches sent at once) all
// land, and the trace's info merges them: earliest start, latest end, the
// root's outcome, token usage summed. A request may be told to retry (503, which exporters
// do) when the database breaks a lock cycle; none may fail otherwise.
func TestConcurrentSpansOfOneTrace(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		addExperiment(t, db, 1, "active")
		app := newApp(db)
		tid := id(16, 0x77)
		const n = 8
		errs := make(chan string, n)
		for i := range n {
			go func() {
				var parent []byte
				if i > 0 {
					parent = id(8, 1)
				}
				usage := fmt.Sprintf(`{"input_tokens": %d, "output_tokens": 1, "total_tokens": %d}`, i+1, i+2)
				body := mustMarshal(t, request("", span(tid, id(8, byte(i+1)), parent, "s", uint64(10+i)*1e9, uint64(20+i)*1e9, okCode,
					kv("mlflow.chat.tokenUsage", str(usage)))))
				for range 5 {
					a := post(t, app, pbHeaders("1"), body)
					if a.status == 200 {
						errs <- ""
						return
					}
					if a.status != 503 {
						errs <- fmt.Sprintf("span %d: %d %s", i, a.status, a.body)
						return
					}
				}
				errs <- fmt.Sprintf("span %d: still 503 after 5 tries", i)
			}()
		}
		for range n {
			if e := <-errs; e != "" {
				t.Error(e)
			}
		}
		traceID := "tr-" + hex.EncodeToString(tid)
		if got := len(readSpans(t, db, traceID)); got != n {
			t.Errorf("%d spans stored, want %d", got, n)
		}
		tr, _ := readTrace(t, db, traceID)
		if tr.ts != 10_000 || tr.exec.Int64 != 17_000 || tr.status != "OK" {
			t.Errorf("trace info: %+v", tr)
		}
		// Token usage sums survive the concurrent read-modify-writes.
		if u := tr.metadata["mlflow.trace.tokenUsage"]; u != `{"input_tokens": 36, "output_tokens": 8, "total_tokens": 44}` {
			t.Errorf("token usage %s", u)
		}
	})
}
