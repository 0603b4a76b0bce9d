package tracking

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/stores"
)

// sentinel is the content of files planted just outside artifact roots:
// no download may ever return it.
const sentinel = "SENTINEL-outside-the-root"

// TestGetArtifact serves run files through /get-artifact from a proxied
// root (the artifacts destination) and from a non-proxied local root,
// with upstream's headers, ranges and errors, and refuses every hostile
// path without a byte from outside the run's root.
func TestGetArtifact(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		ctx := context.Background()
		destDir := t.TempDir()
		raw, err := stores.Open(ctx, destDir)
		if err != nil {
			t.Fatal(err)
		}
		dest := stores.Instrument(raw, "local", stores.NewMetrics(prometheus.NewRegistry()), quiet)
		api := NewAPI(db, APIConfig{DefaultArtifactRoot: "mlflow-artifacts:/", ServeArtifacts: true, Log: quiet, Artifacts: dest, OpenStore: testOpener(t)})
		c := &apiClient{domaintest.NewClient(t, api.Handlers())}

		outside := t.TempDir()
		domaintest.WriteFile(t, filepath.Join(outside, "secret.txt"), sentinel)
		localRoot := t.TempDir()
		domaintest.WriteFile(t, filepath.Join(localRoot, "secret.txt"), sentinel)

		exp := c.mustPost("/experiments/create", `{"name": "proxied"}`)["experiment_id"].(string)
		proxiedRun := c.mustPost("/runs/create", `{"experiment_id": "`+exp+`"}`)["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
		locBody, _ := json.Marshal(map[string]string{"name": "local", "artifact_location": localRoot})
		exp2 := c.mustPost("/experiments/create", string(locBody))["experiment_id"].(string)
		localRun := c.mustPost("/runs/create", `{"experiment_id": "`+exp2+`"}`)["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)

		files := map[string]string{
			"model/MLmodel": "flavors:\n  python_function: {}\n", "model/model.pkl": "\x80\x04binary\x00bytes",
			"my file.txt": "spaced", "ünï.txt": "unicode", "empty.bin": "", "plot.png": "\x89PNG",
		}
		// The destination's run root, with a sentinel one level above it.
		domaintest.WriteFile(t, filepath.Join(destDir, exp, "secret.txt"), sentinel)
		domaintest.WriteFile(t, filepath.Join(destDir, "secret.txt"), sentinel)
		proxiedDir := filepath.Join(destDir, exp, proxiedRun, "artifacts")
		localDir := filepath.Join(localRoot, localRun, "artifacts")
		for _, dir := range []string{proxiedDir, localDir} {
			for k, v := range files {
				domaintest.WriteFile(t, filepath.Join(dir, k), v)
			}
			if err := os.Symlink(outside, filepath.Join(dir, "escape")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "secret-link.txt")); err != nil {
				t.Fatal(err)
			}
		}

		get := func(run, path string, headers map[string]string) (int, string, map[string]string) {
			t.Helper()
			q := url.Values{"run_id": {run}, "path": {path}}
			resp, body := c.Get("/get-artifact?"+q.Encode(), false, headers)
			h := map[string]string{}
			for _, k := range []string{"Content-Type", "Content-Disposition", "Content-Range", "Content-Length", "X-Content-Type-Options", "Accept-Ranges"} {
				h[k] = resp.Header.Get(k)
			}
			if strings.Contains(body, sentinel) {
				t.Fatalf("run %s path %q: a byte from outside the root: %q", run, path, body)
			}
			return resp.StatusCode, body, h
		}

		for _, run := range []string{proxiedRun, localRun} {
			for _, tc := range []struct{ path, ctype, disp string }{
				{"model/MLmodel", "text/plain", "attachment; filename=MLmodel"},
				{"model/model.pkl", "application/octet-stream", "attachment; filename=model.pkl"},
				{"my file.txt", "text/plain", `attachment; filename="my file.txt"`},
				{"ünï.txt", "text/plain", "attachment; filename=uni.txt; filename*=UTF-8''%C3%BCn%C3%AF.txt"},
				{"plot.png", "image/png", "attachment; filename=plot.png"},
				{"./model//MLmodel", "text/plain", "attachment; filename=MLmodel"},
				{"model%2FMLmodel", "text/plain", "attachment; filename=MLmodel"},
			} {
				st, body, h := get(run, tc.path, nil)
				want := files[strings.TrimPrefix(strings.ReplaceAll(strings.ReplaceAll(tc.path, "%2F", "/"), "//", "/"), "./")]
				if st != 200 || body != want || h["Content-Type"] != tc.ctype || h["Content-Disposition"] != tc.disp || h["X-Content-Type-Options"] != "nosniff" {
					t.Errorf("run %s %q: %d %q %v", run, tc.path, st, body, h)
				}
			}
			// An empty file, ranges, HEAD, run_uuid.
			if st, body, h := get(run, "empty.bin", nil); st != 200 || body != "" || h["Content-Length"] != "0" {
				t.Errorf("empty: %d %q %v", st, body, h)
			}
			if st, body, h := get(run, "model/model.pkl", map[string]string{"Range": "bytes=1-6"}); st != 206 || body != "\x04binar" || h["Content-Range"] != "bytes 1-6/14" {
				t.Errorf("range: %d %q %v", st, body, h)
			}
			if st, body, h := get(run, "model/model.pkl", map[string]string{"Range": "bytes=-5"}); st != 206 || body != "bytes" || h["Content-Range"] != "bytes 9-13/14" {
				t.Errorf("suffix range: %d %q %v", st, body, h)
			}
			if st, _, h := get(run, "model/model.pkl", map[string]string{"Range": "bytes=99-"}); st != 416 || h["Content-Range"] != "bytes */14" || h["Content-Disposition"] != "" {
				t.Errorf("range past the end: %d %v", st, h)
			}
			resp, body := c.Get("/get-artifact?"+url.Values{"run_uuid": {run}, "path": {"model/MLmodel"}}.Encode(), true, nil)
			if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Length") != "31" {
				t.Errorf("HEAD with run_uuid: %d %q %v", resp.StatusCode, body, resp.Header)
			}
			// Missing files and directories are MLflow errors, not 500s,
			// and carry no attachment header.
			for path, want := range map[string]int{"nope.txt": 404, "model": 400, "model/": 400, "escape/nope": 400} {
				st, body, h := get(run, path, nil)
				var e map[string]any
				if st != want || json.Unmarshal([]byte(body), &e) != nil || e["error_code"] == nil || h["Content-Disposition"] != "" {
					t.Errorf("run %s %q: %d %q %v", run, path, st, body, h)
				}
			}
			// Hostile paths: 400, nothing from outside.
			for _, p := range append(domaintest.HostilePaths, "escape/secret.txt", "secret-link.txt") {
				if st, body, _ := get(run, p, nil); st != 400 {
					t.Errorf("run %s hostile %q: %d %q", run, p, st, body)
				}
			}
		}

		// Parameter errors.
		for q, want := range map[string]int{
			"path=model/MLmodel":                                          400,
			"run_id=" + proxiedRun:                                        400,
			"run_id=" + proxiedRun + "&path=":                             400,
			"run_id=nope&path=model/MLmodel":                              404,
			"run_id=x%27%20OR%20%271%27%3D%271&path=MLmodel":              404,
			"run_id=" + proxiedRun + "%00&path=model/MLmodel":             400,
			"run_id=" + proxiedRun + "%ff&path=model/MLmodel":             400,
			"run_id=" + proxiedRun + "&path=" + strings.Repeat("a/", 600): 400,
		} {
			resp, body := c.Get("/get-artifact?"+q, false, nil)
			var e map[string]any
			if resp.StatusCode != want || json.Unmarshal([]byte(body), &e) != nil || e["error_code"] == nil {
				t.Errorf("%s: %d %q", q, resp.StatusCode, body)
			}
		}
	})
}

