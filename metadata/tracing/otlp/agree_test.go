package otlp

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/tracing"
)

// TestStartTraceAndSpansAgree: an MLflow client both exports a trace's
// spans to /v1/traces and calls start-trace (v3) with the final info; the
// two requests race, so either may create the trace_info row. The stored
// trace info (as traces/get answers it), its tags and metadata must be the
// same whichever came first: start-trace upserts over a row the spans
// made, and its mlflow.trace.infoFinalized marker keeps later spans from
// overwriting the time range, usage, cost, session and user.
func TestStartTraceAndSpansAgree(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		addExperiment(t, db, 1, "active")
		otlpApp := newApp(db)
		c := domaintest.NewClient(t, tracing.NewAPI(db, tracing.Config{Log: domaintest.Quiet}).Handlers())
		run := func(b byte, spansFirst bool) map[string]any {
			tr := id(16, b)
			traceID := "tr-" + hex.EncodeToString(tr)
			// The spans say something else than the final info on every
			// field start-trace owns, so a wrong winner shows.
			root := span(tr, id(8, 1), nil, "agent", 1_700_000_000_000_000_000, 1_700_000_009_000_000_000, tracepb.Status_STATUS_CODE_ERROR,
				kv("mlflow.spanInputs", str(`{"q": "from spans"}`)), kv("mlflow.spanOutputs", str(`"spans answer"`)),
				kv("session.id", str("s-spans")), kv("user.id", str("u-spans")), kv("mlflow.traceTag.team", str("ml")))
			child := span(tr, id(8, 2), id(8, 1), "llm", 1_700_000_001_000_000_000, 1_700_000_002_000_000_000, tracepb.Status_STATUS_CODE_OK,
				kv("mlflow.chat.tokenUsage", str(`{"input_tokens": 999, "output_tokens": 1, "total_tokens": 1000}`)),
				kv("mlflow.llm.cost", str(`{"input_cost": 1.5, "output_cost": 0.5, "total_cost": 2.0}`)))
			exportSpans := func() {
				if a := post(t, otlpApp, pbHeaders("1"), mustMarshal(t, request("", root, child))); a.status != 200 {
					t.Fatalf("export: %d %s", a.status, a.body)
				}
			}
			start := func() {
				body := fmt.Sprintf(`{"trace": {"trace_info": {"trace_id": %q, "trace_location": {"mlflow_experiment": {"experiment_id": "1"}},
"request_time": "2023-11-14T22:13:20.000Z", "execution_duration": "2.5s", "state": "OK", "request_preview": "{\"q\": \"final\"}", "response_preview": "\"final answer\"",
"client_request_id": "cr-1", "tags": {"mlflow.traceName": "agent", "user-tag": "u"},
"trace_metadata": {"mlflow.trace_schema.version": "3", "mlflow.trace.session": "s-final", "mlflow.trace.user": "u-final",
"mlflow.trace.tokenUsage": "{\"input_tokens\": 10, \"output_tokens\": 5, \"total_tokens\": 15}", "mlflow.trace.cost": "{\"input_cost\": 0.1, \"output_cost\": 0.2, \"total_cost\": 0.3}"}}}}`, traceID)
				if st, out := c.Do("POST", "/api/3.0/mlflow/traces", "application/json", body); st != 200 {
					t.Fatalf("start: %d %v", st, out)
				}
			}
			if spansFirst {
				exportSpans()
				start()
			} else {
				start()
				exportSpans()
			}
			st, out := c.Do("GET", "/api/3.0/mlflow/traces/"+traceID, "", "")
			if st != 200 {
				t.Fatalf("get: %d %v", st, out)
			}
			info := out["trace"].(map[string]any)["trace_info"].(map[string]any)
			// Only the id differs between the two traces.
			raw, _ := json.Marshal(info)
			norm := map[string]any{}
			if err := json.Unmarshal([]byte(strings.ReplaceAll(string(raw), traceID, "tr-X")), &norm); err != nil {
				t.Fatal(err)
			}
			if n := len(readSpans(t, db, traceID)); n != 2 {
				t.Errorf("spans first=%v: %d span rows", spansFirst, n)
			}
			return norm
		}
		a, b := run(0xa1, true), run(0xa2, false)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("trace info differs with the order:\n spans first %s\n start first %s", ja, jb)
		}
		md := a["trace_metadata"].(map[string]any)
		tags := a["tags"].(map[string]any)
		if a["request_time"] != "2023-11-14T22:13:20Z" && a["request_time"] != "2023-11-14T22:13:20.000Z" ||
			a["execution_duration"] != "2.500s" || a["state"] != "OK" || a["request_preview"] != `{"q": "final"}` ||
			md["mlflow.trace.session"] != "s-final" || md["mlflow.trace.user"] != "u-final" || md["mlflow.trace.infoFinalized"] != "true" ||
			md["mlflow.trace.tokenUsage"] != `{"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}` ||
			tags["team"] != "ml" || tags["user-tag"] != "u" || tags["mlflow.trace.spansLocation"] != "TRACKING_STORE" {
			t.Fatalf("final info is not start-trace's (with the spans' tags): %s", ja)
		}
	})
}
