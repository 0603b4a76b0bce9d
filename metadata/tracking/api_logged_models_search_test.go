package tracking

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// TestLoggedModelsSearchDatasets covers logged-models/search `datasets` and
// the dataset fields of order_by entries, as upstream's
// search_logged_models behind its REST handler.
func TestLoggedModelsSearchDatasets(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		api, c := newTestAPI(t, db)
		exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)
		run1, _ := c.newRun(`{"experiment_id": "` + exp + `"}`)
		run2, _ := c.newRun(`{"experiment_id": "` + exp + `"}`)
		// Models a..h created in that order (default order: newest first).
		ids := map[string]string{}
		names := map[string]string{}
		for i, n := range []string{"a", "b", "c", "d", "e", "f", "h"} {
			api.now = fixedClock(1700000000000 + int64(i)*1000)
			m := c.mustPost("/logged-models", `{"experiment_id": "`+exp+`", "name": "`+n+`"}`)["model"].(map[string]any)
			id := m["info"].(map[string]any)["model_id"].(string)
			ids[n], names[id] = id, n
		}
		type mt struct {
			model, run, name, digest string
			value                    float64
			ts                       int64
		}
		for _, m := range []mt{
			{"a", run1, "ds1", "d1", 0.1, 5},
			{"a", run1, "ds1", "d1", 0.9, 10},
			{"a", run1, "ds2", "d2", 0.2, 20},
			{"b", run1, "ds1", "d1", 0.3, 10},
			{"b", run1, "ds2", "d2", 0.95, 11},
			{"c", run1, "ds1", "d9", 0.7, 10},
			{"d", run1, "", "", 0.8, 10},
			{"e", run1, "ds1", "", 0.6, 10}, // a dataset name without digest
			// Two runs log the same (timestamp, step) for h.
			{"h", run1, "", "", 0.4, 30},
			{"h", run2, "", "", 0.45, 30},
		} {
			body := map[string]any{"run_id": m.run, "key": "acc", "value": m.value, "timestamp": m.ts, "step": 0, "model_id": ids[m.model]}
			if m.name != "" {
				body["dataset_name"] = m.name
			}
			if m.digest != "" {
				body["dataset_digest"] = m.digest
			}
			raw, _ := json.Marshal(body)
			c.mustPost("/runs/log-metric", string(raw))
		}
		e := `"experiment_ids": ["` + exp + `"]`
		search := func(body string) string {
			t.Helper()
			out := c.mustPost("/logged-models/search", `{`+e+`, `+body+`}`)
			var got []string
			for _, m := range asList(out["models"]) {
				got = append(got, names[m.(map[string]any)["info"].(map[string]any)["model_id"].(string)])
			}
			return strings.Join(got, ",")
		}
		for _, tc := range []struct{ body, want string }{
			// Filters: a metric comparison matches any logged row ...
			{`"filter": "metrics.acc > 0.5"`, "e,d,c,b,a"},
			// ... and with datasets only rows logged on one of them.
			{`"filter": "metrics.acc > 0.5", "datasets": [{"dataset_name": "ds1", "dataset_digest": "d1"}]`, "a"},
			{`"filter": "metrics.acc > 0.5", "datasets": [{"dataset_name": "ds2", "dataset_digest": "d2"}]`, "b"},
			{`"filter": "metrics.acc > 0.5", "datasets": [{"dataset_name": "ds1", "dataset_digest": "d1"}, {"dataset_name": "ds2", "dataset_digest": "d2"}]`, "b,a"},
			{`"filter": "metrics.acc < 0.5", "datasets": [{"dataset_name": "ds1", "dataset_digest": "d1"}]`, "b,a"},
			{`"filter": "metrics.acc > 0.5 AND metrics.acc < 0.8", "datasets": [{"dataset_name": "ds1", "dataset_digest": "d9"}]`, "c"},
			// Upstream's handler turns an absent (or empty) digest into
			// None, which its store compares: dataset_digest IS NULL.
			{`"filter": "metrics.acc > 0.5", "datasets": [{"dataset_name": "ds1"}]`, "e"},
			{`"filter": "metrics.acc > 0.5", "datasets": [{"dataset_name": "ds1", "dataset_digest": ""}]`, "e"},
			{`"filter": "metrics.acc > 0.5", "datasets": [{"dataset_name": "ds1", "dataset_digest": null}]`, "e"},
			// No metric comparison: models with any metric on a dataset.
			{`"datasets": [{"dataset_name": "ds2", "dataset_digest": "d2"}]`, "b,a"},
			{`"datasets": [{"dataset_name": "ds1"}]`, "e"},
			{`"filter": "name = 'a'", "datasets": [{"dataset_name": "ds2", "dataset_digest": "d2"}]`, "a"},
			{`"filter": "name = 'c'", "datasets": [{"dataset_name": "ds2", "dataset_digest": "d2"}]`, ""},
			{`"datasets": []`, "h,f,e,d,c,b,a"},
			// Exact comparison; SQL text is a value.
			{`"datasets": [{"dataset_name": "DS1", "dataset_digest": "D1"}]`, ""},
			{`"datasets": [{"dataset_name": "ds1' OR '1'='1", "dataset_digest": "d1' OR '1'='1"}]`, ""},
			{`"datasets": [{"dataset_name": "%", "dataset_digest": "_1"}]`, ""},

			// order_by a metric: the latest value (timestamp, step) among
			// the rows of the entry's dataset; models without one last.
			{`"order_by": [{"field_name": "metrics.acc", "ascending": false, "dataset_name": "ds1", "dataset_digest": "d1"}]`, "a,b,h,f,e,d,c"},
			// dataset_name alone: that name, any digest.
			{`"order_by": [{"field_name": "metrics.acc", "dataset_name": "ds1"}]`, "b,e,c,a,h,f,d"},
			// dataset_digest alone is allowed (upstream checks nothing).
			{`"order_by": [{"field_name": "metrics.acc", "ascending": true, "dataset_digest": "d2"}]`, "a,b,h,f,e,d,c"},
			// No dataset: the latest row overall; h's tie joins once
			// (the value that sorts first).
			{`"order_by": [{"field_name": "metrics.acc"}]`, "a,h,e,c,d,b,f"},
			{`"order_by": [{"field_name": "metrics.acc", "ascending": false}]`, "b,d,c,e,h,a,f"},
			// Filter and order on different datasets.
			{`"filter": "metrics.acc >= 0.2", "datasets": [{"dataset_name": "ds2", "dataset_digest": "d2"}],
				"order_by": [{"field_name": "metrics.acc", "ascending": false, "dataset_name": "ds1", "dataset_digest": "d1"}]`, "a,b"},
			{`"order_by": [{"field_name": "metrics.acc", "dataset_name": "x' OR '1'='1"}]`, "h,f,e,d,c,b,a"},
			// Attribute order entries ignore dataset fields.
			{`"order_by": [{"field_name": "name", "dataset_name": "ds1"}]`, "a,b,c,d,e,f,h"},
		} {
			if got := search(tc.body); got != tc.want {
				t.Errorf("search %s:\n got %s\nwant %s", tc.body, got, tc.want)
			}
		}
		// Paging through a dataset-ordered search keeps the order.
		var pages []string
		token := ""
		for range 10 {
			body := `{` + e + `, "max_results": 3, "order_by": [{"field_name": "metrics.acc", "dataset_name": "ds1"}]`
			if token != "" {
				body += `, "page_token": "` + token + `"`
			}
			out := c.mustPost("/logged-models/search", body+`}`)
			for _, m := range asList(out["models"]) {
				pages = append(pages, names[m.(map[string]any)["info"].(map[string]any)["model_id"].(string)])
			}
			token, _ = out["next_page_token"].(string)
			if token == "" {
				break
			}
		}
		if got := strings.Join(pages, ","); got != "b,e,c,a,h,f,d" {
			t.Errorf("pages: %s", got)
		}

		need := "`dataset_name` in the `datasets` clause must be specified."
		c.expectErrors([]errCase{
			{"dataset without name", "/logged-models/search", `{` + e + `, "datasets": [{"dataset_digest": "d1"}]}`, 400, "INVALID_PARAMETER_VALUE", need},
			{"dataset empty name", "/logged-models/search", `{` + e + `, "datasets": [{"dataset_name": "ds1"}, {"dataset_name": ""}]}`, 400, "INVALID_PARAMETER_VALUE", need},
			{"dataset null name", "/logged-models/search", `{` + e + `, "datasets": [{"dataset_name": null}]}`, 400, "INVALID_PARAMETER_VALUE", need},
			{"dataset name check before token", "/logged-models/search", `{` + e + `, "datasets": [{}], "page_token": "bad"}`, 400, "INVALID_PARAMETER_VALUE", need},
			{"datasets not a list", "/logged-models/search", `{` + e + `, "datasets": "ds1"}`, 400, "INVALID_PARAMETER_VALUE", "'datasets'"},
			{"dataset not an object", "/logged-models/search", `{` + e + `, "datasets": ["ds1"]}`, 400, "INVALID_PARAMETER_VALUE", "'datasets[0]'"},
			{"dataset name type", "/logged-models/search", `{` + e + `, "datasets": [{"dataset_name": 5}]}`, 400, "INVALID_PARAMETER_VALUE", "'datasets[0].dataset_name'"},
			{"dataset digest type", "/logged-models/search", `{` + e + `, "datasets": [{"dataset_name": "a", "dataset_digest": ["d"]}]}`, 400, "INVALID_PARAMETER_VALUE", "'datasets[0].dataset_digest'"},
			{"order dataset type", "/logged-models/search", `{` + e + `, "order_by": [{"field_name": "metrics.acc", "dataset_name": 1}]}`, 400, "INVALID_PARAMETER_VALUE", "'order_by[0].dataset_name'"},
		})
	})
}

