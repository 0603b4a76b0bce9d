package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/stores"
	_ "github.com/ferryml/ferry/stores/local" // the local driver
)

const sentinel = "SENTINEL-outside-the-root"

// downloadFixture is a registry over a local artifacts destination and a
// local non-proxied artifact directory, with runs, a logged model and
// their files, and sentinel files (and symlinks to them) just outside
// every root.
type downloadFixture struct {
	c                   client
	destDir, localRoot  string
	outside             string
	proxiedRun, loclRun string
}

func newDownloadFixture(t *testing.T, db *metadata.DB) *downloadFixture {
	t.Helper()
	ctx := context.Background()
	f := &downloadFixture{destDir: t.TempDir(), localRoot: t.TempDir(), outside: t.TempDir(), proxiedRun: "rp", loclRun: "rl"}
	raw, err := stores.Open(ctx, f.destDir)
	if err != nil {
		t.Fatal(err)
	}
	metrics := stores.NewMetrics(prometheus.NewRegistry())
	opener := stores.NewOpener(metrics, domaintest.Quiet)
	t.Cleanup(func() { opener.Close() })
	f.c = newClientWith(t, db, Config{Log: domaintest.Quiet, Artifacts: stores.Instrument(raw, "local", metrics, domaintest.Quiet),
		OpenStore: func(ctx context.Context, uri string) (stores.Store, func(), error) { return opener.Acquire(ctx, uri) }})
	if err := db.Write(ctx, func(tx *metadata.Tx) error {
		for _, q := range [][]any{
			{"INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage) VALUES (?, ?, ?, 'active')", 7, "e", "mlflow-artifacts:/7"},
			{"INSERT INTO runs (run_uuid, artifact_uri, lifecycle_stage, experiment_id) VALUES (?, ?, 'active', 7)", "rp", "mlflow-artifacts:/7/rp/artifacts"},
			{"INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage) VALUES (?, ?, ?, 'active')", 8, "local", filepath.Join(f.localRoot, "exp8")},
			{"INSERT INTO runs (run_uuid, artifact_uri, lifecycle_stage, experiment_id) VALUES (?, ?, 'active', 8)", "rl", filepath.Join(f.localRoot, "exp8", "rl", "artifacts")},
			{"INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, source_run_id) VALUES (?, 7, 'model', ?, 1, 1, 2, 'active', ?)",
				"m-abc", "mlflow-artifacts:/7/models/m-abc/artifacts", "rp"},
		} {
			if _, err := tx.Exec(ctx, q[0].(string), q[1:]...); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	domaintest.WriteFile(t, filepath.Join(f.outside, "secret.txt"), sentinel)
	domaintest.WriteFile(t, filepath.Join(f.destDir, "secret.txt"), sentinel)
	domaintest.WriteFile(t, filepath.Join(f.destDir, "7", "secret.txt"), sentinel)
	domaintest.WriteFile(t, filepath.Join(f.localRoot, "secret.txt"), sentinel)
	for _, dir := range []string{
		filepath.Join(f.destDir, "7", "rp", "artifacts", "model"),
		filepath.Join(f.destDir, "7", "models", "m-abc", "artifacts"),
		filepath.Join(f.localRoot, "exp8", "rl", "artifacts", "model"),
	} {
		domaintest.WriteFile(t, filepath.Join(dir, "MLmodel"), "artifact_path: "+dir+"\n")
		domaintest.WriteFile(t, filepath.Join(dir, "model.pkl"), "\x80\x04pickle\x00")
		if err := os.Symlink(f.outside, filepath.Join(dir, "escape")); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// get downloads path of a version and fails the test on a sentinel byte.
func (f *downloadFixture) get(name, version, path string, headers map[string]string) (int, string, map[string]string) {
	f.c.T.Helper()
	q := url.Values{"name": {name}, "version": {version}, "path": {path}}
	resp, body := f.c.Get("/model-versions/get-artifact?"+q.Encode(), false, headers)
	if strings.Contains(body, sentinel) {
		f.c.T.Fatalf("%s/%s %q: a byte from outside the root", name, version, path)
	}
	h := map[string]string{}
	for _, k := range []string{"Content-Type", "Content-Disposition", "Content-Range"} {
		h[k] = resp.Header.Get(k)
	}
	return resp.StatusCode, body, h
}

// TestModelVersionGetArtifact downloads the files of versions stored in
// every form a download URI takes (proxied, runs:/, a logged model, a
// local path, models:/ by alias, stage and latest), then refuses hostile
// paths and versions whose location points outside its roots.
func TestModelVersionGetArtifact(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		f := newDownloadFixture(t, db)
		c := f.c
		proxiedModel := filepath.Join(f.destDir, "7", "rp", "artifacts", "model")
		loggedModel := filepath.Join(f.destDir, "7", "models", "m-abc", "artifacts")
		localModel := filepath.Join(f.localRoot, "exp8", "rl", "artifacts", "model")
		c.ok("POST", "/registered-models/create", `{"name":"m"}`)
		for _, body := range []map[string]any{
			{"source": "mlflow-artifacts:/7/rp/artifacts/model", "run_id": "rp"},                                        // 1
			{"source": "runs:/rp/model"},                                                                                // 2
			{"source": "models:/m-abc", "model_id": "m-abc"},                                                            // 3
			{"source": localModel, "run_id": "rl"},                                                                      // 4
			{"source": "http://elsewhere:5000/api/2.0/mlflow-artifacts/artifacts/7/rp/artifacts/model", "run_id": "rp"}, // 5
		} {
			body["name"] = "m"
			c.ok("POST", "/model-versions/create", js(body))
		}
		c.ok("POST", "/registered-models/alias", `{"name":"m","alias":"champion","version":"3"}`)
		c.ok("POST", "/model-versions/transition-stage", `{"name":"m","version":"4","stage":"Production"}`)
		for _, src := range []string{"models:/m@champion", "models:/m/Production", "models:/m/latest", "models:/m/4"} { // 6..9
			mv := obj(c.ok("POST", "/model-versions/create", js(map[string]any{"name": "m", "source": src})), "model_version")
			if mv["source"] != src {
				t.Errorf("source %s: %v", src, mv)
			}
		}
		wantURI := map[string]string{"6": "mlflow-artifacts:/7/models/m-abc/artifacts", "7": localModel,
			"8": localModel, "9": localModel}
		for v, want := range wantURI {
			if out := c.ok("GET", "/model-versions/get-download-uri", "?name=m&version="+v); out["artifact_uri"] != want {
				t.Errorf("download uri of %s: %v, want %s", v, out, want)
			}
		}
		// The logged model lists the version made from it, as json.dumps does.
		if tag := modelVersionsTagOf(t, db, "m-abc"); tag != `[{"name": "m", "version": 3}]` {
			t.Errorf("mlflow.modelVersions tag: %q", tag)
		}

		dirs := map[string]string{"1": proxiedModel, "2": proxiedModel, "3": loggedModel, "4": localModel, "5": proxiedModel,
			"6": loggedModel, "7": localModel, "8": localModel, "9": localModel}
		for v, dir := range dirs {
			st, body, h := f.get("m", v, "MLmodel", nil)
			if st != 200 || body != "artifact_path: "+dir+"\n" || h["Content-Type"] != "text/plain" || h["Content-Disposition"] != "attachment; filename=MLmodel" {
				t.Errorf("version %s MLmodel: %d %q %v", v, st, body, h)
			}
			if st, body, h := f.get("m", v, "model.pkl", map[string]string{"Range": "bytes=2-7"}); st != 206 || body != "pickle" || h["Content-Range"] != "bytes 2-7/9" {
				t.Errorf("version %s range: %d %q %v", v, st, body, h)
			}
			for _, p := range append(domaintest.HostilePaths, "escape/secret.txt", "escape") {
				if st, body, _ := f.get("m", v, p, nil); st != 400 {
					t.Errorf("version %s hostile %q: %d %q", v, p, st, body)
				}
			}
		}
		if st, _, _ := f.get("m", "1", "nope", nil); st != 404 {
			t.Errorf("missing file: %d", st)
		}
		// HEAD and the ajax-free prefixed route only.
		resp, body := c.Get("/model-versions/get-artifact?name=m&version=1&path=MLmodel", true, nil)
		if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Length") == "" {
			t.Errorf("HEAD: %d %q", resp.StatusCode, body)
		}

		// Parameter errors, in upstream's order (path first).
		for q, want := range map[string][2]string{
			"name=m&version=1":                   {"400", "INVALID_PARAMETER_VALUE"},
			"name=m&version=1&path=":             {"400", "INVALID_PARAMETER_VALUE"},
			"name=m&version=1&path=..%2Fx":       {"400", "INVALID_PARAMETER_VALUE"},
			"version=1&path=MLmodel":             {"400", "INVALID_PARAMETER_VALUE"},
			"name=m&path=MLmodel":                {"400", "INVALID_PARAMETER_VALUE"},
			"name=m&version=x&path=MLmodel":      {"400", "INVALID_PARAMETER_VALUE"},
			"name=a%2Fb&version=1&path=MLmodel":  {"400", "INVALID_PARAMETER_VALUE"},
			"name=m&version=99&path=MLmodel":     {"404", "RESOURCE_DOES_NOT_EXIST"},
			"name=nope&version=1&path=MLmodel":   {"404", "RESOURCE_DOES_NOT_EXIST"},
			"name=m%00&version=1&path=MLmodel":   {"400", "INVALID_PARAMETER_VALUE"},
			"name=m%27--&version=1&path=MLmodel": {"404", "RESOURCE_DOES_NOT_EXIST"},
		} {
			resp, body := c.Get("/model-versions/get-artifact?"+q, false, nil)
			var e map[string]any
			if st := resp.StatusCode; json.Unmarshal([]byte(body), &e) != nil || e["error_code"] != want[1] || want[0] != map[int]string{400: "400", 404: "404"}[st] {
				t.Errorf("%s: %d %q, want %v", q, st, body, want)
			}
		}
	})
}

// TestModelVersionGetArtifactHostileLocations: versions whose location
// (written straight into the database, past create's checks) points
// outside a root are refused with 400 before a byte is read.
func TestModelVersionGetArtifactHostileLocations(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		f := newDownloadFixture(t, db)
		c := f.c
		c.ok("POST", "/registered-models/create", `{"name":"h"}`)
		locals := []string{
			f.outside, "file://" + f.outside, f.localRoot, filepath.Join(f.localRoot, "exp8", ".."), f.localRoot + "/exp8x",
			filepath.Join(f.localRoot, "exp8", "rl", "artifacts", "..", "..", ".."), filepath.Join(f.localRoot, "exp8", "rl", "artifacts", "model", "escape"),
			"//proc/self/root" + f.outside, "/etc", "file:///etc",
		}
		remotes := []string{
			"mlflow-artifacts:/7/rp/artifacts/../../..", "mlflow-artifacts:/7/rp/%2E%2E/%2E%2E", "mlflow-artifacts:/../secret.txt",
			"http://h/api/2.0/mlflow-artifacts/artifacts/7/../..", "runs:/rp/../../..", "runs:/rp/model/%2e%2e/%2e%2e/..",
			"http:///#/../" + f.outside, "s3://bucket/a/../../x", "mlflow-artifacts:/7/rp%00/artifacts",
		}
		n := 0
		for _, loc := range append(locals, remotes...) {
			n++
			if err := db.Write(context.Background(), func(tx *metadata.Tx) error {
				_, err := tx.Exec(context.Background(), "INSERT INTO model_versions (name, version, creation_time, last_updated_time, current_stage, source, run_id, status, storage_location, workspace) "+
					"VALUES ('h', ?, 1, 1, 'None', ?, 'rl', 'READY', ?, 'default')", n, loc, loc)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"secret.txt", "7/secret.txt", "etc/passwd", "passwd", "x"} {
				if st, body, _ := f.get("h", js(n), p, nil); st != 400 {
					t.Errorf("location %q path %q: %d %q", loc, p, st, body)
				}
			}
		}
	})
}

// TestModelsSourceForms: models:/ sources by alias, stage (any case) and
// latest resolve to the named version's location as the client resolves
// them; ones that name nothing are upstream's "Unable to fetch" 400 and
// take no version number; a model_id lists the version in the logged
// model's mlflow.modelVersions tag (appended once, not for prompts).
func TestModelsSourceForms(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		f := newDownloadFixture(t, db)
		c := f.c
		c.ok("POST", "/registered-models/create", `{"name":"a"}`)
		c.ok("POST", "/registered-models/create", `{"name":"b"}`)
		for _, s := range []string{"s3://bk/v1", "s3://bk/v2", "s3://bk/v3"} {
			c.ok("POST", "/model-versions/create", js(map[string]any{"name": "a", "source": s}))
		}
		c.ok("POST", "/registered-models/alias", `{"name":"a","alias":"champion","version":"1"}`)
		c.ok("POST", "/model-versions/transition-stage", `{"name":"a","version":"2","stage":"Staging"}`)
		c.ok("DELETE", "/model-versions/delete", `{"name":"a","version":"3"}`)
		n := 0
		for src, want := range map[string]string{
			"models:/a@champion": "s3://bk/v1", "models:/a/staging": "s3://bk/v2", "models:/a/STAGING": "s3://bk/v2",
			"models:/a/Latest": "s3://bk/v2", "models:/a/latest": "s3://bk/v2", "models:/a@latest": "s3://bk/v2", "models:/a/1": "s3://bk/v1",
		} {
			n++
			mv := obj(c.ok("POST", "/model-versions/create", js(map[string]any{"name": "b", "source": src})), "model_version")
			if mv["source"] != src || mv["version"] != js(n) {
				t.Errorf("%s: %v", src, mv)
			}
			if out := c.ok("GET", "/model-versions/get-download-uri", "?name=b&version="+js(n)); out["artifact_uri"] != want {
				t.Errorf("%s: download uri %v, want %s", src, out, want)
			}
		}
		const fetch = "Unable to fetch model from model URI source artifact location '%s'.Error: %s"
		for src, reason := range map[string]string{
			"models:/a@nope":       "Registered model alias nope not found.",
			"models:/a/Production": "No versions of model with name 'a' and stage 'Production' found",
			"models:/a/Bogus":      "Invalid Model Version stage: Bogus. Value must be one of None, Staging, Production, Archived.",
			"models:/zz/latest":    "Registered Model with name=zz not found",
			"models:/a/3":          "Model Version (name=a, version=3) not found",
			"models:/m-nope":       "Logged model with ID 'm-nope' not found.",
			"models:/a/1/x":        improperModelsURI("models:/a/1/x"),
			"models:/a@":           improperModelsURI("models:/a@"),
			"models:/a/ ":          improperModelsURI("models:/a/ "),
		} {
			c.fails("POST", "/model-versions/create", js(map[string]any{"name": "b", "source": src}), 400, "INVALID_PARAMETER_VALUE", fmt.Sprintf(fetch, src, reason))
		}
		c.ok("POST", "/registered-models/create", `{"name":"c"}`)
		c.ok("POST", "/model-versions/create", `{"name":"c","source":"models:/a/latest"}`)
		if out := c.ok("GET", "/model-versions/get-download-uri", "?name=c&version=1"); out["artifact_uri"] != "s3://bk/v2" {
			t.Errorf("latest of a: %v", out)
		}
		// A version with no live versions in its model: latest names none.
		c.ok("POST", "/registered-models/create", `{"name":"empty"}`)
		c.fails("POST", "/model-versions/create", `{"name":"c","source":"models:/empty/latest"}`, 400, "INVALID_PARAMETER_VALUE",
			fmt.Sprintf(fetch, "models:/empty/latest", "No versions of model with name 'empty' found"))

		// mlflow.modelVersions: appended per version, kept once, not for prompts.
		tag := func() string { return modelVersionsTagOf(t, db, "m-abc") }
		c.ok("POST", "/registered-models/create", `{"name":"ü"}`)
		c.ok("POST", "/model-versions/create", `{"name":"c","source":"models:/m-abc","model_id":"m-abc"}`)
		c.ok("POST", "/model-versions/create", `{"name":"ü","source":"models:/m-abc","model_id":"m-abc"}`)
		if got, want := tag(), `[{"name": "c", "version": 2}, {"name": "\u00fc", "version": 1}]`; got != want {
			t.Errorf("tag %s, want %s", got, want)
		}
		c.ok("POST", "/model-versions/create", `{"name":"c","source":"prompt text","model_id":"m-abc","tags":[{"key":"mlflow.prompt.is_prompt","value":"true"}]}`)
		if got := tag(); strings.Contains(got, `"version": 3`) {
			t.Errorf("prompt version listed: %s", got)
		}
		// A missing logged model fails the create whole: no number taken.
		c.fails("POST", "/model-versions/create", `{"name":"c","source":"s3://bk/x","model_id":"m-gone"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Logged model with ID 'm-gone' not found.")
		if mv := obj(c.ok("POST", "/model-versions/create", `{"name":"c","source":"s3://bk/y"}`), "model_version"); mv["version"] != "4" {
			t.Errorf("after a failed create: %v", mv)
		}
	})
}

// modelVersionsTagOf reads a logged model's mlflow.modelVersions tag.
func modelVersionsTagOf(t *testing.T, db *metadata.DB, modelID string) string {
	t.Helper()
	var v string
	if err := db.Read(context.Background(), func(tx *metadata.Tx) error {
		return tx.QueryRow(context.Background(), "SELECT tag_value FROM logged_model_tags WHERE model_id = ? AND tag_key = ?", modelID, modelVersionsTag).Scan(&v)
	}); err != nil {
		t.Fatal(err)
	}
	return v
}
