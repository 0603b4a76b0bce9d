package tracking

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/stores"
)

// bulkSteps returns "runIndex:step" for each metric of a
// get-history-bulk-interval answer.
func bulkSteps(body map[string]any, runs ...string) []string {
	var out []string
	for _, m := range asList(body["metrics"]) {
		mm := m.(map[string]any)
		idx := -1
		for i, r := range runs {
			if mm["run_id"] == r {
				idx = i
			}
		}
		out = append(out, fmt.Sprintf("%d:%v", idx, mm["step"]))
	}
	return out
}

func TestMetricHistoryBulkInterval(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		a, _ := c.newRun(`{}`)
		bID, _ := c.newRun(`{}`)
		var ma, mb []string
		for s := 0; s < 10; s++ {
			ma = append(ma, fmt.Sprintf(`{"key": "loss", "value": %d, "timestamp": %d, "step": %d}`, s, 1000+s, s))
		}
		ma = append(ma, `{"key": "loss", "value": "NaN", "timestamp": 999, "step": 3}`, `{"key": "other", "value": 1, "timestamp": 1, "step": 4}`)
		for s := 5; s < 15; s++ {
			mb = append(mb, fmt.Sprintf(`{"key": "loss", "value": %d, "timestamp": %d, "step": %d}`, s, 2000+s, s))
		}
		c.mustPost("/runs/log-batch", `{"run_id": "`+a+`", "metrics": [`+strings.Join(ma, ",")+`]}`)
		c.mustPost("/runs/log-batch", `{"run_id": "`+bID+`", "metrics": [`+strings.Join(mb, ",")+`]}`)
		q := func(extra url.Values) (int, map[string]any) {
			v := url.Values{"run_ids": {a, bID}, "metric_key": {"loss"}}
			for k, vs := range extra {
				v[k] = vs
			}
			return c.get("/metrics/get-history-bulk-interval", v)
		}
		st, body := q(nil)
		got := bulkSteps(body, a, bID)
		want := []string{"0:0", "0:1", "0:2", "0:3", "0:3", "0:4", "0:5", "0:6", "0:7", "0:8", "0:9"}
		for s := 5; s < 15; s++ {
			want = append(want, fmt.Sprintf("1:%d", s))
		}
		if st != 200 || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("all: %d %v", st, got)
		}
		// Step 3 has two values: the NaN one (timestamp 999) comes first.
		m3 := asList(body["metrics"])[3].(map[string]any)
		if !jsonEqual(m3, map[string]any{"key": "loss", "value": "NaN", "timestamp": 999.0, "step": 3.0, "run_id": a}) {
			t.Errorf("NaN metric: %v", m3)
		}
		// 15 distinct steps sampled to 3: indices 0, 5, 10, plus the
		// last step and every run's first and last (9 is a's last, so
		// b's step 9 comes too).
		_, body = q(url.Values{"max_results": {"3"}})
		if got := bulkSteps(body, a, bID); strings.Join(got, ",") != "0:0,0:5,0:9,1:5,1:9,1:10,1:14" {
			t.Errorf("sampled: %v", got)
		}
		_, body = q(url.Values{"start_step": {"4"}, "end_step": {"6"}})
		if got := bulkSteps(body, a, bID); strings.Join(got, ",") != "0:4,0:5,0:6,1:5,1:6" {
			t.Errorf("range: %v", got)
		}
		// Request order decides the run order; the ajax mirror answers too.
		st, out := c.Do(http.MethodGet, "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?"+url.Values{
			"run_ids": {bID, a}, "metric_key": {"loss"}, "start_step": {"9"}, "end_step": {"9"}}.Encode(), "", "")
		if got := bulkSteps(out, a, bID); st != 200 || strings.Join(got, ",") != "1:9,0:9" {
			t.Errorf("order: %d %v", st, got)
		}
		// Unknown runs, keys and hostile ids are simply empty.
		for _, ids := range [][]string{{"nope"}, {strings.ToUpper(a)}, {"' OR '1'='1"}, {a + "%"}} {
			st, out := c.get("/metrics/get-history-bulk-interval", url.Values{"run_ids": ids, "metric_key": {"loss"}})
			if st != 200 || len(out) != 0 {
				t.Errorf("%v: %d %v", ids, st, out)
			}
		}
		if st, out := q(url.Values{"metric_key": {"LOSS"}}); st != 200 || len(out) != 0 {
			t.Errorf("key case: %d %v", st, out)
		}
		many := make([]string, 101)
		for i := range many {
			many[i] = fmt.Sprintf("r%d", i)
		}
		for _, tc := range []struct {
			name string
			q    url.Values
			msg  string
		}{
			{"no runs", url.Values{"metric_key": {"loss"}}, "Missing value for required parameter 'run_ids'. See the API docs"},
			{"no key", url.Values{"run_ids": {a}}, "Missing value for required parameter 'metric_key'"},
			{"101 runs", url.Values{"run_ids": many, "metric_key": {"loss"}}, "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received 101 run_ids. See the API docs"},
			{"max 0", url.Values{"run_ids": {a}, "metric_key": {"loss"}, "max_results": {"0"}}, "max_results must be between 1 and 2500. See the API docs"},
			{"max 2501", url.Values{"run_ids": {a}, "metric_key": {"loss"}, "max_results": {"2501"}}, "max_results must be between 1 and 2500."},
			{"max text", url.Values{"run_ids": {a}, "metric_key": {"loss"}, "max_results": {"1; DROP TABLE metrics"}}, "parameter 'max_results'"},
			{"start only", url.Values{"run_ids": {a}, "metric_key": {"loss"}, "start_step": {"1"}}, "If either start step or end step are specified, both must be specified."},
			{"end only", url.Values{"run_ids": {a}, "metric_key": {"loss"}, "end_step": {"1"}}, "both must be specified"},
			{"reversed", url.Values{"run_ids": {a}, "metric_key": {"loss"}, "start_step": {"5"}, "end_step": {"2"}}, "end_step must be greater than start_step. Found start_step=5 and end_step=2."},
			{"step text", url.Values{"run_ids": {a}, "metric_key": {"loss"}, "start_step": {"x"}, "end_step": {"2"}}, `Invalid value "x" for parameter 'start_step'`},
			{"step huge", url.Values{"run_ids": {a}, "metric_key": {"loss"}, "start_step": {"1e400"}, "end_step": {"2"}}, "parameter 'start_step'"},
			{"nul", url.Values{"run_ids": {"a\x00"}, "metric_key": {"loss"}}, "NUL"},
		} {
			st, out := c.get("/metrics/get-history-bulk-interval", tc.q)
			if msg, _ := out["message"].(string); st != 400 || out["error_code"] != "INVALID_PARAMETER_VALUE" || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s: %d %v", tc.name, st, out)
			}
		}
		// A JSON body (GET without a query): run_ids from the body, the
		// step range ignored as upstream reads it from the query only.
		st, out = c.Do(http.MethodGet, "/api/2.0/mlflow/metrics/get-history-bulk-interval", "application/json",
			`{"run_ids": ["`+a+`"], "metric_key": "loss", "start_step": 1, "end_step": 1}`)
		if st != 200 || len(asList(out["metrics"])) != 11 {
			t.Errorf("body: %d %v", st, out)
		}
		st, out = c.Do(http.MethodGet, "/api/2.0/mlflow/metrics/get-history-bulk-interval", "application/json", `{"run_ids": "x", "metric_key": "loss"}`)
		if st != 400 {
			t.Errorf("run_ids not a list: %d %v", st, out)
		}
	})
}