// TestLoggedModelsSearchOrderNullsLast: an attribute order_by puts models
// without a value last in both directions, on every database (upstream's
// CASE; PostgreSQL alone would put NULLs first when descending).
func TestLoggedModelsSearchOrderNullsLast(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)
		names := map[string]string{}
		for _, m := range []struct{ name, typ string }{{"a", "agent"}, {"n", ""}, {"z", "zoo"}} {
			body := `{"experiment_id": "` + exp + `", "name": "` + m.name + `"`
			if m.typ != "" {
				body += `, "model_type": "` + m.typ + `"`
			}
			out := c.mustPost("/logged-models", body+`}`)["model"].(map[string]any)
			names[out["info"].(map[string]any)["model_id"].(string)] = m.name
		}
		for _, tc := range []struct{ asc, want string }{{"true", "a,z,n"}, {"false", "z,a,n"}} {
			out := c.mustPost("/logged-models/search", `{"experiment_ids": ["`+exp+`"], "order_by": [{"field_name": "model_type", "ascending": `+tc.asc+`}]}`)
			var got []string
			for _, m := range asList(out["models"]) {
				got = append(got, names[m.(map[string]any)["info"].(map[string]any)["model_id"].(string)])
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("order_by model_type ascending=%s: %v, want %s", tc.asc, got, tc.want)
			}
		}
	})
}

