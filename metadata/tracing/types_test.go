package tracing

import (
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// TestWrongTypeEveryRoute sends a value of every wrong JSON type in a
// string field of each trace route that reads one and wants upstream's
// type-error message, the same text tracking and the registry send.
func TestWrongTypeEveryRoute(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		exp := c.experiment("e", "/tmp/ferry-types", "active")
		c.startTrace(tid(1), exp, 100, "")
		loc := `"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "` + exp + `"}}]`
		c.CheckWrongTypes("/api", [][4]string{
			{"POST", "/3.0/mlflow/traces/search", "filter", loc},
			{"POST", "/3.0/mlflow/traces/search", "page_token", loc},
			{"POST", "/3.0/mlflow/traces/delete-traces", "experiment_id", `"request_ids": ["` + tid(1) + `"]`},
			{"PATCH", "/3.0/mlflow/traces/" + tid(1) + "/tags", "key", `"value": "v"`},
			{"PATCH", "/2.0/mlflow/traces/" + tid(1) + "/tags", "value", `"key": "k"`},
			{"POST", "/2.0/mlflow/traces/link-to-run", "run_id", `"trace_ids": ["` + tid(1) + `"]`},
			{"POST", "/2.0/mlflow/traces/link-prompts", "trace_id", ``},
			{"POST", "/3.0/mlflow/traces/calculate-filter-correlation", "filter_string1", `"experiment_ids": ["` + exp + `"], "filter_string2": "status = 'OK'"`},
			{"POST", "/3.0/mlflow/traces/metrics", "metric_name", `"experiment_ids": ["` + exp + `"], "view_type": "TRACES", "aggregations": [{"aggregation_type": "COUNT"}]`},
			{"GET", "/3.0/mlflow/traces/get", "trace_id", ``},
		})
		// Nothing above changed the trace.
		if out := c.ok("GET", "/3.0/mlflow/traces/"+tid(1), ""); len(obj(obj(out, "trace"), "trace_info")) == 0 {
			t.Errorf("trace: %v", out)
		}
	})
}
