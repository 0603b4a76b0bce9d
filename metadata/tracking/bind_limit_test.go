package tracking

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// TestSearchBindLimit: a search that would bind more values than one
// statement can hold (SQLite: 32,766) is a client error (400
// INVALID_PARAMETER_VALUE) on every database, not the driver's 500 "too
// many SQL variables"; a search just below the limit is served.
func TestSearchBindLimit(t *testing.T) {
	t.Parallel()
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = strconv.Itoa(i)
		}
		return out
	}
	body := func(v map[string]any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// A filter is at most 65,536 characters, so its values alone stay
	// below the limit; with many experiment ids they pass it.
	quoted := make([]string, 15000)
	for i := range quoted {
		quoted[i] = "'a'"
	}
	datasets := make([]map[string]string, 20000)
	for i := range datasets {
		datasets[i] = map[string]string{"dataset_name": "d" + strconv.Itoa(i), "dataset_digest": "x"}
	}
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		run, _ := c.newRun(`{"experiment_id": "0"}`)
		refused := []struct{ name, path, body string }{
			{"runs/search 40,000 experiment ids", "/runs/search", body(map[string]any{"experiment_ids": ids(40000)})},
			{"runs/search 20,000 experiment ids and run_id IN 15,000 values", "/runs/search", body(map[string]any{
				"experiment_ids": ids(20000), "filter": "attributes.run_id IN (" + strings.Join(quoted, ",") + ")"})},
			{"logged-models/search 40,000 experiment ids", "/logged-models/search", body(map[string]any{"experiment_ids": ids(40000)})},
			{"logged-models/search 20,000 datasets", "/logged-models/search", body(map[string]any{"experiment_ids": []string{"0"}, "datasets": datasets})},
		}
		for _, r := range refused {
			st, resp := c.post(r.path, r.body)
			msg, _ := resp["message"].(string)
			if st != 400 || resp["error_code"] != "INVALID_PARAMETER_VALUE" || !strings.Contains(msg, "more than the 32766 a query can hold") {
				t.Errorf("%s: %d %v, want 400 INVALID_PARAMETER_VALUE", r.name, st, resp)
			}
		}
		// Just below the limit: served, and the run is found.
		st, resp := c.post("/runs/search", body(map[string]any{"experiment_ids": ids(32000)}))
		runs, _ := resp["runs"].([]any)
		if st != 200 || len(runs) != 1 || runs[0].(map[string]any)["info"].(map[string]any)["run_id"] != run {
			t.Errorf("runs/search 32,000 experiment ids: %d %v", st, truncate(fmt.Sprint(resp), 300))
		}
		st, resp = c.post("/logged-models/search", body(map[string]any{"experiment_ids": ids(32000)}))
		if st != 200 {
			t.Errorf("logged-models/search 32,000 experiment ids: %d %v", st, resp)
		}
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