// TestLoggedModelsSearchOrderNullValueTie: two rows of one model tied on
// (timestamp, step), one with a NULL value (as another writer may leave
// it), still give the model once when ordering by that metric.
func TestLoggedModelsSearchOrderNullValueTie(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		api, c := newTestAPI(t, db)
		exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)
		run1, _ := c.newRun(`{"experiment_id": "` + exp + `"}`)
		run2, _ := c.newRun(`{"experiment_id": "` + exp + `"}`)
		m := c.mustPost("/logged-models", `{"experiment_id": "`+exp+`", "name": "m"}`)["model"].(map[string]any)
		id := m["info"].(map[string]any)["model_id"].(string)
		err := api.db.Write(context.Background(), func(tx *metadata.Tx) error {
			for _, r := range []struct {
				run   string
				value any
			}{{run1, nil}, {run2, 0.5}} {
				if _, err := tx.Exec(context.Background(), `INSERT INTO logged_model_metrics (model_id, metric_name, metric_timestamp_ms,
metric_step, metric_value, experiment_id, run_id) VALUES (?, 'acc', 10, 0, ?, ?, ?)`, id, r.value, exp, r.run); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, asc := range []string{"true", "false"} {
			out := c.mustPost("/logged-models/search", `{"experiment_ids": ["`+exp+`"], "order_by": [{"field_name": "metrics.acc", "ascending": `+asc+`}]}`)
			if n := len(asList(out["models"])); n != 1 {
				t.Errorf("ascending=%s: %d models, want 1", asc, n)
			}
		}
	})
}
