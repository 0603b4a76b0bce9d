package tracing

import (
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// TestHostileInput: malformed bodies, invalid UTF-8, oversized bodies and
// values, SQL text and traversal in ids answer 4xx and write nothing.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		exp := c.experiment("h", "/tmp/h", "active")
		c.startTrace(tid(1), exp, 1, "")
		loc := `"trace_location": {"mlflow_experiment": {"experiment_id": "` + exp + `"}}`
		for _, tc := range []struct{ method, path, ctype, body string }{
			{"POST", "/api/3.0/mlflow/traces", "application/json", "{\"trace\": {\"trace_info\": {\"trace_id\": \"tr-\xff\", " + loc + "}}}"},
			{"POST", "/api/3.0/mlflow/traces", "application/json", `{"trace": {"trace_info": {"trace_id": "tr-y", ` + loc + `, "tags": {"k": "\u0000"}}}}`},
			{"POST", "/api/3.0/mlflow/traces", "application/json", `[1, 2]`},
			{"POST", "/api/3.0/mlflow/traces", "text/plain", `{}`},
			{"POST", "/api/3.0/mlflow/traces", "application/json", `{"trace": {"trace_info": {"trace_id": "tr-y", ` + loc + `, "request_preview": 5}}}`},
			{"PATCH", "/api/3.0/mlflow/traces/" + tid(1) + "/tags", "application/json", "{\"key\": \"k\xfe\", \"value\": \"v\"}"},
			{"POST", "/api/3.0/mlflow/traces/search", "application/json", `{"locations": [{"mlflow_experiment": {"experiment_id": "` + exp + `"}}], "filter": "` + strings.Repeat("tags.a = 'b' AND ", 120) + `tags.a = 'b'"}`},
			{"POST", "/api/3.0/mlflow/traces/search", "application/json", `{"locations": [{"mlflow_experiment": {"experiment_id": "` + exp + `"}}], "filter": "tags.a = '` + strings.Repeat("x", 70000) + `'"}`},
			{"POST", "/api/3.0/mlflow/traces/search", "application/json", `{"locations": [5]}`},
			{"POST", "/api/3.0/mlflow/traces/" + tid(1) + "/assessments", "application/json", `{"assessment": {"assessment_name": "n", "feedback": {"value": "` + strings.Repeat("v", 64<<10) + `"}, "span_id": "` + strings.Repeat("s", 60) + `"}}`},
			{"GET", "/api/3.0/mlflow/traces/get?trace_id=" + strings.Repeat("9", 3000), "", ""},
			{"GET", "/api/3.0/mlflow/traces/batchGet?trace_ids=%FF", "", ""},
		} {
			st, body := c.Raw(tc.method, tc.path, tc.ctype, tc.body)
			if st < 400 || st >= 500 || !strings.Contains(body, "error_code") {
				short := tc.body
				if len(short) > 120 {
					short = short[:120]
				}
				t.Errorf("%s %s %q: %d %.200s", tc.method, tc.path[:min(len(tc.path), 80)], short, st, body)
			}
		}
		// A body over the JSON cap (32 MiB) is refused before parsing
		// (the wire layer is the same on every backend: checked once).
		if strings.HasSuffix(t.Name(), "sqlite") {
			if st, _ := c.Raw("POST", "/api/3.0/mlflow/traces", "application/json", `{"trace": {"pad": "`+strings.Repeat("x", 33<<20)+`"}}`); st < 400 || st >= 500 {
				t.Errorf("33 MiB body: %d", st)
			}
		}
		if n := c.count("SELECT COUNT(*) FROM trace_info"); n != 1 {
			t.Errorf("%d traces after hostile requests, want 1", n)
		}
		if n := c.count("SELECT COUNT(*) FROM assessments"); n != 0 {
			t.Errorf("%d assessments after hostile requests", n)
		}
	})
}
