package tracking

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// apiClient is the shared request helper with the tracking routes' paths.
type apiClient struct{ *domaintest.Client }

func newTestAPI(t *testing.T, db *metadata.DB) (*API, *apiClient) {
	t.Helper()
	api := NewAPI(db, APIConfig{DefaultArtifactRoot: "mlflow-artifacts:/", ServeArtifacts: true, Log: quiet})
	api.now = func() time.Time { return time.UnixMilli(1700000000123) }
	return api, &apiClient{domaintest.NewClient(t, api.Handlers())}
}

func (c *apiClient) post(path, body string) (int, map[string]any) {
	return c.Do(http.MethodPost, "/api/2.0/mlflow"+path, "application/json", body)
}

func (c *apiClient) get(path string, q url.Values) (int, map[string]any) {
	return c.Do(http.MethodGet, "/api/2.0/mlflow"+path+"?"+q.Encode(), "", "")
}

func TestExperimentsCreateGet(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)

		st, body := c.get("/experiments/get", url.Values{"experiment_id": {"0"}})
		exp, _ := body["experiment"].(map[string]any)
		if st != 200 || exp["name"] != "Default" || exp["artifact_location"] != "mlflow-artifacts:/0" || exp["experiment_id"] != "0" {
			t.Fatalf("default experiment: %d %v", st, body)
		}

		name := "x'); DROP TABLE experiments;-- ünï"
		st, body = c.post("/experiments/create", `{"name": `+jsonString(name)+`, "tags": [{"key": "team", "value": "a"}, {"key": "team", "value": "b"}]}`)
		if st != 200 || body["experiment_id"] != "1" {
			t.Fatalf("create: %d %v", st, body)
		}
		st, body = c.get("/experiments/get", url.Values{"experiment_id": {"1"}})
		want := map[string]any{"experiment": map[string]any{
			"experiment_id": "1", "name": name, "artifact_location": "mlflow-artifacts:/1",
			"lifecycle_stage": "active", "last_update_time": float64(1700000000123), "creation_time": float64(1700000000123),
			"tags": []any{map[string]any{"key": "team", "value": "b"}},
		}}
		if st != 200 || !jsonEqual(body, want) {
			t.Fatalf("get: %d %v\nwant %v", st, body, want)
		}
		st, body = c.get("/experiments/get-by-name", url.Values{"experiment_name": {name}})
		if st != 200 || !jsonEqual(body, want) {
			t.Fatalf("get-by-name: %d %v", st, body)
		}
		// The ajax mirror serves the same route.
		st, _ = c.Do(http.MethodGet, "/ajax-api/2.0/mlflow/experiments/get?experiment_id=1", "", "")
		if st != 200 {
			t.Errorf("ajax get: %d", st)
		}
		st, body = c.post("/experiments/create", `{"name": "loc", "artifact_location": "s3://bucket/path"}`)
		if st != 200 {
			t.Fatalf("create with location: %d %v", st, body)
		}
		_, body = c.get("/experiments/get", url.Values{"experiment_id": {body["experiment_id"].(string)}})
		if loc := body["experiment"].(map[string]any)["artifact_location"]; loc != "s3://bucket/path" {
			t.Errorf("artifact_location = %v", loc)
		}
		// Names are exact on every backend (MySQL collation ignores case).
		st, body = c.get("/experiments/get-by-name", url.Values{"experiment_name": {"LOC"}})
		if st != 404 || body["error_code"] != "RESOURCE_DOES_NOT_EXIST" || body["message"] != "Could not find experiment with name 'LOC'" {
			t.Errorf("get-by-name wrong case: %d %v", st, body)
		}
	})
}

