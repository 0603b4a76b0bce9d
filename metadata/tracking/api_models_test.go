package tracking

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/internal/testdb"
	"github.com/ferryml/ferry/stores"
	_ "github.com/ferryml/ferry/stores/local"
	"github.com/ferryml/ferry/wire"
)

func (c *apiClient) send(method, path, body string) (int, map[string]any) {
	return c.Do(method, "/api/2.0/mlflow"+path, "application/json", body)
}

func TestLogInputsOutputs(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)
		id, _ := c.newRun(`{"experiment_id": "` + exp + `", "run_name": "r"}`)
		other, _ := c.newRun(`{"experiment_id": "` + exp + `", "run_name": "o"}`)
		ds := `{"tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": {"name": "d1", "digest": "abc", "source_type": "local", "source": "{\"uri\": \"x\"}", "schema": "{}"}}`
		c.mustPost("/runs/log-inputs", `{"run_id": "`+id+`", "datasets": [`+ds+`, `+ds+`], "models": [{"model_id": "m-1"}]}`)
		c.mustPost("/runs/log-inputs", `{"run_id": "`+id+`", "datasets": [`+ds+`]}`) // idempotent
		c.mustPost("/runs/log-inputs", `{"run_id": "`+other+`", "datasets": [{"dataset": {"name": "d2", "digest": "def", "source_type": "s3", "source": "s"}}]}`)
		c.mustPost("/runs/outputs", `{"run_id": "`+id+`", "models": [{"model_id": "m-2", "step": 3}]}`)
		c.mustPost("/runs/outputs", `{"run_id": "`+id+`", "models": [{"model_id": "m-2", "step": 5}]}`)
		run := c.run(id)
		wantIn := map[string]any{
			"dataset_inputs": []any{map[string]any{
				"tags":    []any{map[string]any{"key": "mlflow.data.context", "value": "train"}},
				"dataset": map[string]any{"name": "d1", "digest": "abc", "source_type": "local", "source": `{"uri": "x"}`, "schema": "{}"},
			}},
			"model_inputs": []any{map[string]any{"model_id": "m-1"}},
		}
		if !jsonEqual(run["inputs"], wantIn) || !jsonEqual(run["outputs"], map[string]any{"model_outputs": []any{map[string]any{"model_id": "m-2", "step": 5.0}}}) {
			t.Errorf("run io: %v / %v", run["inputs"], run["outputs"])
		}
		for filter, want := range map[string][]string{
			"datasets.name = 'd1'":             {"r"},
			"datasets.digest IN ('abc','def')": {"o", "r"},
			"dataset.context = 'train'":        {"r"},
			"datasets.name LIKE 'd%'":          {"o", "r"},
			"datasets.name = 'D1'":             nil,
		} {
			got, _ := c.searchRunNames(map[string]any{"experiment_ids": []string{exp}, "filter": filter, "order_by": []string{"run_name"}})
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s: %v want %v", filter, got, want)
			}
		}
		c.expectErrors([]errCase{
			{"no dataset", "/runs/log-inputs", `{"run_id": "` + id + `", "datasets": [{}]}`, 400, "INVALID_PARAMETER_VALUE", "Dataset cannot be None"},
			{"no digest", "/runs/log-inputs", `{"run_id": "` + id + `", "datasets": [{"dataset": {"name": "n", "source_type": "s", "source": "s"}}]}`, 400, "INVALID_PARAMETER_VALUE", "Dataset digest cannot be None"},
			{"long digest", "/runs/log-inputs", `{"run_id": "` + id + `", "datasets": [{"dataset": {"name": "n", "digest": "` + strings.Repeat("a", 37) + `", "source_type": "s", "source": "s"}}]}`, 400, "INVALID_PARAMETER_VALUE", "Dataset digest exceeds the maximum length of 36"},
			{"tag value", "/runs/log-inputs", `{"run_id": "` + id + `", "datasets": [{"tags": [{"key": "k"}], "dataset": {"name": "n", "digest": "d", "source_type": "s", "source": "s"}}]}`, 400, "INVALID_PARAMETER_VALUE", "InputTag value cannot be None"},
			{"bad run id", "/runs/log-inputs", `{"run_id": "x'; --"}`, 400, "INVALID_PARAMETER_VALUE", `Invalid value "x'; --" for parameter 'run_id' supplied.`},
			{"unknown run", "/runs/log-inputs", `{"run_id": "abc"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=abc not found"},
			{"outputs no models", "/runs/outputs", `{"run_id": "` + id + `"}`, 400, "INVALID_PARAMETER_VALUE", "'models'"},
		})
	})
}

func TestLoggedModels(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		api, c := newTestAPI(t, db)
		exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)
		run, _ := c.newRun(`{"experiment_id": "` + exp + `"}`)
		api.now = fixedClock(1700000005000)
		m := c.mustPost("/logged-models", `{"experiment_id": "`+exp+`", "name": "model_a", "model_type": "sk", "source_run_id": "`+run+`",
			"params": [{"key": "alpha", "value": "0.5"}], "tags": [{"key": "t", "value": "1"}]}`)["model"].(map[string]any)
		info := m["info"].(map[string]any)
		mid := info["model_id"].(string)
		if !strings.HasPrefix(mid, "m-") || len(mid) != 34 || info["status"] != "LOGGED_MODEL_PENDING" ||
			info["artifact_uri"] != "mlflow-artifacts:/"+exp+"/models/"+mid+"/artifacts" || info["creation_timestamp_ms"] != 1700000005000.0 {
			t.Fatalf("create: %v", m)
		}
		api.now = fixedClock(1700000006000)
		m2 := c.mustPost("/logged-models", `{"experiment_id": "`+exp+`"}`)["model"].(map[string]any)
		mid2 := m2["info"].(map[string]any)["model_id"].(string)

		st, out := c.send(http.MethodPatch, "/logged-models/"+mid, `{"model_id": "`+mid+`", "status": "LOGGED_MODEL_READY"}`)
		if st != 200 || out["model"].(map[string]any)["info"].(map[string]any)["status"] != "LOGGED_MODEL_READY" {
			t.Fatalf("finalize: %d %v", st, out)
		}
		if st, out = c.send(http.MethodPatch, "/logged-models/"+mid+"/tags", `{"tags": [{"key": "t", "value": "2"}, {"key": "u", "value": "x"}]}`); st != 200 {
			t.Fatalf("set tags: %d %v", st, out)
		}
		if st, out = c.send(http.MethodDelete, "/logged-models/"+mid+"/tags/u", ``); st != 200 {
			t.Fatalf("delete tag: %d %v", st, out)
		}
		if st, out = c.send(http.MethodDelete, "/logged-models/"+mid+"/tags/u", ``); st != 404 {
			t.Fatalf("delete missing tag: %d %v", st, out)
		}
		c.mustPost("/logged-models/"+mid+"/params", `{"model_id": "`+mid+`", "params": [{"key": "beta", "value": "1"}]}`)
		st, out = c.get("/logged-models/"+mid, nil)
		got := out["model"].(map[string]any)
		if st != 200 || !jsonEqual(got["info"].(map[string]any)["tags"], []any{map[string]any{"key": "t", "value": "2"}}) ||
			!jsonEqual(got["data"], map[string]any{"params": []any{map[string]any{"key": "alpha", "value": "0.5"}, map[string]any{"key": "beta", "value": "1"}}}) {
			t.Fatalf("get: %d %v", st, out)
		}
		search := func(body string) []string {
			t.Helper()
			out := c.mustPost("/logged-models/search", body)
			var ids []string
			for _, m := range asList(out["models"]) {
				ids = append(ids, m.(map[string]any)["info"].(map[string]any)["model_id"].(string))
			}
			return ids
		}
		e := `"experiment_ids": ["` + exp + `"]`
		for body, want := range map[string][]string{
			`{` + e + `}`: {mid2, mid},
			`{` + e + `, "filter": "source_run_id = '` + run + `'"}`:                             {mid},
			`{` + e + `, "filter": "name = 'model_a' AND params.alpha = '0.5'"}`:                 {mid},
			`{` + e + `, "filter": "tags.t = '2' AND status = 'LOGGED_MODEL_READY'"}`:            {mid},
			`{` + e + `, "filter": "attributes.name = 'x'' OR ''1''=''1'"}`:                      nil,
			`{` + e + `, "order_by": [{"field_name": "creation_timestamp", "ascending": true}]}`: {mid, mid2},
			`{` + e + `, "max_results": 1}`:                                                      {mid2},
		} {
			if got := search(body); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("search %s: %v want %v", body, got, want)
			}
		}
		out = c.mustPost("/logged-models/search", `{`+e+`, "max_results": 1}`)
		if out["next_page_token"] != wire.PageToken(1) {
			t.Errorf("token: %v", out)
		}
		if st, out = c.send(http.MethodDelete, "/logged-models/"+mid2, ``); st != 200 {
			t.Fatalf("delete: %d %v", st, out)
		}
		if st, _ = c.get("/logged-models/"+mid2, nil); st != 404 {
			t.Errorf("get deleted: %d", st)
		}
		if st, _ = c.get("/logged-models/"+mid2, url.Values{"allow_deleted": {"True"}}); st != 200 {
			t.Errorf("get deleted with allow_deleted: %d", st)
		}
		if got := search(`{` + e + `}`); strings.Join(got, ",") != mid {
			t.Errorf("search after delete: %v", got)
		}
		c.expectErrors([]errCase{
			{"no exp", "/logged-models", `{}`, 400, "INVALID_PARAMETER_VALUE", "'experiment_id'"},
			{"bad name", "/logged-models", `{"experiment_id": "` + exp + `", "name": "a/b"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid model name"},
			{"no exp ids", "/logged-models/search", `{}`, 400, "INVALID_PARAMETER_VALUE", "'experiment_ids'"},
			{"bad filter", "/logged-models/search", `{` + e + `, "filter": "name = 'a' OR 1=1"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid clause(s)"},
			{"bad order", "/logged-models/search", `{` + e + `, "order_by": [{"field_name": "x; DROP TABLE logged_models"}]}`, 400, "INVALID_PARAMETER_VALUE", "Invalid order by field name"},
			{"params no id", "/logged-models/" + mid + "/params", `{"params": []}`, 400, "INVALID_PARAMETER_VALUE", "'model_id'"},
		})
		if st, out = c.send(http.MethodPatch, "/logged-models/m-nope", `{"model_id": "m-nope", "status": 2}`); st != 404 {
			t.Errorf("finalize unknown: %d %v", st, out)
		}
	})
}

func TestArtifactsList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	metrics := stores.NewMetrics(prometheus.NewRegistry())
	destDir := t.TempDir()
	raw, err := stores.Open(ctx, destDir)
	if err != nil {
		t.Fatal(err)
	}
	dest := stores.Instrument(raw, "local", metrics, quiet)
	b := testdb.SQLite(t)
	db, err := metadata.Open(ctx, b.URI, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	api := NewAPI(db, APIConfig{DefaultArtifactRoot: "mlflow-artifacts:/", ServeArtifacts: true, Log: quiet,
		Artifacts: dest, OpenStore: testOpener(t)})
	api.now = func() time.Time { return time.UnixMilli(1700000000123) }
	c := &apiClient{domaintest.NewClient(t, api.Handlers())}

	exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)
	id, _ := c.newRun(`{"experiment_id": "` + exp + `"}`)
	put := func(s stores.Store, key, data string) {
		if err := s.Put(ctx, key, strings.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	put(dest, exp+"/"+id+"/artifacts/a.txt", "hello")
	put(dest, exp+"/"+id+"/artifacts/empty", "")
	put(dest, exp+"/"+id+"/artifacts/dir/b.txt", "xy")
	list := func(q url.Values) (int, map[string]any) { return c.get("/artifacts/list", q) }
	st, out := list(url.Values{"run_id": {id}})
	want := map[string]any{"root_uri": "mlflow-artifacts:/" + exp + "/" + id + "/artifacts", "files": []any{
		map[string]any{"path": "a.txt", "is_dir": false, "file_size": 5.0},
		map[string]any{"path": "dir", "is_dir": true},
		map[string]any{"path": "empty", "is_dir": false},
	}}
	if st != 200 || !jsonEqual(out, want) {
		t.Fatalf("list root: %d %v", st, out)
	}
	st, out = list(url.Values{"run_uuid": {id}, "path": {"dir"}})
	if st != 200 || !jsonEqual(out["files"], []any{map[string]any{"path": "dir/b.txt", "is_dir": false, "file_size": 2.0}}) {
		t.Fatalf("list dir: %d %v", st, out)
	}
	st, out = list(url.Values{"run_id": {id}, "path": {"nope"}})
	if st != 200 || !jsonEqual(out, map[string]any{"root_uri": want["root_uri"]}) {
		t.Fatalf("list missing: %d %v", st, out)
	}
	for _, bad := range []string{"../x", "/etc", "%2E%2E/x", "a/../../b"} {
		if st, out = list(url.Values{"run_id": {id}, "path": {bad}}); st != 400 || out["message"] != "Invalid path" {
			t.Errorf("path %q: %d %v", bad, st, out)
		}
	}
	if st, _ = list(url.Values{"run_id": {"nope"}}); st != 404 {
		t.Errorf("unknown run: %d", st)
	}
	if st, _ = list(url.Values{"path": {"x"}}); st != 400 {
		t.Errorf("no run id: %d", st)
	}
	// A non-proxied root (a local directory) is opened from its URI.
	local := t.TempDir()
	exp2 := c.mustPost("/experiments/create", `{"name": "loc", "artifact_location": `+jsonString(local)+`}`)["experiment_id"].(string)
	id2, _ := c.newRun(`{"experiment_id": "` + exp2 + `"}`)
	ls, err := stores.Open(ctx, local+"/"+id2+"/artifacts")
	if err != nil {
		t.Fatal(err)
	}
	put(ls, "m/x.bin", "123")
	st, out = list(url.Values{"run_id": {id2}, "path": {"m"}})
	if st != 200 || !jsonEqual(out, map[string]any{"root_uri": local + "/" + id2 + "/artifacts", "files": []any{map[string]any{"path": "m/x.bin", "is_dir": false, "file_size": 3.0}}}) {
		t.Fatalf("local root: %d %v", st, out)
	}
}
