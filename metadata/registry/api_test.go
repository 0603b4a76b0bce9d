package registry

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

const base = "/api/2.0/mlflow"

type client struct{ *domaintest.Client }

func newClient(t *testing.T, db *metadata.DB) client {
	return newClientWith(t, db, Config{Log: domaintest.Quiet})
}

func newClientWith(t *testing.T, db *metadata.DB, cfg Config) client {
	return client{domaintest.NewClient(t, NewAPI(db, cfg).Handlers())}
}

// call sends a JSON body (or a query for GET when body starts with "?").
func (c client) call(method, path, body string) (int, map[string]any) {
	c.T.Helper()
	if strings.HasPrefix(body, "?") {
		return c.Do(method, base+path+body, "", "")
	}
	return c.Do(method, base+path, "application/json", body)
}

// ok calls and fails the test unless the answer is 200.
func (c client) ok(method, path, body string) map[string]any {
	c.T.Helper()
	st, out := c.call(method, path, body)
	if st != 200 {
		c.T.Fatalf("%s %s %s: %d %v", method, path, body, st, out)
	}
	return out
}

// fails checks an error answer's status, code and message.
func (c client) fails(method, path, body string, status int, code, msg string) {
	c.T.Helper()
	st, out := c.call(method, path, body)
	if st != status || out["error_code"] != code || (msg != "" && out["message"] != msg) {
		c.T.Errorf("%s %s %s: %d %v, want %d %s %q", method, path, body, st, out, status, code, msg)
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func obj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

func TestRegisteredModelLifecycle(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		out := c.ok("POST", "/registered-models/create", `{"name":"m1","description":"d","tags":[{"key":"a","value":"1"},{"key":"a","value":"2"},{"key":"b","value":"x"}]}`)
		rm := obj(out, "registered_model")
		if rm["name"] != "m1" || rm["description"] != "d" || js(rm["tags"]) != `[{"key":"a","value":"2"},{"key":"b","value":"x"}]` {
			t.Fatalf("create: %v", out)
		}
		if _, ok := rm["creation_timestamp"].(float64); !ok {
			t.Errorf("creation_timestamp not a number: %v", rm)
		}
		for _, k := range []string{"latest_versions", "aliases", "user_id"} {
			if _, ok := rm[k]; ok {
				t.Errorf("empty %s emitted: %v", k, rm)
			}
		}
		c.fails("POST", "/registered-models/create", `{"name":"m1"}`, 400, "RESOURCE_ALREADY_EXISTS", "Registered Model (name=m1) already exists.")
		// A name differing only in case is another model (exact match on every DB).
		c.fails("GET", "/registered-models/get", "?name=M1", 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=M1 not found")
		got := c.ok("GET", "/registered-models/get", "?name=m1")
		if js(got) != js(out) {
			t.Errorf("get %v != create %v", got, out)
		}
		// update, tags
		out = c.ok("PATCH", "/registered-models/update", `{"name":"m1","description":"new"}`)
		if obj(out, "registered_model")["description"] != "new" {
			t.Errorf("update: %v", out)
		}
		c.ok("POST", "/registered-models/set-tag", `{"name":"m1","key":"c","value":"3"}`)
		c.ok("DELETE", "/registered-models/delete-tag", `{"name":"m1","key":"a"}`)
		out = c.ok("GET", "/registered-models/get", "?name=m1")
		if js(obj(out, "registered_model")["tags"]) != `[{"key":"b","value":"x"},{"key":"c","value":"3"}]` {
			t.Errorf("tags: %v", out)
		}
		// versions, aliases, then rename carries all of it
		for i := 0; i < 2; i++ {
			c.ok("POST", "/model-versions/create", `{"name":"m1","source":"s3://b/m","run_id":"abc","tags":[{"key":"k","value":"v"}]}`)
		}
		c.ok("POST", "/registered-models/alias", `{"name":"m1","alias":"champion","version":"2"}`)
		c.ok("POST", "/registered-models/create", `{"name":"other"}`)
		c.fails("POST", "/registered-models/rename", `{"name":"m1","new_name":"other"}`, 400, "RESOURCE_ALREADY_EXISTS", "Registered Model (name=other) already exists.")
		c.fails("POST", "/registered-models/rename", `{"name":"nope","new_name":"x"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope not found")
		out = c.ok("POST", "/registered-models/rename", `{"name":"m1","new_name":"m2"}`)
		rm = obj(out, "registered_model")
		if rm["name"] != "m2" || js(rm["aliases"]) != `[{"alias":"champion","version":"2"}]` || len(rm["latest_versions"].([]any)) != 1 {
			t.Errorf("rename: %v", out)
		}
		c.fails("GET", "/registered-models/get", "?name=m1", 404, "RESOURCE_DOES_NOT_EXIST", "")
		mv := obj(c.ok("GET", "/model-versions/get", "?name=m2&version=1"), "model_version")
		if mv["name"] != "m2" || js(mv["tags"]) != `[{"key":"k","value":"v"}]` {
			t.Errorf("version after rename: %v", mv)
		}
		mv = obj(c.ok("GET", "/registered-models/alias", "?name=m2&alias=champion"), "model_version")
		if mv["version"] != "2" || js(mv["aliases"]) != `["champion"]` {
			t.Errorf("alias after rename: %v", mv)
		}
		// delete cascades; a new model of the same name starts at version 1
		c.ok("DELETE", "/registered-models/delete", `{"name":"m2"}`)
		c.fails("DELETE", "/registered-models/delete", `{"name":"m2"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=m2 not found")
		c.fails("GET", "/model-versions/get", "?name=m2&version=1", 404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=m2, version=1) not found")
		c.ok("POST", "/registered-models/create", `{"name":"m2"}`)
		mv = obj(c.ok("POST", "/model-versions/create", `{"name":"m2","source":"s3://b/m"}`), "model_version")
		if mv["version"] != "1" || mv["aliases"] != nil || mv["tags"] != nil {
			t.Errorf("recreated model's version: %v", mv)
		}
	})
}

func TestNameValidation(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		c.fails("POST", "/registered-models/create", `{}`, 400, "INVALID_PARAMETER_VALUE",
			"Missing value for required parameter 'name'. See the API docs for more information about request parameters.")
		c.fails("POST", "/registered-models/create", `{"name":"  "}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'.")
		c.fails("POST", "/registered-models/create", `{"name":123}`, 400, "INVALID_PARAMETER_VALUE",
			"Invalid value 123 for parameter 'name' supplied: Hint: Value was of type 'int'. See the API docs for more information about request parameters.")
		c.fails("POST", "/registered-models/create", `{"name":"a/b"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid model name 'a/b'. Names cannot contain '/' or ':'.")
		c.fails("GET", "/registered-models/get", "?name=a:b", 400, "INVALID_PARAMETER_VALUE", "Invalid model name 'a:b'. Names cannot contain '/' or ':'.")
		c.fails("POST", "/registered-models/create", `{"name":".."}`, 400, "INVALID_PARAMETER_VALUE",
			`Invalid value ".." for parameter 'name' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '..'`)
		c.fails("POST", "/registered-models/create", `{"name":"x\u0000"}`, 400, "INVALID_PARAMETER_VALUE", "")
		c.fails("POST", "/registered-models/create", `{"name":"`+strings.Repeat("n", 257)+`"}`, 400, "INVALID_PARAMETER_VALUE", "")
		c.ok("POST", "/registered-models/create", `{"name":"m'; DROP TABLE registered_models; --"}`)
		c.ok("POST", "/registered-models/rename", `{"name":"m'; DROP TABLE registered_models; --","new_name":"safe"}`)
		c.fails("POST", "/registered-models/rename", `{"name":"safe","new_name":"x/y"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid model name 'x/y'. Names cannot contain '/' or ':'.")
		c.fails("POST", "/registered-models/rename", `{"name":"safe"}`, 400, "INVALID_PARAMETER_VALUE",
			"Missing value for required parameter 'new_name'. See the API docs for more information about request parameters.")
		st, _ := c.Raw("POST", base+"/registered-models/create", "", `{"name":"z"}`)
		if st != 400 {
			t.Errorf("no Content-Type: %d", st)
		}
		c.fails("POST", "/registered-models/set-tag", `{"name":"safe","key":"../x","value":"v"}`, 400, "INVALID_PARAMETER_VALUE", "")
		c.fails("POST", "/registered-models/set-tag", `{"name":"safe","key":"k"}`, 400, "INVALID_PARAMETER_VALUE",
			"Missing value for required parameter 'value'. See the API docs for more information about request parameters.")
		c.fails("POST", "/registered-models/set-tag", `{"name":"nope","key":"k","value":"v"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope not found")
		c.fails("POST", "/registered-models/set-tag", `{"name":"safe","key":"k","value":"`+strings.Repeat("v", 5001)+`"}`, 400, "INVALID_PARAMETER_VALUE",
			"'value' exceeds the maximum length of 5000 characters")
	})
}

func TestModelVersions(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		c.fails("POST", "/model-versions/create", `{"name":"m","source":"s3://b/x"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=m not found")
		c.ok("POST", "/registered-models/create", `{"name":"m"}`)
		c.fails("POST", "/model-versions/create", `{"name":"m"}`, 400, "INVALID_PARAMETER_VALUE",
			"Missing value for required parameter 'source'. See the API docs for more information about request parameters.")
		mv := obj(c.ok("POST", "/model-versions/create", `{"name":"m","source":"s3://b/x","run_id":"r1","run_link":"http://l","description":"d1"}`), "model_version")
		want := map[string]any{"name": "m", "version": "1", "current_stage": "None", "status": "READY", "source": "s3://b/x", "run_id": "r1", "run_link": "http://l", "description": "d1"}
		for k, v := range want {
			if mv[k] != v {
				t.Errorf("create: %s = %v, want %v (%v)", k, mv[k], v, mv)
			}
		}
		if _, ok := mv["last_updated_timestamp"].(float64); !ok {
			t.Errorf("timestamps: %v", mv)
		}
		c.fails("GET", "/model-versions/get", "?name=m&version=x", 400, "INVALID_PARAMETER_VALUE", "Parameter 'version' must be an integer, got 'x'.")
		c.fails("GET", "/model-versions/get", "?name=m&version=7", 404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=m, version=7) not found")
		mv = obj(c.ok("PATCH", "/model-versions/update", `{"name":"m","version":"1","description":"d2"}`), "model_version")
		if mv["description"] != "d2" {
			t.Errorf("update: %v", mv)
		}
		if out := c.ok("GET", "/model-versions/get-download-uri", "?name=m&version=1"); out["artifact_uri"] != "s3://b/x" {
			t.Errorf("download uri: %v", out)
		}
		// tags
		c.ok("POST", "/model-versions/set-tag", `{"name":"m","version":"1","key":"t","value":"1"}`)
		c.ok("POST", "/model-versions/set-tag", `{"name":"m","version":"1","key":"t","value":"2"}`)
		mv = obj(c.ok("GET", "/model-versions/get", "?name=m&version=1"), "model_version")
		if js(mv["tags"]) != `[{"key":"t","value":"2"}]` {
			t.Errorf("tags: %v", mv)
		}
		c.ok("DELETE", "/model-versions/delete-tag", `{"name":"m","version":"1","key":"t"}`)
		c.fails("POST", "/model-versions/set-tag", `{"name":"m","version":"9","key":"t","value":"1"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=m, version=9) not found")
		// stages
		for i := 2; i <= 4; i++ {
			c.ok("POST", "/model-versions/create", `{"name":"m","source":"s3://b/x"}`)
		}
		c.fails("POST", "/model-versions/transition-stage", `{"name":"m","version":"1","stage":"prod"}`, 400, "INVALID_PARAMETER_VALUE",
			"Invalid Model Version stage: prod. Value must be one of None, Staging, Production, Archived.")
		c.fails("POST", "/model-versions/transition-stage", `{"name":"m","version":"1","stage":"archived","archive_existing_versions":true}`, 400, "INVALID_PARAMETER_VALUE", "")
		mv = obj(c.ok("POST", "/model-versions/transition-stage", `{"name":"m","version":"1","stage":"production"}`), "model_version")
		if mv["current_stage"] != "Production" {
			t.Errorf("transition: %v", mv)
		}
		c.ok("POST", "/model-versions/transition-stage", `{"name":"m","version":"2","stage":"Production"}`)
		c.ok("POST", "/model-versions/transition-stage", `{"name":"m","version":"3","stage":"Production","archive_existing_versions":true}`)
		stages := map[string]string{}
		for v := 1; v <= 4; v++ {
			mv = obj(c.ok("GET", "/model-versions/get", fmt.Sprintf("?name=m&version=%d", v)), "model_version")
			stages[mv["version"].(string)] = mv["current_stage"].(string)
		}
		if js(stages) != `{"1":"Archived","2":"Archived","3":"Production","4":"None"}` {
			t.Errorf("archive_existing_versions: %v", stages)
		}
		// latest versions: POST and GET, filtered and not
		out := c.ok("POST", "/registered-models/get-latest-versions", `{"name":"m"}`)
		if got := versions(out["model_versions"]); got != "2:Archived,3:Production,4:None" {
			t.Errorf("latest: %s", got)
		}
		out = c.ok("GET", "/registered-models/get-latest-versions", "?name=m&stages=production&stages=None")
		if got := versions(out["model_versions"]); got != "3:Production,4:None" {
			t.Errorf("latest filtered: %s", got)
		}
		c.fails("GET", "/registered-models/get-latest-versions", "?name=m&stages=bogus", 400, "INVALID_PARAMETER_VALUE", "")
		c.fails("POST", "/registered-models/get-latest-versions", `{"name":"nope"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope not found")
		// soft delete: redacted, invisible, aliases dropped, number not reused
		c.ok("POST", "/registered-models/alias", `{"name":"m","alias":"a1","version":"4"}`)
		c.ok("DELETE", "/model-versions/delete", `{"name":"m","version":"4"}`)
		c.fails("GET", "/model-versions/get", "?name=m&version=4", 404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=m, version=4) not found")
		c.fails("DELETE", "/model-versions/delete", `{"name":"m","version":"4"}`, 404, "RESOURCE_DOES_NOT_EXIST", "")
		c.fails("GET", "/registered-models/alias", "?name=m&alias=a1", 400, "INVALID_PARAMETER_VALUE", "Registered model alias a1 not found.")
		mv = obj(c.ok("POST", "/model-versions/create", `{"name":"m","source":"s3://b/x"}`), "model_version")
		if mv["version"] != "5" {
			t.Errorf("version after a delete: %v", mv)
		}
		var source, runID string
		if err := db.Read(t.Context(), func(tx *metadata.Tx) error {
			return tx.QueryRow(t.Context(), "SELECT source, run_id FROM model_versions WHERE name = 'm' AND version = 4").Scan(&source, &runID)
		}); err != nil || source != "REDACTED-SOURCE-PATH" || runID != "REDACTED-RUN-ID" {
			t.Errorf("redaction: %q %q %v", source, runID, err)
		}
	})
}

func versions(v any) string {
	list, _ := v.([]any)
	var parts []string
	for _, x := range list {
		m := x.(map[string]any)
		parts = append(parts, m["version"].(string)+":"+m["current_stage"].(string))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func TestAliases(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		c.fails("GET", "/registered-models/alias", "?name=m&alias=x", 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=m not found")
		c.ok("POST", "/registered-models/create", `{"name":"m"}`)
		c.fails("GET", "/registered-models/alias", "?name=m&alias=latest", 400, "INVALID_PARAMETER_VALUE", "Registered model alias latest not found.")
		c.ok("POST", "/model-versions/create", `{"name":"m","source":"s3://b/1"}`)
		c.ok("POST", "/model-versions/create", `{"name":"m","source":"s3://b/2"}`)
		c.fails("POST", "/registered-models/alias", `{"name":"m","alias":"latest","version":"1"}`, 400, "INVALID_PARAMETER_VALUE", "'latest' alias name (case insensitive) is reserved.")
		c.fails("POST", "/registered-models/alias", `{"name":"m","alias":"LaTeSt","version":"1"}`, 400, "INVALID_PARAMETER_VALUE", "'latest' alias name (case insensitive) is reserved.")
		c.fails("POST", "/registered-models/alias", `{"name":"m","alias":"v3","version":"1"}`, 400, "INVALID_PARAMETER_VALUE", "Version alias name 'v3' is reserved.")
		c.fails("POST", "/registered-models/alias", `{"name":"m","alias":"a b","version":"1"}`, 400, "INVALID_PARAMETER_VALUE", "")
		c.fails("POST", "/registered-models/alias", `{"name":"m","alias":"ok","version":"9"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=m, version=9) not found")
		c.fails("POST", "/registered-models/alias", `{"name":"m","alias":"ok","version":"one"}`, 400, "INVALID_PARAMETER_VALUE", "Parameter 'version' must be an integer, got 'one'.")
		c.ok("POST", "/registered-models/alias", `{"name":"m","alias":"champ","version":"1"}`)
		c.ok("POST", "/registered-models/alias", `{"name":"m","alias":"champ","version":"2"}`) // upsert
		mv := obj(c.ok("GET", "/registered-models/alias", "?name=m&alias=champ"), "model_version")
		if mv["version"] != "2" || mv["source"] != "s3://b/2" {
			t.Errorf("by alias: %v", mv)
		}
		mv = obj(c.ok("GET", "/registered-models/alias", "?name=m&alias=latest"), "model_version")
		if mv["version"] != "2" {
			t.Errorf("latest: %v", mv)
		}
		c.fails("GET", "/registered-models/alias", "?name=m&alias=CHAMP", 400, "INVALID_PARAMETER_VALUE", "Registered model alias CHAMP not found.")
		c.ok("DELETE", "/registered-models/alias", `{"name":"m","alias":"champ"}`)
		c.ok("DELETE", "/registered-models/alias", `{"name":"m","alias":"champ"}`) // idempotent
		c.fails("DELETE", "/registered-models/alias", `{"name":"zz","alias":"champ"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=zz not found")
		c.fails("GET", "/registered-models/alias", "?name=m&alias=champ", 400, "INVALID_PARAMETER_VALUE", "Registered model alias champ not found.")
	})
}

// TestConcurrentVersionNumbers: 16 creators on one model get 1..16.
func TestConcurrentVersionNumbers(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		c.ok("POST", "/registered-models/create", `{"name":"m"}`)
		const n = 16
		got := make([]string, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				st, out := c.call("POST", "/model-versions/create", `{"name":"m","source":"s3://b/x"}`)
				if st == 200 {
					got[i], _ = obj(out, "model_version")["version"].(string)
				} else {
					got[i] = fmt.Sprint(st, out)
				}
			}(i)
		}
		wg.Wait()
		seen := map[string]bool{}
		for _, v := range got {
			seen[v] = true
		}
		for i := 1; i <= n; i++ {
			if !seen[fmt.Sprint(i)] {
				t.Fatalf("versions %v: %d missing", got, i)
			}
		}
	})
}

// TestModelsSource: a models:/<name>/<version> source stores the
// referenced version's location, which get-download-uri returns.
func TestModelsSource(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		c.ok("POST", "/registered-models/create", `{"name":"a"}`)
		c.ok("POST", "/registered-models/create", `{"name":"b"}`)
		c.ok("POST", "/model-versions/create", `{"name":"a","source":"s3://bucket/0/r/artifacts/model"}`)
		mv := obj(c.ok("POST", "/model-versions/create", `{"name":"b","source":"models:/a/1"}`), "model_version")
		if mv["source"] != "models:/a/1" {
			t.Errorf("source: %v", mv)
		}
		if out := c.ok("GET", "/model-versions/get-download-uri", "?name=b&version=1"); out["artifact_uri"] != "s3://bucket/0/r/artifacts/model" {
			t.Errorf("download uri: %v", out)
		}
		c.fails("POST", "/model-versions/create", `{"name":"b","source":"models:/a/9"}`, 400, "INVALID_PARAMETER_VALUE",
			"Unable to fetch model from model URI source artifact location 'models:/a/9'.Error: Model Version (name=a, version=9) not found")
		c.fails("POST", "/model-versions/create", `{"name":"b","source":"models:/m-0123"}`, 400, "INVALID_PARAMETER_VALUE",
			"Unable to fetch model from model URI source artifact location 'models:/m-0123'.Error: Logged model with ID 'm-0123' not found.")
		c.fails("POST", "/model-versions/create", `{"name":"b","source":"models:/a@champion"}`, 400, "INVALID_PARAMETER_VALUE", "")
		// failed creates take no number
		mv = obj(c.ok("POST", "/model-versions/create", `{"name":"b","source":"s3://x/y"}`), "model_version")
		if mv["version"] != "2" {
			t.Errorf("next version: %v", mv)
		}
	})
}

// TestHostileRequests: wrong JSON types, malformed and non-object bodies,
// oversized and odd values answer 400 (never 500), under /api and
// /ajax-api alike.
func TestHostileRequests(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		c.ok("POST", "/registered-models/create", `{"name":"m"}`)
		c.ok("POST", "/model-versions/create", `{"name":"m","source":"s3://b/x"}`)
		for _, tc := range []struct{ method, path, body string }{
			{"POST", "/registered-models/create", `{"name":"n","tags":"x"}`},
			{"POST", "/registered-models/create", `{"name":"n","tags":[1]}`},
			{"POST", "/registered-models/create", `{"name":"n","tags":[{"key":1,"value":"v"}]}`},
			{"POST", "/registered-models/create", `{"name":"n","description":["x"]}`},
			{"POST", "/registered-models/create", `{"name":"n","description":"` + strings.Repeat("d", 5001) + `"}`},
			{"POST", "/registered-models/create", `[1,2]`},
			{"POST", "/registered-models/create", `{"name":`},
			{"POST", "/registered-models/create", `{"name":true}`},
			{"GET", "/model-versions/get", `?name=m&version=1.5`},
			{"GET", "/model-versions/get", `?name=m&version=99999999999999999999`},
			{"GET", "/model-versions/get", `?name=m`},
			{"PATCH", "/model-versions/update", `{"name":"m","version":1}`},
			{"POST", "/model-versions/transition-stage", `{"name":"m","version":"1","stage":"Staging","archive_existing_versions":"yes"}`},
			{"POST", "/model-versions/transition-stage", `{"name":"m","version":"1"}`},
			{"POST", "/model-versions/create", `{"name":"m","source":"` + strings.Repeat("s", 501) + `"}`},
			{"POST", "/model-versions/create", `{"name":"m","source":"s3://b/x","run_id":"` + strings.Repeat("r", 33) + `"}`},
			{"POST", "/model-versions/create", `{"name":"m","source":"s3://b/x\u0000"}`},
			{"POST", "/model-versions/set-tag", `{"name":"m","version":"1","key":"k","value":"` + strings.Repeat("v", 100001) + `"}`},
			{"POST", "/registered-models/get-latest-versions", `{"name":"m","stages":"Production"}`},
			{"POST", "/registered-models/alias", `{"name":"m","alias":"` + strings.Repeat("a", 256) + `","version":"1"}`},
			{"DELETE", "/registered-models/delete-tag", `{"name":"m"}`},
		} {
			st, out := c.call(tc.method, tc.path, tc.body)
			if st != 400 || out["error_code"] != "INVALID_PARAMETER_VALUE" {
				t.Errorf("%s %s %.80s: %d %v", tc.method, tc.path, tc.body, st, out)
			}
		}
		st, out := c.Do("GET", "/ajax-api/2.0/mlflow/registered-models/get?name=m", "", "")
		if st != 200 || obj(out, "registered_model")["name"] != "m" {
			t.Errorf("ajax-api: %d %v", st, out)
		}
	})
}