func TestExperimentsErrors(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		if st, _ := c.post("/experiments/create", `{"name": "dup"}`); st != 200 {
			t.Fatal("create dup")
		}
		long := strings.Repeat("n", 501)
		cases := []struct {
			name        string
			method      string
			path        string
			contentType string
			body        string
			status      int
			code        string
			msg         string // substring
		}{
			{"duplicate", "POST", "/experiments/create", "application/json", `{"name": "dup"}`, 400, "RESOURCE_ALREADY_EXISTS", "Experiment(name=dup) already exists"},
			{"no content type", "POST", "/experiments/create", "", `{"name": "a"}`, 400, "INVALID_PARAMETER_VALUE", "Content-Type header is missing"},
			{"wrong content type", "POST", "/experiments/create", "text/plain", `{"name": "a"}`, 400, "INVALID_PARAMETER_VALUE", "Content-Type must be one of"},
			{"malformed json", "POST", "/experiments/create", "application/json", `{"name": `, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'"},
			{"empty name", "POST", "/experiments/create", "application/json", `{"name": ""}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'"},
			{"blank name", "POST", "/experiments/create", "application/json", `{"name": "  "}`, 400, "INVALID_PARAMETER_VALUE", "Invalid experiment name"},
			{"name wrong type", "POST", "/experiments/create", "application/json", `{"name": 5}`, 400, "INVALID_PARAMETER_VALUE", "name"},
			{"name too long", "POST", "/experiments/create", "application/json", `{"name": "` + long + `"}`, 400, "INVALID_PARAMETER_VALUE", "exceeds the maximum length of 500"},
			{"invalid utf8", "POST", "/experiments/create", "application/json", "{\"name\": \"a\xff\xfeb\"}", 400, "INVALID_PARAMETER_VALUE", "UTF-8"},
			{"nul byte", "POST", "/experiments/create", "application/json", `{"name": "a\u0000b"}`, 400, "INVALID_PARAMETER_VALUE", "NUL"},
			{"fragment location", "POST", "/experiments/create", "application/json", `{"name": "f", "artifact_location": "file:///srv/x#frag"}`, 400, "INVALID_PARAMETER_VALUE", "fragments or params"},
			{"dotdot location", "POST", "/experiments/create", "application/json", `{"name": "f", "artifact_location": "/srv/mlruns/../etc"}`, 400, "INVALID_PARAMETER_VALUE", "'..'"},
			{"encoded dotdot location", "POST", "/experiments/create", "application/json", `{"name": "f", "artifact_location": "file:///srv/%252e%252e/etc"}`, 400, "INVALID_PARAMETER_VALUE", "'..'"},
			{"query dotdot location", "POST", "/experiments/create", "application/json", `{"name": "f", "artifact_location": "s3://b/p?x=..%2f"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid query string"},
			{"runs location", "POST", "/experiments/create", "application/json", `{"name": "f", "artifact_location": "runs:/abc/x"}`, 400, "INVALID_PARAMETER_VALUE", "runs:"},
			{"bad tag key", "POST", "/experiments/create", "application/json", `{"name": "t", "tags": [{"key": "a'b", "value": "v"}]}`, 400, "INVALID_PARAMETER_VALUE", "tags[0].key"},
			{"dotdot tag key", "POST", "/experiments/create", "application/json", `{"name": "t", "tags": [{"key": "../x", "value": "v"}]}`, 400, "INVALID_PARAMETER_VALUE", "resolve"},
			{"tag value too long", "POST", "/experiments/create", "application/json", `{"name": "t", "tags": [{"key": "k", "value": "` + strings.Repeat("v", 5001) + `"}]}`, 400, "INVALID_PARAMETER_VALUE", "5000"},
			{"missing id", "GET", "/experiments/get?other=1", "", "", 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'experiment_id'"},
			{"injection id", "GET", "/experiments/get?experiment_id=" + url.QueryEscape("1 OR 1=1"), "", "", 400, "INVALID_PARAMETER_VALUE", "experiment_id"},
			{"huge id", "GET", "/experiments/get?experiment_id=99999999999999999999", "", "", 400, "INVALID_PARAMETER_VALUE", "experiment_id"},
			{"negative id", "GET", "/experiments/get?experiment_id=-1", "", "", 400, "INVALID_PARAMETER_VALUE", "experiment_id"},
			{"unknown id", "GET", "/experiments/get?experiment_id=424242", "", "", 404, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id=424242 exists"},
			{"missing name", "GET", "/experiments/get-by-name?x=1", "", "", 400, "INVALID_PARAMETER_VALUE", "'experiment_name'"},
			{"get body wrong type", "GET", "/experiments/get", "application/json", `{"experiment_id": 1}`, 400, "INVALID_PARAMETER_VALUE", "experiment_id"},
		}
		for _, tc := range cases {
			st, body := c.Do(tc.method, "/api/2.0/mlflow"+tc.path, tc.contentType, tc.body)
			msg, _ := body["message"].(string)
			if st != tc.status || body["error_code"] != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s: %d %v; want %d %s %q", tc.name, st, body, tc.status, tc.code, tc.msg)
			}
		}
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
