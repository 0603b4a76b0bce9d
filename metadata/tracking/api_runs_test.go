package tracking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

func (c *apiClient) run(id string) map[string]any {
	c.T.Helper()
	st, body := c.get("/runs/get", url.Values{"run_id": {id}})
	if st != 200 {
		c.T.Fatalf("get run %s: %d %v", id, st, body)
	}
	return body["run"].(map[string]any)
}

func (c *apiClient) newRun(body string) (string, map[string]any) {
	c.T.Helper()
	run := c.mustPost("/runs/create", body)["run"].(map[string]any)
	return run["info"].(map[string]any)["run_id"].(string), run
}

func runData(run map[string]any, field string) []any {
	d, _ := run["data"].(map[string]any)
	l, _ := d[field].([]any)
	return l
}

var runIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRunsCreateGet(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)

		id, run := c.newRun(`{"experiment_id": "` + exp + `", "user_id": "alice", "start_time": 1700000000999, "run_name": "r1",
			"tags": [{"key": "mlflow.source.name", "value": "x'); DELETE FROM runs;--"}, {"key": "b", "value": "1"}, {"key": "b", "value": "2"}]}`)
		if !runIDRe.MatchString(id) {
			t.Fatalf("run id %q", id)
		}
		info := map[string]any{
			"run_id": id, "run_uuid": id, "run_name": "r1", "experiment_id": exp, "user_id": "alice",
			"status": "RUNNING", "start_time": float64(1700000000999), "artifact_uri": "mlflow-artifacts:/" + exp + "/" + id + "/artifacts",
			"lifecycle_stage": "active",
		}
		tags := []any{
			map[string]any{"key": "b", "value": "2"},
			map[string]any{"key": "mlflow.runName", "value": "r1"},
			map[string]any{"key": "mlflow.source.name", "value": "x'); DELETE FROM runs;--"},
		}
		want := map[string]any{"info": info, "data": map[string]any{"tags": tags}, "inputs": map[string]any{}}
		if !jsonEqual(run, want) {
			t.Errorf("create:\n got %v\nwant %v", run, want)
		}
		want["outputs"] = map[string]any{}
		if got := c.run(id); !jsonEqual(got, want) {
			t.Errorf("get:\n got %v\nwant %v", got, want)
		}
		// run_uuid instead of run_id, the ajax mirror, and a JSON body on GET.
		st, body := c.get("/runs/get", url.Values{"run_uuid": {id}})
		if st != 200 || !jsonEqual(body["run"], want) {
			t.Errorf("get by run_uuid: %d %v", st, body)
		}
		st, body = c.Do(http.MethodGet, "/ajax-api/2.0/mlflow/runs/get", "application/json", `{"run_id": "`+id+`"}`)
		if st != 200 || !jsonEqual(body["run"], want) {
			t.Errorf("ajax get with body: %d %v", st, body)
		}

		// Defaults: experiment 0, start_time 0 and user_id "" emitted, a
		// generated name that is also the mlflow.runName tag.
		_, run = c.newRun(`{}`)
		info2 := run["info"].(map[string]any)
		name, _ := info2["run_name"].(string)
		if info2["experiment_id"] != "0" || info2["start_time"] != float64(0) || info2["user_id"] != "" || info2["status"] != "RUNNING" ||
			!regexp.MustCompile(`^[a-z]+-[a-z]+-\d+$`).MatchString(name) || len(name) > 20 || info2["end_time"] != nil {
			t.Errorf("defaults: %v", info2)
		}
		if !jsonEqual(runData(run, "tags"), []any{map[string]any{"key": "mlflow.runName", "value": name}}) {
			t.Errorf("generated name tag: %v", runData(run, "tags"))
		}
		// The name comes from the tag when run_name is absent, and both
		// may be given when equal.
		_, run = c.newRun(`{"tags": [{"key": "mlflow.runName", "value": "from-tag"}]}`)
		if run["info"].(map[string]any)["run_name"] != "from-tag" || len(runData(run, "tags")) != 1 {
			t.Errorf("name from tag: %v", run)
		}
		c.newRun(`{"run_name": "same", "tags": [{"key": "mlflow.runName", "value": "same"}]}`)
		// A JSON number for a string field is refused (3.11); start_time may be a string.
		_, run = c.newRun(`{"start_time": "42"}`)
		if run["info"].(map[string]any)["start_time"] != float64(42) {
			t.Errorf("string start_time: %v", run["info"])
		}

		c.expectErrors([]errCase{
			{"name conflict", "/runs/create", `{"run_name": "a", "tags": [{"key": "mlflow.runName", "value": "b"}]}`, 400, "INVALID_PARAMETER_VALUE",
				"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='a', mlflow.runName='b')."},
			{"unknown experiment", "/runs/create", `{"experiment_id": "4242"}`, 404, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id=4242 exists"},
			{"experiment as int", "/runs/create", `{"experiment_id": 1}`, 400, "INVALID_PARAMETER_VALUE", "Invalid value 1 for parameter 'experiment_id' supplied: Hint: Value was of type 'int'."},
			{"experiment sql", "/runs/create", `{"experiment_id": "0; DROP TABLE runs"}`, 400, "INVALID_PARAMETER_VALUE", "experiment_id"},
			{"start_time text", "/runs/create", `{"start_time": "soon"}`, 400, "INVALID_PARAMETER_VALUE", `Invalid value "soon" for parameter 'start_time' supplied: Hint: Value was of type 'str'.`},
			{"start_time float", "/runs/create", `{"start_time": 1.5}`, 400, "INVALID_PARAMETER_VALUE", "Value was of type 'float'"},
			{"start_time huge", "/runs/create", `{"start_time": 1e30}`, 400, "INVALID_PARAMETER_VALUE", "start_time"},
			{"start_time bool", "/runs/create", `{"start_time": true}`, 400, "INVALID_PARAMETER_VALUE", "Value was of type 'bool'"},
			{"tags not list", "/runs/create", `{"tags": {"key": "a"}}`, 400, "INVALID_PARAMETER_VALUE", "Value was of type 'dict'"},
			{"tag not object", "/runs/create", `{"tags": ["a"]}`, 400, "INVALID_PARAMETER_VALUE", "'tags[0]'"},
			{"tag key missing", "/runs/create", `{"tags": [{"value": "a"}]}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'tags[0].key'"},
			{"tag key bad", "/runs/create", `{"tags": [{"key": "a\"b", "value": "a"}]}`, 400, "INVALID_PARAMETER_VALUE", "'tags[0].key'"},
			{"run_name long", "/runs/create", `{"run_name": "` + strings.Repeat("r", 251) + `"}`, 400, "INVALID_PARAMETER_VALUE", "'run_name' exceeds the maximum length of 250 characters"},
			{"user long", "/runs/create", `{"user_id": "` + strings.Repeat("u", 257) + `"}`, 400, "INVALID_PARAMETER_VALUE", "'user_id' exceeds"},
			{"invalid utf8", "/runs/create", "{\"run_name\": \"\xff\"}", 400, "INVALID_PARAMETER_VALUE", "UTF-8"},
		})

		// Unknown runs, including a case variant of a real id (MySQL collation).
		for _, bad := range []string{"nope", strings.ToUpper(id), "' OR '1'='1", strings.Repeat("a", 500)} {
			st, body := c.get("/runs/get", url.Values{"run_id": {bad}})
			if st != 404 || body["error_code"] != "RESOURCE_DOES_NOT_EXIST" || body["message"] != "Run with id="+bad+" not found" {
				t.Errorf("get %q: %d %v", bad, st, body)
			}
		}
		st, body = c.get("/runs/get", url.Values{"other": {"x"}})
		if st != 400 || !strings.Contains(body["message"].(string), "Missing value for required parameter 'run_id'") {
			t.Errorf("get without id: %d %v", st, body)
		}
		st, body = c.get("/runs/get", url.Values{"run_id": {"a\x00b"}})
		if st != 400 {
			t.Errorf("get with NUL: %d %v", st, body)
		}
	})
}

// TestRunArtifactURI: without --serve-artifacts the run's artifact_uri
// is under its experiment's location.
func TestRunArtifactURI(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		api := NewAPI(db, APIConfig{DefaultArtifactRoot: "/srv/mlruns", Log: quiet})
		c := &apiClient{domaintest.NewClient(t, api.Handlers())}
		exp := c.mustPost("/experiments/create", `{"name": "local"}`)["experiment_id"].(string)
		id, run := c.newRun(`{"experiment_id": "` + exp + `"}`)
		if got := run["info"].(map[string]any)["artifact_uri"]; got != "/srv/mlruns/"+exp+"/"+id+"/artifacts" {
			t.Errorf("local artifact_uri = %v", got)
		}
		exp = c.mustPost("/experiments/create", `{"name": "s3", "artifact_location": "s3://bucket/p/"}`)["experiment_id"].(string)
		id, run = c.newRun(`{"experiment_id": "` + exp + `"}`)
		if got := run["info"].(map[string]any)["artifact_uri"]; got != "s3://bucket/p/"+id+"/artifacts" {
			t.Errorf("s3 artifact_uri = %v", got)
		}
	})
}

func TestRunsUpdateDeleteTags(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		api, c := newTestAPI(t, db)
		id, _ := c.newRun(`{"run_name": "first"}`)

		body := c.mustPost("/runs/update", `{"run_id": "`+id+`", "status": "FINISHED", "end_time": 1700000005000}`)
		info := body["run_info"].(map[string]any)
		if info["status"] != "FINISHED" || info["end_time"] != float64(1700000005000) || info["run_name"] != "first" || info["run_uuid"] != id {
			t.Errorf("update: %v", body)
		}
		body = c.mustPost("/runs/update", `{"run_uuid": "`+id+`", "status": 4, "run_name": "second"}`)
		info = body["run_info"].(map[string]any)
		if info["status"] != "FAILED" || info["end_time"] != float64(1700000005000) || info["run_name"] != "second" {
			t.Errorf("update by number: %v", body)
		}
		if tags := runData(c.run(id), "tags"); !jsonEqual(tags, []any{map[string]any{"key": "mlflow.runName", "value": "second"}}) {
			t.Errorf("runName tag after update: %v", tags)
		}

		// Tags.
		c.mustPost("/runs/set-tag", `{"run_id": "`+id+`", "key": "t", "value": "1"}`)
		c.mustPost("/runs/set-tag", `{"run_uuid": "`+id+`", "key": "t", "value": "'; DROP TABLE tags;--"}`)
		c.mustPost("/runs/set-tag", `{"run_id": "`+id+`", "key": "mlflow.runName", "value": "third"}`)
		c.mustPost("/runs/set-tag", `{"run_id": "`+id+`", "key": "long", "value": "`+strings.Repeat("x", 9000)+`"}`)
		c.mustPost("/runs/set-tag", `{"run_id": "`+id+`", "key": "empty"}`)
		run := c.run(id)
		if run["info"].(map[string]any)["run_name"] != "third" {
			t.Errorf("set-tag mlflow.runName did not rename: %v", run["info"])
		}
		got := map[string]string{}
		for _, x := range runData(run, "tags") {
			m := x.(map[string]any)
			got[m["key"].(string)] = m["value"].(string)
		}
		if got["t"] != "'; DROP TABLE tags;--" || got["mlflow.runName"] != "third" || len(got["long"]) != 8000 || got["empty"] != "" || len(got) != 4 {
			t.Errorf("tags: %v", got)
		}
		c.mustPost("/runs/delete-tag", `{"run_id": "`+id+`", "key": "t"}`)

		c.expectErrors([]errCase{
			{"delete missing tag", "/runs/delete-tag", `{"run_id": "` + id + `", "key": "t"}`, 404, "RESOURCE_DOES_NOT_EXIST", "No tag with name: t in run with id " + id},
			{"delete tag case", "/runs/delete-tag", `{"run_id": "` + id + `", "key": "EMPTY"}`, 404, "RESOURCE_DOES_NOT_EXIST", "No tag with name: EMPTY"},
			{"delete tag run_uuid only", "/runs/delete-tag", `{"run_uuid": "` + id + `", "key": "t"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'"},
			{"bad status", "/runs/update", `{"run_id": "` + id + `", "status": "DONE"}`, 400, "INVALID_PARAMETER_VALUE", `Invalid value "DONE" for parameter 'status' supplied.`},
			{"bad status number", "/runs/update", `{"run_id": "` + id + `", "status": 9}`, 400, "INVALID_PARAMETER_VALUE", "'status'"},
			{"end_time text", "/runs/update", `{"run_id": "` + id + `", "end_time": "later"}`, 400, "INVALID_PARAMETER_VALUE", "'end_time'"},
			{"update unknown", "/runs/update", `{"run_id": "abc"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=abc not found"},
			{"update no id", "/runs/update", `{"status": "FINISHED"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'"},
			{"run_id int", "/runs/update", `{"run_id": 31}`, 400, "INVALID_PARAMETER_VALUE", "Invalid value 31 for parameter 'run_id' supplied: Hint: Value was of type 'int'."},
			{"tag key sql", "/runs/set-tag", `{"run_id": "` + id + `", "key": "k'--", "value": "v"}`, 400, "INVALID_PARAMETER_VALUE", `Invalid value "k'--" for parameter 'key' supplied: Names may only contain`},
			{"tag key long", "/runs/set-tag", `{"run_id": "` + id + `", "key": "` + strings.Repeat("k", 251) + `", "value": "v"}`, 400, "INVALID_PARAMETER_VALUE", "'key' exceeds the maximum length of 250 characters"},
			{"tag key slash", "/runs/set-tag", `{"run_id": "` + id + `", "key": "/abs", "value": "v"}`, 400, "INVALID_PARAMETER_VALUE", "This name would resolve to '/abs'"},
			{"tag key missing", "/runs/set-tag", `{"run_id": "` + id + `", "value": "v"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'key'"},
			{"tag run unknown", "/runs/set-tag", `{"run_id": "zzz", "key": "k", "value": "v"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=zzz not found"},
			{"tag value obj", "/runs/set-tag", `{"run_id": "` + id + `", "key": "k", "value": {"a": 1}}`, 400, "INVALID_PARAMETER_VALUE", `Invalid value {"a": 1} for parameter 'value'`},
			{"runName too long", "/runs/set-tag", `{"run_id": "` + id + `", "key": "mlflow.runName", "value": "` + strings.Repeat("n", 251) + `"}`, 400, "INVALID_PARAMETER_VALUE", "250"},
		})

		// Delete and restore (no state check), and what a deleted run refuses.
		api.now = func() time.Time { return time.UnixMilli(1700000009000) }
		c.mustPost("/runs/delete", `{"run_id": "`+id+`"}`)
		c.mustPost("/runs/delete", `{"run_id": "`+id+`"}`)
		if stage := c.run(id)["info"].(map[string]any)["lifecycle_stage"]; stage != "deleted" {
			t.Errorf("after delete: %v", stage)
		}
		notActive := "The run " + id + " must be in the 'active' state. Current state is deleted."
		c.expectErrors([]errCase{
			{"update deleted", "/runs/update", `{"run_id": "` + id + `", "status": "KILLED"}`, 400, "INVALID_PARAMETER_VALUE", notActive},
			{"tag deleted", "/runs/set-tag", `{"run_id": "` + id + `", "key": "a", "value": "b"}`, 400, "INVALID_PARAMETER_VALUE", notActive},
			{"untag deleted", "/runs/delete-tag", `{"run_id": "` + id + `", "key": "empty"}`, 400, "INVALID_PARAMETER_VALUE", notActive},
			{"param deleted", "/runs/log-parameter", `{"run_id": "` + id + `", "key": "a", "value": "b"}`, 400, "INVALID_PARAMETER_VALUE", notActive},
			{"metric deleted", "/runs/log-metric", `{"run_id": "` + id + `", "key": "a", "value": 1, "timestamp": 1}`, 400, "INVALID_PARAMETER_VALUE", notActive},
			{"batch deleted", "/runs/log-batch", `{"run_id": "` + id + `", "params": [{"key": "a", "value": "b"}]}`, 400, "INVALID_PARAMETER_VALUE", notActive},
			{"delete unknown", "/runs/delete", `{"run_id": "abc"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=abc not found"},
			{"restore unknown", "/runs/restore", `{"run_id": "abc"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=abc not found"},
			{"delete no id", "/runs/delete", `{}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'"},
			{"delete malformed", "/runs/delete", `{"run_id": "`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'"},
		})
		c.mustPost("/runs/restore", `{"run_id": "`+id+`"}`)
		if stage := c.run(id)["info"].(map[string]any)["lifecycle_stage"]; stage != "active" {
			t.Errorf("after restore: %v", stage)
		}
		c.mustPost("/runs/set-tag", `{"run_id": "`+id+`", "key": "back", "value": "yes"}`)
	})
}

func TestRunsParamsAndMetrics(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		id, _ := c.newRun(`{}`)

		c.mustPost("/runs/log-parameter", `{"run_id": "`+id+`", "key": "lr", "value": "0.1"}`)
		c.mustPost("/runs/log-parameter", `{"run_uuid": "`+id+`", "key": "lr", "value": "0.1"}`)
		c.mustPost("/runs/log-parameter", `{"run_id": "`+id+`", "key": "empty"}`)
		c.mustPost("/runs/log-parameter", `{"run_id": "`+id+`", "key": "sql", "value": "1'); DROP TABLE params;--"}`)
		c.mustPost("/runs/log-parameter", `{"run_id": "`+id+`", "key": "long", "value": "`+strings.Repeat("p", 7000)+`"}`)
		c.mustPost("/runs/log-parameter", `{"run_id": "`+id+`", "key": "long", "value": "`+strings.Repeat("p", 6500)+`"}`)
		c.mustPost("/runs/log-parameter", `{"run_id": "`+id+`", "key": "uni", "value": "`+strings.Repeat("ü", 6001)+`"}`)
		params := map[string]string{}
		for _, x := range runData(c.run(id), "params") {
			m := x.(map[string]any)
			params[m["key"].(string)] = m["value"].(string)
		}
		if params["lr"] != "0.1" || params["empty"] != "" || params["sql"] != "1'); DROP TABLE params;--" ||
			params["long"] != strings.Repeat("p", 6000) || params["uni"] != strings.Repeat("ü", 6000) || len(params) != 5 {
			t.Errorf("params: %v", params)
		}

		// Metrics, with NaN and ±Infinity, duplicates, and the latest by (step, timestamp, value).
		for _, m := range []string{
			`"key": "loss", "value": 0.5, "timestamp": 10, "step": 1`,
			`"key": "loss", "value": 0.5, "timestamp": 10, "step": 1`,
			`"key": "loss", "value": 0.7, "timestamp": 5, "step": 2`,
			`"key": "loss", "value": 0.1, "timestamp": 99, "step": 0`,
			`"key": "loss", "value": "NaN", "timestamp": 5, "step": 2`,
			`"key": "inf", "value": "Infinity", "timestamp": "7"`,
			`"key": "ninf", "value": "-Infinity", "timestamp": 7`,
			`"key": "nan", "value": "NaN", "timestamp": 7`,
			`"key": "zero", "value": 0, "timestamp": 0`,
		} {
			c.mustPost("/runs/log-metric", `{"run_id": "`+id+`", `+m+`}`)
		}
		latest := map[string]any{}
		for _, x := range runData(c.run(id), "metrics") {
			m := x.(map[string]any)
			latest[m["key"].(string)] = m
		}
		wantLatest := map[string]any{
			"loss": map[string]any{"key": "loss", "value": 0.7, "timestamp": float64(5), "step": float64(2)},
			"inf":  map[string]any{"key": "inf", "value": 1.7976931348623157e308, "timestamp": float64(7), "step": float64(0)},
			"ninf": map[string]any{"key": "ninf", "value": -1.7976931348623157e308, "timestamp": float64(7), "step": float64(0)},
			"nan":  map[string]any{"key": "nan", "value": "NaN", "timestamp": float64(7), "step": float64(0)},
			"zero": map[string]any{"key": "zero", "value": float64(0), "timestamp": float64(0), "step": float64(0)},
		}
		if !jsonEqual(latest, wantLatest) {
			t.Errorf("latest metrics:\n got %v\nwant %v", latest, wantLatest)
		}

		// History: ordered by timestamp, step, value; the duplicate was dropped.
		st, body := c.get("/metrics/get-history", url.Values{"run_id": {id}, "metric_key": {"loss"}})
		wantHist := []any{
			map[string]any{"key": "loss", "value": "NaN", "timestamp": float64(5), "step": float64(2)},
			map[string]any{"key": "loss", "value": 0.7, "timestamp": float64(5), "step": float64(2)},
			map[string]any{"key": "loss", "value": 0.5, "timestamp": float64(10), "step": float64(1)},
			map[string]any{"key": "loss", "value": 0.1, "timestamp": float64(99), "step": float64(0)},
		}
		// NaN is stored as 0, so it sorts first.
		if st != 200 || !jsonEqual(body, map[string]any{"metrics": wantHist}) {
			t.Errorf("history: %d %v", st, body)
		}
		// Paging: 3 pages of at most 2... here 2 pages, the last without token.
		var paged []any
		token := ""
		for pages := 0; ; pages++ {
			q := url.Values{"run_uuid": {id}, "metric_key": {"loss"}, "max_results": {"3"}}
			if token != "" {
				q.Set("page_token", token)
			}
			st, body := c.get("/metrics/get-history", q)
			if st != 200 || pages > 3 {
				t.Fatalf("page %d: %d %v", pages, st, body)
			}
			paged = append(paged, body["metrics"].([]any)...)
			next, _ := body["next_page_token"].(string)
			if next == "" {
				break
			}
			if pages == 0 && next != "eyJvZmZzZXQiOiAzfQ==" {
				t.Errorf("token = %q", next)
			}
			token = next
		}
		if !jsonEqual(paged, wantHist) {
			t.Errorf("paged history: %v", paged)
		}
		// Exactly full last page: no token.
		st, body = c.get("/metrics/get-history", url.Values{"run_id": {id}, "metric_key": {"loss"}, "max_results": {"4"}})
		if st != 200 || body["next_page_token"] != nil || len(body["metrics"].([]any)) != 4 {
			t.Errorf("full page: %d %v", st, body)
		}
		for _, q := range []url.Values{
			{"run_id": {"nope"}, "metric_key": {"loss"}},
			{"run_id": {id}, "metric_key": {"LOSS"}},
			{"run_id": {id}, "metric_key": {"' OR 1=1 --"}},
		} {
			if st, body := c.get("/metrics/get-history", q); st != 200 || len(body) != 0 {
				t.Errorf("history %v: %d %v", q, st, body)
			}
		}
		for _, tc := range []struct {
			q   url.Values
			msg string
		}{
			{url.Values{"run_id": {id}}, "Missing value for required parameter 'metric_key'"},
			{url.Values{"metric_key": {"loss"}}, "Missing value for required parameter 'run_id'"},
			{url.Values{"run_id": {id}, "metric_key": {"loss"}, "max_results": {"-1"}}, "max_results"},
			{url.Values{"run_id": {id}, "metric_key": {"loss"}, "max_results": {"99999999999"}}, "max_results"},
			{url.Values{"run_id": {id}, "metric_key": {"loss"}, "max_results": {"99999999999999999999999"}}, "max_results"},
			{url.Values{"run_id": {id}, "metric_key": {"loss"}, "max_results": {"ten"}}, "max_results"},
			{url.Values{"run_id": {id}, "metric_key": {"loss"}, "page_token": {"%%%"}}, "Invalid page token"},
			{url.Values{"run_id": {id}, "metric_key": {"loss"}, "page_token": {"bm90IGpzb24="}}, "Invalid page token"},
			{url.Values{"run_id": {id}, "metric_key": {"loss"}, "page_token": {"eyJvZmZzZXQiOiAtNX0="}}, "Invalid page token"},
		} {
			st, body := c.get("/metrics/get-history", tc.q)
			msg, _ := body["message"].(string)
			if st != 400 || body["error_code"] != "INVALID_PARAMETER_VALUE" || !strings.Contains(msg, tc.msg) {
				t.Errorf("history %v: %d %v", tc.q, st, body)
			}
		}

		c.expectErrors([]errCase{
			{"param change", "/runs/log-parameter", `{"run_id": "` + id + `", "key": "lr", "value": "0.2"}`, 400, "INVALID_PARAMETER_VALUE",
				"Changing param values is not allowed. Param with key='lr' was already logged with value='0.1' for run ID='" + id + "'. Attempted logging new value '0.2'."},
			{"param key missing", "/runs/log-parameter", `{"run_id": "` + id + `", "value": "1"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'key'"},
			{"param key bad", "/runs/log-parameter", `{"run_id": "` + id + `", "key": "a;b", "value": "1"}`, 400, "INVALID_PARAMETER_VALUE", `Invalid value "a;b" for parameter 'key' supplied`},
			{"param key long", "/runs/log-parameter", `{"run_id": "` + id + `", "key": "` + strings.Repeat("k", 251) + `", "value": "1"}`, 400, "INVALID_PARAMETER_VALUE", "'Param key' exceeds the maximum length of 250 characters"},
			{"param key dot", "/runs/log-parameter", `{"run_id": "` + id + `", "key": "a/./b", "value": "1"}`, 400, "INVALID_PARAMETER_VALUE", "would resolve to 'a/b'"},
			{"param value num", "/runs/log-parameter", `{"run_id": "` + id + `", "key": "n", "value": 3}`, 400, "INVALID_PARAMETER_VALUE", "Value was of type 'int'"},
			{"param unknown run", "/runs/log-parameter", `{"run_id": "zz", "key": "n", "value": "3"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=zz not found"},
			{"param utf8", "/runs/log-parameter", "{\"run_id\": \"" + id + "\", \"key\": \"n\", \"value\": \"\xed\xa0\x80\"}", 400, "INVALID_PARAMETER_VALUE", "UTF-8"},
			{"metric no value", "/runs/log-metric", `{"run_id": "` + id + `", "key": "m", "timestamp": 1}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'value'"},
			{"metric no timestamp", "/runs/log-metric", `{"run_id": "` + id + `", "key": "m", "value": 1}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'timestamp'"},
			{"metric value bool", "/runs/log-metric", `{"run_id": "` + id + `", "key": "m", "value": true, "timestamp": 1}`, 400, "INVALID_PARAMETER_VALUE", "Invalid value true for parameter 'value' supplied: Hint: Value was of type 'bool'."},
			{"metric value text", "/runs/log-metric", `{"run_id": "` + id + `", "key": "m", "value": "high", "timestamp": 1}`, 400, "INVALID_PARAMETER_VALUE", "'value'"},
			{"metric negative ts", "/runs/log-metric", `{"run_id": "` + id + `", "key": "m", "value": 1, "timestamp": -1}`, 400, "INVALID_PARAMETER_VALUE",
				"Invalid value -1 for parameter 'timestamp' supplied: metric 'm' (value=1.0). Timestamp must be a nonnegative long (64-bit integer) "},
			{"metric float ts", "/runs/log-metric", `{"run_id": "` + id + `", "key": "m", "value": 1, "timestamp": 1.5}`, 400, "INVALID_PARAMETER_VALUE", "'timestamp'"},
			{"metric huge ts", "/runs/log-metric", `{"run_id": "` + id + `", "key": "m", "value": 1, "timestamp": 99999999999999999999}`, 400, "INVALID_PARAMETER_VALUE", "'timestamp'"},
			{"metric step text", "/runs/log-metric", `{"run_id": "` + id + `", "key": "m", "value": 1, "timestamp": 1, "step": "x"}`, 400, "INVALID_PARAMETER_VALUE", "'step'"},
			{"metric key bad", "/runs/log-metric", `{"run_id": "` + id + `", "key": "m)--", "value": 1, "timestamp": 1}`, 400, "INVALID_PARAMETER_VALUE", `Invalid value "m)--" for parameter 'name' supplied`},
			{"metric key long", "/runs/log-metric", `{"run_id": "` + id + `", "key": "` + strings.Repeat("m", 251) + `", "value": 1, "timestamp": 1}`, 400, "INVALID_PARAMETER_VALUE", "'Metric name' exceeds the maximum length of 250 characters"},
			{"metric unknown run", "/runs/log-metric", `{"run_id": "zz", "key": "m", "value": 1, "timestamp": 1}`, 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=zz not found"},
			{"metric malformed", "/runs/log-metric", `{"run_id": "` + id + `", "key": "m", "value": 1, "timestamp": 1`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'"},
			{"metric array body", "/runs/log-metric", `[1, 2]`, 400, "INVALID_PARAMETER_VALUE", ""},
		})
		// Huge but finite values and step extremes are stored as given.
		c.mustPost("/runs/log-metric", `{"run_id": "`+id+`", "key": "big", "value": 1e300, "timestamp": 9223372036854775807, "step": -9223372036854775808}`)
		st, raw := c.Raw(http.MethodGet, "/api/2.0/mlflow/metrics/get-history?run_id="+id+"&metric_key=big", "", "")
		if want := `{"metrics":[{"key":"big","value":1e+300,"timestamp":9223372036854775807,"step":-9223372036854775808}]}`; st != 200 || compactJSON(raw) != want {
			t.Errorf("extremes: %d %s", st, raw)
		}
	})
}

func compactJSON(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return s
	}
	return b.String()
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestLogBatch(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		id, _ := c.newRun(`{}`)
		c.mustPost("/runs/log-batch", `{"run_id": "`+id+`",
			"metrics": [{"key": "acc", "value": 0.9, "timestamp": 1, "step": 1}, {"key": "acc", "value": 0.95, "timestamp": 2, "step": 2}, {"key": "acc", "value": 0.95, "timestamp": 2, "step": 2}, {"key": "n", "value": "NaN", "timestamp": 3}],
			"params": [{"key": "p", "value": "1"}, {"key": "q"}, {"key": "long", "value": "`+strings.Repeat("v", 6001)+`"}],
			"tags": [{"key": "t", "value": "a"}, {"key": "t", "value": "b"}, {"key": "mlflow.runName", "value": "batch-name"}, {"key": "big", "value": "`+strings.Repeat("v", 8001)+`"}]}`)
		run := c.run(id)
		if run["info"].(map[string]any)["run_name"] != "batch-name" {
			t.Errorf("batch runName: %v", run["info"])
		}
		if got := mustJSON(runData(run, "metrics")); got != `[{"key":"acc","step":2,"timestamp":2,"value":0.95},{"key":"n","step":0,"timestamp":3,"value":"NaN"}]` {
			t.Errorf("batch metrics: %s", got)
		}
		kv := func(field string) map[string]string {
			out := map[string]string{}
			for _, x := range runData(run, field) {
				m := x.(map[string]any)
				out[m["key"].(string)] = m["value"].(string)
			}
			return out
		}
		if p := kv("params"); p["p"] != "1" || p["q"] != "" || len(p["long"]) != 6000 || len(p) != 3 {
			t.Errorf("batch params: %v", p)
		}
		if tg := kv("tags"); tg["t"] != "b" || tg["mlflow.runName"] != "batch-name" || len(tg["big"]) != 8000 {
			t.Errorf("batch tags: %v", tg)
		}
		// Re-logging equal params is fine; an empty batch is fine.
		c.mustPost("/runs/log-batch", `{"run_id": "`+id+`", "params": [{"key": "p", "value": "1"}]}`)
		c.mustPost("/runs/log-batch", `{"run_id": "`+id+`"}`)

		items := func(n int, f string) string {
			parts := make([]string, n)
			for i := range parts {
				parts[i] = fmt.Sprintf(f, i)
			}
			return strings.Join(parts, ",")
		}
		metric := `{"key": "m%d", "value": 1, "timestamp": 1}`
		kvItem := `{"key": "k%d", "value": "v"}`
		c.expectErrors([]errCase{
			{"too many metrics", "/runs/log-batch", `{"run_id": "` + id + `", "metrics": [` + items(1001, metric) + `]}`, 400, "INVALID_PARAMETER_VALUE",
				"A batch logging request can contain at most 1000 metrics. Got 1001 metrics. Please split up metrics across multiple requests and try again."},
			{"too many params", "/runs/log-batch", `{"run_id": "` + id + `", "params": [` + items(101, kvItem) + `]}`, 400, "INVALID_PARAMETER_VALUE",
				"A batch logging request can contain at most 100 params. Got 101 params."},
			{"too many tags", "/runs/log-batch", `{"run_id": "` + id + `", "tags": [` + items(101, kvItem) + `]}`, 400, "INVALID_PARAMETER_VALUE",
				"A batch logging request can contain at most 100 tags. Got 101 tags."},
			{"too many in total", "/runs/log-batch", `{"run_id": "` + id + `", "metrics": [` + items(900, metric) + `], "params": [` + items(100, kvItem) + `], "tags": [{"key": "x", "value": "y"}]}`, 400, "INVALID_PARAMETER_VALUE",
				"A batch logging request can contain at most 1000 metrics, params, and tags. Got 1001 metrics, params, and tags."},
			{"duplicate params", "/runs/log-batch", `{"run_id": "` + id + `", "params": [{"key": "a", "value": "1"}, {"key": "a", "value": "1"}, {"key": "b'c"}]}`, 400, "INVALID_PARAMETER_VALUE",
				`Invalid value "b'c" for parameter 'params[2].key' supplied`},
			{"duplicate params2", "/runs/log-batch", `{"run_id": "` + id + `", "params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}`, 400, "INVALID_PARAMETER_VALUE",
				"Duplicate parameter keys have been submitted: ['a']. Please ensure the request contains only one param value per param key."},
			{"param change", "/runs/log-batch", `{"run_id": "` + id + `", "params": [{"key": "new", "value": "1"}, {"key": "p", "value": "it's"}], "metrics": [{"key": "fresh", "value": 1, "timestamp": 1}]}`, 400, "INVALID_PARAMETER_VALUE",
				"Changing param values is not allowed. Params were already logged='[{'key': 'p', 'old_value': '1', 'new_value': \"it's\"}]' for run ID='" + id + "'."},
			{"metric missing ts", "/runs/log-batch", `{"run_id": "` + id + `", "metrics": [{"key": "a", "value": 1, "timestamp": 1}, {"key": "b", "value": 1}]}`, 400, "INVALID_PARAMETER_VALUE",
				"Missing value for required parameter 'metrics[1].timestamp'."},
			{"metric missing key", "/runs/log-batch", `{"run_id": "` + id + `", "metrics": [{"value": 1, "timestamp": 1}]}`, 400, "INVALID_PARAMETER_VALUE", "'metrics[0].key'"},
			{"metric bad name", "/runs/log-batch", `{"run_id": "` + id + `", "metrics": [{"key": "a*b", "value": 1, "timestamp": 1}]}`, 400, "INVALID_PARAMETER_VALUE", "'metrics[0].name'"},
			{"metric negative ts", "/runs/log-batch", `{"run_id": "` + id + `", "metrics": [{"key": "a", "value": 2.5, "timestamp": -4}]}`, 400, "INVALID_PARAMETER_VALUE",
				"Invalid value -4 for parameter 'metrics[0].timestamp' supplied: metric 'a' (value=2.5)."},
			{"metric value type", "/runs/log-batch", `{"run_id": "` + id + `", "metrics": [{"key": "a", "value": [1], "timestamp": 1}]}`, 400, "INVALID_PARAMETER_VALUE", "'metrics[0].value'"},
			{"param key missing", "/runs/log-batch", `{"run_id": "` + id + `", "params": [{"value": "1"}]}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'params[0].key'."},
			{"tag key long", "/runs/log-batch", `{"run_id": "` + id + `", "tags": [{"key": "` + strings.Repeat("t", 251) + `", "value": "1"}]}`, 400, "INVALID_PARAMETER_VALUE", "'tags[0].key' exceeds the maximum length of 250 characters"},
			{"metrics not list", "/runs/log-batch", `{"run_id": "` + id + `", "metrics": "all"}`, 400, "INVALID_PARAMETER_VALUE", `Invalid value "all" for parameter 'metrics' supplied: Hint: Value was of type 'str'.`},
			{"bad run id", "/runs/log-batch", `{"run_id": "x' OR '1'='1"}`, 400, "INVALID_PARAMETER_VALUE", `Invalid value "x' OR '1'='1" for parameter 'run_id' supplied.`},
			{"unknown run", "/runs/log-batch", `{"run_id": "abc"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=abc not found"},
			{"no run id", "/runs/log-batch", `{"params": [{"key": "a", "value": "1"}]}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'"},
			{"invalid utf8", "/runs/log-batch", "{\"run_id\": \"" + id + "\", \"tags\": [{\"key\": \"a\", \"value\": \"\xff\"}]}", 400, "INVALID_PARAMETER_VALUE", "UTF-8"},
		})
		// Atomicity: the failed batch above wrote neither "new" nor "fresh".
		run = c.run(id)
		if p := kv("params"); p["new"] != "" || len(p) != 3 {
			t.Errorf("params after failed batch: %v", p)
		}
		for _, m := range runData(run, "metrics") {
			if m.(map[string]any)["key"] == "fresh" {
				t.Errorf("metric from failed batch was written")
			}
		}
		// A full batch of 1000 metrics goes through.
		c.mustPost("/runs/log-batch", `{"run_id": "`+id+`", "metrics": [`+items(1000, metric)+`]}`)
		if n := len(runData(c.run(id), "metrics")); n != 1002 {
			t.Errorf("latest metrics after big batch: %d", n)
		}
	})
}

// TestRunConcurrentLogging: writers to one run are serialised by the
// run's row lock, so concurrent first writes of the same metric key
// (latest_metrics) and the same param never fail.
func TestRunConcurrentLogging(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		id, _ := c.newRun(`{}`)
		errs := make(chan string, 64)
		done := make(chan struct{})
		for w := 0; w < 8; w++ {
			go func(w int) {
				defer func() { done <- struct{}{} }()
				for i := 0; i < 4; i++ {
					for _, req := range [][2]string{
						{"/runs/log-metric", fmt.Sprintf(`{"run_id": "%s", "key": "loss", "value": %d, "timestamp": %d, "step": %d}`, id, w, i, w*10+i)},
						{"/runs/log-parameter", `{"run_id": "` + id + `", "key": "same", "value": "v"}`},
						{"/runs/log-batch", fmt.Sprintf(`{"run_id": "%s", "metrics": [{"key": "acc", "value": 1, "timestamp": %d}], "tags": [{"key": "t", "value": "%d"}]}`, id, w, i)},
					} {
						req := httptest.NewRequest(http.MethodPost, "/api/2.0/mlflow"+req[0], strings.NewReader(req[1]))
						req.Header.Set("Content-Type", "application/json")
						resp, err := c.App.Test(req, 30000)
						if err != nil {
							errs <- err.Error()
							continue
						}
						if resp.StatusCode != 200 {
							b, _ := io.ReadAll(resp.Body)
							errs <- fmt.Sprintf("%d %s", resp.StatusCode, b)
						}
						resp.Body.Close()
					}
				}
			}(w)
		}
		for w := 0; w < 8; w++ {
			<-done
		}
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		st, raw := c.Raw(http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+id, "", "")
		if st != 200 || !strings.Contains(compactJSON(raw), `{"key":"loss","value":7,"timestamp":3,"step":73}`) {
			t.Errorf("latest loss: %s", raw)
		}
	})
}