func TestSampledSteps(t *testing.T) {
	t.Parallel()
	hist := map[string][]MetricWithRunID{}
	for s := int64(0); s < 100; s += 2 {
		hist["r"] = append(hist["r"], MetricWithRunID{Step: s})
	}
	// [10, 60] holds 26 steps; 5 samples from index 5 on, stepping 5.2,
	// and upstream's "idx < count" bound drops none here; plus the last.
	got := sampledSteps([]string{"r"}, hist, 10, 60, true, 5)
	want := []int64{10, 20, 30, 40, 50, 60}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for _, s := range want {
		if !got[s] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
	if got := sampledSteps([]string{"x"}, hist, 0, 0, false, 10); len(got) != 0 {
		t.Errorf("no history: %v", got)
	}
}

func TestLogModel(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		id, _ := c.newRun(`{}`)
		m1 := `{"artifact_path": "model", "flavors": {"python_function": {"loader_module": "mlflow.sklearn", "x": 1.5e-7, "n": 12345678901234567890, "f": 2.0}}, "run_id": "` + id +
			`", "utc_time_created": "2024-01-01 00:00:00.000000", "model_uuid": "\u00fc", "saved_input_example_info": null, "ok": true}`
		c.mustPost("/runs/log-model", `{"run_id": "`+id+`", "model_json": `+jsonString(m1)+`}`)
		tagOf := func() string {
			for _, tg := range runData(c.run(id), "tags") {
				kv := tg.(map[string]any)
				if kv["key"] == "mlflow.log-model.history" {
					return kv["value"].(string)
				}
			}
			return ""
		}
		e1 := `{"artifact_path": "model", "flavors": {"python_function": {"loader_module": "mlflow.sklearn", "x": 1.5e-07, "n": 12345678901234567890, "f": 2.0}}, "run_id": "` + id +
			`", "utc_time_created": "2024-01-01 00:00:00.000000", "model_uuid": "\u00fc", "saved_input_example_info": null, "ok": true}`
		if got := tagOf(); got != "["+e1+"]" {
			t.Fatalf("tag:\n got %s\nwant [%s]", got, e1)
		}
		m2 := `{"run_id":"` + id + `","artifact_path":"m2","utc_time_created":"t","flavors":{}}`
		c.mustPost("/runs/log-model", `{"run_id": "`+id+`", "model_json": `+jsonString(m2)+`}`)
		e2 := `{"run_id": "` + id + `", "artifact_path": "m2", "utc_time_created": "t", "flavors": {}}`
		if got := tagOf(); got != "["+e1+", "+e2+"]" {
			t.Fatalf("appended tag: %s", got)
		}
		other, _ := c.newRun(`{}`)
		c.mustPost("/runs/set-tag", `{"run_id": "`+other+`", "key": "mlflow.log-model.history", "value": "not json"}`)
		gone, _ := c.newRun(`{}`)
		c.mustPost("/runs/delete", `{"run_id": "`+gone+`"}`)
		big := `{"artifact_path": "` + strings.Repeat("a", 8000) + `", "flavors": {}, "run_id": "x", "utc_time_created": "t"}`
		c.expectErrors([]errCase{
			{"no model_json", "/runs/log-model", `{"run_id": "` + id + `"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'model_json'"},
			{"no run_id", "/runs/log-model", `{"run_uuid": "` + id + `", "model_json": "{}"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'"},
			{"model_json number", "/runs/log-model", `{"run_id": "` + id + `", "model_json": 5}`, 400, "INVALID_PARAMETER_VALUE", "Invalid value 5 for parameter 'model_json' supplied: Hint: Value was of type 'int'."},
			{"malformed", "/runs/log-model", `{"run_id": "` + id + `", "model_json": "{"}`, 400, "INVALID_PARAMETER_VALUE", "Malformed model info. \n { \n is not a valid JSON."},
			{"a list", "/runs/log-model", `{"run_id": "` + id + `", "model_json": "[1]"}`, 400, "INVALID_PARAMETER_VALUE", "Malformed model info."},
			{"trailing", "/runs/log-model", `{"run_id": "` + id + `", "model_json": "{} {}"}`, 400, "INVALID_PARAMETER_VALUE", "Malformed model info."},
			{"missing fields", "/runs/log-model", `{"run_id": "` + id + `", "model_json": "{\"run_id\": \"x\"}"}`, 400, "INVALID_PARAMETER_VALUE",
				"Model json is missing mandatory fields: {'artifact_path', 'flavors', 'utc_time_created'}"},
			{"unknown run", "/runs/log-model", `{"run_id": "nope' OR '1'='1", "model_json": ` + jsonString(m2) + `}`, 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=nope' OR '1'='1 not found"},
			{"deleted run", "/runs/log-model", `{"run_id": "` + gone + `", "model_json": ` + jsonString(m2) + `}`, 400, "INVALID_PARAMETER_VALUE", "must be in the 'active' state"},
			{"bad history", "/runs/log-model", `{"run_id": "` + other + `", "model_json": ` + jsonString(m2) + `}`, 400, "INVALID_PARAMETER_VALUE", "is not a JSON list"},
			{"too long", "/runs/log-model", `{"run_id": "` + id + `", "model_json": ` + jsonString(big) + `}`, 400, "INVALID_PARAMETER_VALUE", "'mlflow.log-model.history' exceeds the maximum length of 8000 characters"},
			{"invalid utf8", "/runs/log-model", "{\"run_id\": \"" + id + "\", \"model_json\": \"\xff\"}", 400, "INVALID_PARAMETER_VALUE", "UTF-8"},
		})
		if got := tagOf(); got != "["+e1+", "+e2+"]" {
			t.Errorf("tag changed by failed calls: %s", got)
		}
	})
}

func TestLoggedModelMetrics(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)
		id, _ := c.newRun(`{"experiment_id": "` + exp + `"}`)
		mid := c.mustPost("/logged-models", `{"experiment_id": "`+exp+`", "source_run_id": "`+id+`"}`)["model"].(map[string]any)["info"].(map[string]any)["model_id"].(string)
		c.mustPost("/runs/log-metric", `{"run_id": "`+id+`", "key": "acc", "value": 0.9, "timestamp": 10, "step": 1, "model_id": "`+mid+`", "dataset_name": "ds", "dataset_digest": "d1"}`)
		c.mustPost("/runs/log-metric", `{"run_id": "`+id+`", "key": "acc", "value": 0.9, "timestamp": 10, "step": 1, "model_id": "`+mid+`", "dataset_name": "ds", "dataset_digest": "d1"}`) // duplicate
		c.mustPost("/runs/log-batch", `{"run_id": "`+id+`", "metrics": [
			{"key": "loss", "value": "NaN", "timestamp": 11, "step": 2, "model_id": "`+mid+`"},
			{"key": "loss", "value": "NaN", "timestamp": 11, "step": 2, "model_id": "`+mid+`"},
			{"key": "loss", "value": "Infinity", "timestamp": 12, "step": 3, "model_id": "`+mid+`"},
			{"key": "plain", "value": 1, "timestamp": 12, "step": 3}]}`)
		st, out := c.get("/logged-models/"+mid, nil)
		metrics := out["model"].(map[string]any)["data"].(map[string]any)["metrics"]
		want := []any{
			map[string]any{"key": "acc", "value": 0.9, "timestamp": 10.0, "step": 1.0, "dataset_name": "ds", "dataset_digest": "d1", "model_id": mid, "run_id": id},
			map[string]any{"key": "loss", "value": 0.0, "timestamp": 11.0, "step": 2.0, "model_id": mid, "run_id": id},
			map[string]any{"key": "loss", "value": maxFloat, "timestamp": 12.0, "step": 3.0, "model_id": mid, "run_id": id},
		}
		if st != 200 || !jsonEqual(metrics, want) {
			t.Fatalf("model metrics: %d\n got %v\nwant %v", st, metrics, want)
		}
		// The run got all four keys' latest values as usual.
		if n := len(runData(c.run(id), "metrics")); n != 3 {
			t.Errorf("run metrics: %d", n)
		}
		// Model metric search filters see them.
		found := c.mustPost("/logged-models/search", `{"experiment_ids": ["`+exp+`"], "filter": "metrics.acc > 0.5"}`)
		if len(asList(found["models"])) != 1 {
			t.Errorf("search by model metric: %v", found)
		}
		c.expectErrors([]errCase{
			{"unknown model", "/runs/log-metric", `{"run_id": "` + id + `", "key": "z", "value": 1, "timestamp": 1, "model_id": "m-nope"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Logged model with ID 'm-nope' not found."},
			{"unknown model batch", "/runs/log-batch", `{"run_id": "` + id + `", "metrics": [{"key": "z", "value": 1, "timestamp": 1}, {"key": "z", "value": 2, "timestamp": 2, "model_id": "x' OR '1'='1"}]}`, 404, "RESOURCE_DOES_NOT_EXIST", "not found"},
			{"model case", "/runs/log-metric", `{"run_id": "` + id + `", "key": "z", "value": 1, "timestamp": 1, "model_id": "` + strings.ToUpper(mid) + `"}`, 404, "RESOURCE_DOES_NOT_EXIST", "not found"},
			{"model id long", "/runs/log-metric", `{"run_id": "` + id + `", "key": "z", "value": 1, "timestamp": 1, "model_id": "` + strings.Repeat("m", 37) + `"}`, 400, "INVALID_PARAMETER_VALUE", "'model_id' exceeds the maximum length of 36"},
			{"digest long", "/runs/log-batch", `{"run_id": "` + id + `", "metrics": [{"key": "z", "value": 1, "timestamp": 1, "model_id": "` + mid + `", "dataset_digest": "` + strings.Repeat("d", 37) + `"}]}`, 400, "INVALID_PARAMETER_VALUE", "'metrics[0].dataset_digest' exceeds"},
			{"model id type", "/runs/log-metric", `{"run_id": "` + id + `", "key": "z", "value": 1, "timestamp": 1, "model_id": 5}`, 400, "INVALID_PARAMETER_VALUE", "'model_id'"},
		})
		// The failed batch left nothing behind (z was never logged).
		if st, out := c.get("/metrics/get-history", url.Values{"run_id": {id}, "metric_key": {"z"}}); st != 200 || len(out) != 0 {
			t.Errorf("failed batch wrote: %d %v", st, out)
		}
	})
}

func TestLoggedModelArtifacts(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		ctx := context.Background()
		raw, err := stores.Open(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		dest := stores.Instrument(raw, "local", stores.NewMetrics(prometheus.NewRegistry()), quiet)
		api := NewAPI(db, APIConfig{DefaultArtifactRoot: "mlflow-artifacts:/", ServeArtifacts: true, Log: quiet, Artifacts: dest, OpenStore: testOpener(t)})
		api.now = func() time.Time { return time.UnixMilli(1700000000123) }
		c := &apiClient{domaintest.NewClient(t, api.Handlers())}
		exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)
		mid := c.mustPost("/logged-models", `{"experiment_id": "`+exp+`"}`)["model"].(map[string]any)["info"].(map[string]any)["model_id"].(string)
		base := exp + "/models/" + mid + "/artifacts/"
		for k, v := range map[string]string{"MLmodel": "flavors: {}", "data/model.pkl": "xyz", "empty": ""} {
			if err := dest.Put(ctx, base+k, strings.NewReader(v), int64(len(v))); err != nil {
				t.Fatal(err)
			}
		}
		path := "/logged-models/" + mid + "/artifacts/directories"
		root := "mlflow-artifacts:/" + exp + "/models/" + mid + "/artifacts"
		st, out := c.get(path, nil)
		want := map[string]any{"root_uri": root, "files": []any{
			map[string]any{"path": "MLmodel", "is_dir": false, "file_size": 11.0},
			map[string]any{"path": "data", "is_dir": true},
			map[string]any{"path": "empty", "is_dir": false},
		}}
		if st != 200 || !jsonEqual(out, want) {
			t.Fatalf("root: %d %v", st, out)
		}
		st, out = c.get(path, url.Values{"artifact_directory_path": {"data"}, "page_token": {"x"}})
		if st != 200 || !jsonEqual(out["files"], []any{map[string]any{"path": "data/model.pkl", "is_dir": false, "file_size": 3.0}}) {
			t.Fatalf("dir: %d %v", st, out)
		}
		if st, out = c.get(path, url.Values{"artifact_directory_path": {"nope"}}); st != 200 || !jsonEqual(out, map[string]any{"root_uri": root}) {
			t.Errorf("missing dir: %d %v", st, out)
		}
		st, out = c.Do(http.MethodGet, "/ajax-api/2.0/mlflow"+path, "", "")
		if st != 200 || len(asList(out["files"])) != 3 {
			t.Errorf("ajax: %d %v", st, out)
		}
		for _, bad := range []string{"../x", "/etc", "%2E%2E/x", "a/../../b", "..", "data/../../../" + mid} {
			if st, out = c.get(path, url.Values{"artifact_directory_path": {bad}}); st != 400 || out["message"] != "Invalid path" {
				t.Errorf("path %q: %d %v", bad, st, out)
			}
		}
		if st, out = c.get(path, url.Values{"artifact_directory_path": {"a\x00"}}); st != 400 {
			t.Errorf("NUL: %d %v", st, out)
		}
		for _, id := range []string{"m-nope", strings.ToUpper(mid), "x' OR '1'='1"} {
			if st, out = c.get("/logged-models/"+url.PathEscape(id)+"/artifacts/directories", nil); st != 404 || out["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
				t.Errorf("model %q: %d %v", id, st, out)
			}
		}
		if st, out = c.send(http.MethodDelete, "/logged-models/"+mid, ``); st != 200 {
			t.Fatalf("delete: %d %v", st, out)
		}
		if st, _ = c.get(path, nil); st != 404 {
			t.Errorf("deleted model: %d", st)
		}
	})
}
