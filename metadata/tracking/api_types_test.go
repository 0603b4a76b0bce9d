package tracking

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// TestWrongTypeEveryRoute sends a wrong JSON type for a string field of
// every tracking route that takes a JSON body, and for GET routes the
// same through a JSON body; each answers 400 with upstream's message,
// the value as json.dumps shows it and Python's type name.
func TestWrongTypeEveryRoute(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		c.CheckWrongTypes("/api/2.0/mlflow", [][4]string{
			{"POST", "/experiments/create", "name", ``},
			{"POST", "/experiments/create", "artifact_location", `"name":"e"`},
			{"GET", "/experiments/get", "experiment_id", ``},
			{"GET", "/experiments/get-by-name", "experiment_name", ``},
			{"POST", "/experiments/update", "experiment_id", ``},
			{"POST", "/experiments/delete", "experiment_id", ``},
			{"POST", "/experiments/restore", "experiment_id", ``},
			{"POST", "/experiments/set-experiment-tag", "key", `"experiment_id":"0"`},
			{"POST", "/experiments/delete-experiment-tag", "experiment_id", ``},
			{"POST", "/runs/create", "experiment_id", ``},
			{"GET", "/runs/get", "run_id", ``},
			{"POST", "/runs/update", "run_id", ``},
			{"POST", "/runs/delete", "run_id", ``},
			{"POST", "/runs/restore", "run_id", ``},
			{"POST", "/runs/set-tag", "run_id", ``},
			{"POST", "/runs/delete-tag", "run_id", ``},
			{"POST", "/runs/log-parameter", "run_id", ``},
			{"POST", "/runs/log-metric", "run_id", ``},
			{"POST", "/runs/log-batch", "run_id", ``},
			{"GET", "/metrics/get-history", "run_id", ``},
			{"POST", "/runs/log-inputs", "run_id", ``},
			{"POST", "/runs/outputs", "run_id", ``},
			{"POST", "/runs/log-model", "run_id", ``},
			{"POST", "/runs/search", "filter", ``},
			{"POST", "/experiments/search", "filter", `"max_results":10`},
			{"POST", "/logged-models", "experiment_id", ``},
			{"POST", "/logged-models/search", "filter", `"experiment_ids":["0"]`},
			{"GET", "/artifacts/list", "run_id", ``},
		})
	})
}

// TestRelativeArtifactLocation: upstream's resolve_uri_if_local makes a
// relative artifact_location absolute against the server's working
// directory; runs inherit it.
func TestRelativeArtifactLocation(t *testing.T) {
	t.Parallel()
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		for _, tc := range []struct{ loc, want string }{
			{"my_location", filepath.Join(cwd, "my_location")},
			{"./a/b/", filepath.Join(cwd, "a/b")},
			{".", cwd},
			{"/abs/path", "/abs/path"},
			{"file:///abs/x", "file:///abs/x"},
			{"s3://bucket/rel", "s3://bucket/rel"},
		} {
			st, out := c.post("/experiments/create", `{"name":`+jsonString("e-"+tc.loc)+`,"artifact_location":`+jsonString(tc.loc)+`}`)
			if st != 200 {
				t.Fatalf("%s: %d %v", tc.loc, st, out)
			}
			id := out["experiment_id"].(string)
			st, out = c.Do("GET", "/api/2.0/mlflow/experiments/get?experiment_id="+id, "", "")
			exp, _ := out["experiment"].(map[string]any)
			if st != 200 || exp["artifact_location"] != tc.want {
				t.Errorf("%s: %d %v, want %s", tc.loc, st, exp["artifact_location"], tc.want)
			}
			st, out = c.post("/runs/create", `{"experiment_id":"`+id+`"}`)
			info, _ := out["run"].(map[string]any)["info"].(map[string]any)
			if st != 200 || !strings.HasPrefix(info["artifact_uri"].(string), tc.want+"/") {
				t.Errorf("%s: run artifact_uri %v", tc.loc, info["artifact_uri"])
			}
		}
	})
}