// TestGetLoggedModelArtifact: the ajax logged-model file route serves
// from the model's artifact location like /get-artifact, with upstream's
// BAD_REQUEST for a missing artifact_file_path.
func TestGetLoggedModelArtifact(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		destDir := t.TempDir()
		raw, err := stores.Open(context.Background(), destDir)
		if err != nil {
			t.Fatal(err)
		}
		dest := stores.Instrument(raw, "local", stores.NewMetrics(prometheus.NewRegistry()), quiet)
		api := NewAPI(db, APIConfig{DefaultArtifactRoot: "mlflow-artifacts:/", ServeArtifacts: true, Log: quiet, Artifacts: dest, OpenStore: testOpener(t)})
		c := &apiClient{domaintest.NewClient(t, api.Handlers())}
		exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)
		mid := c.mustPost("/logged-models", `{"experiment_id": "`+exp+`"}`)["model"].(map[string]any)["info"].(map[string]any)["model_id"].(string)
		domaintest.WriteFile(t, filepath.Join(destDir, exp, "models", mid, "artifacts", "MLmodel"), "flavors: {}")
		domaintest.WriteFile(t, filepath.Join(destDir, exp, "models", "secret.txt"), sentinel)
		path := "/ajax-api/2.0/mlflow/logged-models/" + mid + "/artifacts/files?"
		resp, body := c.Get(path+"artifact_file_path=MLmodel", false, nil)
		if resp.StatusCode != 200 || body != "flavors: {}" || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Content-Disposition") != "attachment; filename=MLmodel" {
			t.Errorf("MLmodel: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		if st, out := c.Do("GET", path, "", ""); st != 400 || out["error_code"] != "BAD_REQUEST" || out["message"] != `Request must include the "artifact_file_path" query parameter.` {
			t.Errorf("missing path: %d %v", st, out)
		}
		for _, p := range domaintest.HostilePaths {
			resp, body := c.Get(path+url.Values{"artifact_file_path": {p}}.Encode(), false, nil)
			if resp.StatusCode != 400 || strings.Contains(body, sentinel) {
				t.Errorf("hostile %q: %d %q", p, resp.StatusCode, body)
			}
		}
		if st, _ := c.Do("GET", "/ajax-api/2.0/mlflow/logged-models/m-nope/artifacts/files?artifact_file_path=MLmodel", "", ""); st != 404 {
			t.Errorf("unknown model: %d", st)
		}
		if resp, _ := c.Get("/api/2.0/mlflow/logged-models/"+mid+"/artifacts/files?artifact_file_path=MLmodel", false, nil); resp.StatusCode != 404 {
			t.Errorf("under /api (upstream serves it under /ajax-api only): %d", resp.StatusCode)
		}
	})
}
