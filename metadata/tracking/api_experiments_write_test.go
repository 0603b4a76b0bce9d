package tracking

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/schema"
)

type errCase struct {
	name   string
	path   string
	body   string
	status int
	code   string
	msg    string // substring
}

func (c *apiClient) expectErrors(cases []errCase) {
	c.T.Helper()
	for _, tc := range cases {
		st, body := c.post(tc.path, tc.body)
		msg, _ := body["message"].(string)
		if st != tc.status || body["error_code"] != tc.code || !strings.Contains(msg, tc.msg) {
			c.T.Errorf("%s: %d %v; want %d %s %q", tc.name, st, body, tc.status, tc.code, tc.msg)
		}
	}
}

func (c *apiClient) mustPost(path, body string) map[string]any {
	c.T.Helper()
	st, out := c.post(path, body)
	if st != 200 {
		c.T.Fatalf("POST %s %s: %d %v", path, body, st, out)
	}
	return out
}

func (c *apiClient) experiment(id string) map[string]any {
	c.T.Helper()
	st, body := c.get("/experiments/get", url.Values{"experiment_id": {id}})
	if st != 200 {
		c.T.Fatalf("get experiment %s: %d %v", id, st, body)
	}
	return body["experiment"].(map[string]any)
}

func TestExperimentsWriteRoutes(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		api, c := newTestAPI(t, db)
		id := c.mustPost("/experiments/create", `{"name": "a", "tags": [{"key": "k", "value": "v"}]}`)["experiment_id"].(string)
		runID := c.mustPost("/runs/create", `{"experiment_id": "`+id+`"}`)["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)

		// Rename.
		api.now = func() time.Time { return time.UnixMilli(1700000001000) }
		if body := c.mustPost("/experiments/update", `{"experiment_id": "`+id+`", "new_name": "b'; DROP TABLE runs;--"}`); len(body) != 0 {
			t.Errorf("update body = %v", body)
		}
		exp := c.experiment(id)
		if exp["name"] != "b'; DROP TABLE runs;--" || exp["last_update_time"] != float64(1700000001000) || exp["creation_time"] != float64(1700000000123) {
			t.Errorf("after rename: %v", exp)
		}

		// Tags: upsert, overwrite, delete.
		c.mustPost("/experiments/set-experiment-tag", `{"experiment_id": "`+id+`", "key": "x", "value": "1"}`)
		c.mustPost("/experiments/set-experiment-tag", `{"experiment_id": "`+id+`", "key": "x", "value": "' OR 1=1 --"}`)
		want := []any{
			map[string]any{"key": "k", "value": "v"},
			map[string]any{"key": "x", "value": "' OR 1=1 --"},
		}
		if db.Dialect() != schema.MySQL {
			// MySQL's default collation makes the tag key
			// case-insensitive (upstream's schema, upstream's behaviour).
			c.mustPost("/experiments/set-experiment-tag", `{"experiment_id": "`+id+`", "key": "X", "value": ""}`)
			want = append(want, map[string]any{"key": "X", "value": ""})
		}
		if tags := c.experiment(id)["tags"]; !sameKeyValues(tags, want) {
			t.Errorf("tags = %v, want %v", tags, want)
		}
		c.mustPost("/experiments/delete-experiment-tag", `{"experiment_id": "`+id+`", "key": "x"}`)
		if tags := c.experiment(id)["tags"]; !sameKeyValues(tags, append(want[:1:1], want[2:]...)) {
			t.Errorf("tags after delete = %v", tags)
		}

		// Delete: the experiment and its runs.
		api.now = func() time.Time { return time.UnixMilli(1700000002000) }
		c.mustPost("/experiments/delete", `{"experiment_id": "`+id+`"}`)
		exp = c.experiment(id)
		if exp["lifecycle_stage"] != "deleted" || exp["last_update_time"] != float64(1700000002000) {
			t.Errorf("after delete: %v", exp)
		}
		if stage := c.run(runID)["info"].(map[string]any)["lifecycle_stage"]; stage != "deleted" {
			t.Errorf("run after experiment delete: %v", stage)
		}
		c.expectErrors([]errCase{
			{"delete twice", "/experiments/delete", `{"experiment_id": "` + id + `"}`, 404, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id=" + id + " exists"},
			{"rename deleted", "/experiments/update", `{"experiment_id": "` + id + `", "new_name": "c"}`, 500, "INVALID_STATE", "Cannot rename a non-active experiment."},
			{"tag deleted", "/experiments/set-experiment-tag", `{"experiment_id": "` + id + `", "key": "a", "value": "b"}`, 400, "INVALID_PARAMETER_VALUE", "The experiment " + id + " must be in the 'active' state. Current state is deleted."},
			{"untag deleted", "/experiments/delete-experiment-tag", `{"experiment_id": "` + id + `", "key": "k"}`, 400, "INVALID_PARAMETER_VALUE", "must be in the 'active' state"},
			{"run in deleted", "/runs/create", `{"experiment_id": "` + id + `"}`, 400, "INVALID_PARAMETER_VALUE", "The experiment " + id + " must be in the 'active' state. Current state is deleted."},
		})

		// Restore brings back the runs, also one deleted on its own.
		c.mustPost("/experiments/restore", `{"experiment_id": "`+id+`"}`)
		if exp = c.experiment(id); exp["lifecycle_stage"] != "active" {
			t.Errorf("after restore: %v", exp)
		}
		if stage := c.run(runID)["info"].(map[string]any)["lifecycle_stage"]; stage != "active" {
			t.Errorf("run after restore: %v", stage)
		}
		c.expectErrors([]errCase{
			{"restore active", "/experiments/restore", `{"experiment_id": "` + id + `"}`, 404, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id=" + id + " exists"},
			{"rename to existing", "/experiments/update", `{"experiment_id": "` + id + `", "new_name": "Default"}`, 400, "BAD_REQUEST", "already exists"},
			{"rename unknown", "/experiments/update", `{"experiment_id": "999", "new_name": "z"}`, 404, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id=999 exists"},
			{"delete unknown", "/experiments/delete", `{"experiment_id": "999"}`, 404, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id=999 exists"},
			{"untag missing", "/experiments/delete-experiment-tag", `{"experiment_id": "` + id + `", "key": "nope"}`, 404, "RESOURCE_DOES_NOT_EXIST", "No tag with name: nope in experiment with id " + id},
			{"untag case", "/experiments/delete-experiment-tag", `{"experiment_id": "` + id + `", "key": "K"}`, 404, "RESOURCE_DOES_NOT_EXIST", "No tag with name: K"},
			{"id as int", "/experiments/delete", `{"experiment_id": 1}`, 400, "INVALID_PARAMETER_VALUE", "Invalid value 1 for parameter 'experiment_id' supplied: Hint: Value was of type 'int'."},
			{"id missing", "/experiments/restore", `{}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'experiment_id'."},
			{"id sql", "/experiments/delete", `{"experiment_id": "1 OR 1=1"}`, 400, "INVALID_PARAMETER_VALUE", "experiment_id"},
			{"id huge", "/experiments/delete", `{"experiment_id": "99999999999999999999"}`, 400, "INVALID_PARAMETER_VALUE", "experiment_id"},
			{"id negative", "/experiments/delete", `{"experiment_id": "-3"}`, 400, "INVALID_PARAMETER_VALUE", "experiment_id"},
			{"malformed json", "/experiments/delete", `{"experiment_id": `, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'experiment_id'"},
			{"invalid utf8", "/experiments/update", "{\"experiment_id\": \"" + id + "\", \"new_name\": \"a\xffb\"}", 400, "INVALID_PARAMETER_VALUE", "UTF-8"},
			{"nul", "/experiments/update", `{"experiment_id": "` + id + `", "new_name": "a\u0000b"}`, 400, "INVALID_PARAMETER_VALUE", "NUL"},
			{"new_name missing", "/experiments/update", `{"experiment_id": "` + id + `"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'new_name'"},
			{"new_name blank", "/experiments/update", `{"experiment_id": "` + id + `", "new_name": "   "}`, 400, "INVALID_PARAMETER_VALUE", "Invalid experiment name"},
			{"new_name long", "/experiments/update", `{"experiment_id": "` + id + `", "new_name": "` + strings.Repeat("n", 501) + `"}`, 400, "INVALID_PARAMETER_VALUE", "exceeds the maximum length of 500"},
			{"new_name type", "/experiments/update", `{"experiment_id": "` + id + `", "new_name": ["x"]}`, 400, "INVALID_PARAMETER_VALUE", "Hint: Value was of type 'list'"},
			{"tag key missing", "/experiments/set-experiment-tag", `{"experiment_id": "` + id + `", "value": "v"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'key'"},
			{"tag key sql", "/experiments/set-experiment-tag", `{"experiment_id": "` + id + `", "key": "a'; DROP TABLE x;--", "value": "v"}`, 400, "INVALID_PARAMETER_VALUE", "Names may only contain"},
			{"tag key dotdot", "/experiments/set-experiment-tag", `{"experiment_id": "` + id + `", "key": "../etc", "value": "v"}`, 400, "INVALID_PARAMETER_VALUE", "would resolve to"},
			{"tag key long", "/experiments/set-experiment-tag", `{"experiment_id": "` + id + `", "key": "` + strings.Repeat("k", 251) + `", "value": "v"}`, 400, "INVALID_PARAMETER_VALUE", "'key' exceeds the maximum length of 250 characters"},
			{"tag value long", "/experiments/set-experiment-tag", `{"experiment_id": "` + id + `", "key": "k", "value": "` + strings.Repeat("v", 5001) + `"}`, 400, "INVALID_PARAMETER_VALUE", "'value' exceeds the maximum length of 5000 characters"},
			{"tag value type", "/experiments/set-experiment-tag", `{"experiment_id": "` + id + `", "key": "k", "value": 5}`, 400, "INVALID_PARAMETER_VALUE", "Invalid value 5 for parameter 'value' supplied: Hint: Value was of type 'int'."},
			{"tag value utf8", "/experiments/set-experiment-tag", "{\"experiment_id\": \"" + id + "\", \"key\": \"k\", \"value\": \"\xc3\x28\"}", 400, "INVALID_PARAMETER_VALUE", "UTF-8"},
			{"empty body", "/experiments/delete", ``, 400, "INVALID_PARAMETER_VALUE", "Missing value"},
		})
		// A 5000-character value and Unicode keys are accepted.
		c.mustPost("/experiments/set-experiment-tag", `{"experiment_id": "`+id+`", "key": "ключ", "value": "`+strings.Repeat("é", 5000)+`"}`)
	})
}

// sameKeyValues compares tag lists ignoring order.
func sameKeyValues(got any, want []any) bool {
	g, _ := got.([]any)
	if len(g) != len(want) {
		return false
	}
	for _, w := range want {
		found := false
		for _, x := range g {
			if jsonEqual(x, w) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
