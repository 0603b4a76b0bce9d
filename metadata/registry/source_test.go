package registry

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// TestSourceTraversalPayloads: the traversal payloads of upstream's
// _validate_non_local_source_contains_relative_paths docstring and of the
// published model-version-source advisories (local-path reads, encoded and
// double-encoded "..", "//proc/self/root", "http:///#/../" tricks), from
// the Ferry authors' reading of those advisories; the spec lists none.
func TestSourceTraversalPayloads(t *testing.T) {
	refused := []string{
		// upstream docstring examples
		"mlflow-artifacts://host:port/../../../../",
		"http://host:port/api/2.0/mlflow-artifacts/artifacts/../../../../",
		"https://host:port/api/2.0/mlflow-artifacts/artifacts/../../../../",
		"/models/artifacts/../../../",
		"s3:/my_bucket/models/path/../../other/path",
		"file://path/to/../../../../some/where/you/should/not/be",
		"mlflow-artifacts://host:port/..%2f..%2f..%2f..%2f",
		"http://host:port/api/2.0/mlflow-artifacts/artifacts%00",
		// encodings
		"http://host/%2e%2e/%2e%2e/etc/passwd",
		"http://host/%252e%252e/%252e%252e/etc/passwd",
		"http://host/%25252e%25252e%25252fetc",
		"s3://bucket/a/..%2Fb",
		"s3://bucket/a/%2E%2E/b",
		"gs://bucket/x%00.txt",
		// fragment and empty-host tricks
		"http:///#/../../../../etc/passwd",
		"http://host/#/../../etc/passwd",
		"https://host/a?x=/../../etc",
		// symlinked server paths
		"s3://bucket//proc/self/root/etc/passwd",
		"http://host//proc/self/cwd/x",
		// local paths and file: URIs without a run
		"/etc/passwd",
		"file:///etc/passwd",
		"file:/etc/passwd",
		"file://localhost/etc/passwd",
		"../../etc/passwd",
		"//proc/self/root/etc/passwd",
		"relative/model",
		"C:/Windows/win.ini", // one-letter scheme: urlparse says scheme "c", remote; its path /Windows/... is fine → see below
	}
	for _, s := range refused {
		werr := checkSource(s, sourceOwner{kind: "run_id"})
		if s == "C:/Windows/win.ini" {
			// On POSIX upstream treats "c:" as a scheme, not a drive, so the
			// traversal checks pass: accepted, as upstream on Linux.
			if werr != nil {
				t.Errorf("%s: %v", s, werr)
			}
			continue
		}
		if werr == nil || werr.Code != "INVALID_PARAMETER_VALUE" || !strings.Contains(werr.Message, "source") && !strings.Contains(werr.Message, "remote uri") {
			t.Errorf("%q accepted or wrong error: %v", s, werr)
		}
	}
	accepted := []string{
		"s3://bucket/path/model",
		"runs:/0123abcd/model",
		"models:/m/1",
		"models:/m@champion",
		"mlflow-artifacts:/0/abc/artifacts/model",
		"gs://bucket/a..b/model",
		"https://host/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/m",
		"dbfs:/databricks/mlflow/0/r/artifacts/m",
	}
	for _, s := range accepted {
		if werr := checkSource(s, sourceOwner{kind: "run_id"}); werr != nil {
			t.Errorf("%q refused: %v", s, werr)
		}
	}
	// The message quotes the source as sent (before decoding).
	werr := checkSource("s3://b/..%2fx", sourceOwner{kind: "run_id"})
	if werr == nil || werr.Message != "Invalid model version source: 's3://b/..%2fx'. If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references present. Please provide an absolute path." {
		t.Errorf("message: %v", werr)
	}
	werr = checkSource("/etc/passwd", sourceOwner{kind: "run_id"})
	if werr == nil || werr.Message != "Invalid model version source: '/etc/passwd'. To use a local path as a model version source, the run_id request parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the run_id." {
		t.Errorf("message: %v", werr)
	}
}

func TestPromptSource(t *testing.T) {
	for s, ok := range map[string]bool{
		"prompt-template": true, "dummy-source": true, "s3://b/p": true,
		"file:///etc/passwd": false, "/etc/passwd": false, "s3://b/../x": false, "http:///#/../x": false,
	} {
		if werr := checkPromptSource(s); (werr == nil) != ok {
			t.Errorf("%q: %v", s, werr)
		}
	}
}

// TestLocalSourceUnderRun: a local source is accepted only inside the
// local artifact directory of the run named by run_id, through the handler.
func TestLocalSourceUnderRun(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "0", "r1", "artifacts")
	if err := os.MkdirAll(filepath.Join(root, "model"), 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(dir, "secret")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		if err := db.Write(t.Context(), func(tx *metadata.Tx) error {
			if _, err := tx.Exec(t.Context(), "INSERT INTO runs (run_uuid, artifact_uri, lifecycle_stage) VALUES (?, ?, 'active')", "r1", root); err != nil {
				return err
			}
			_, err := tx.Exec(t.Context(), "INSERT INTO runs (run_uuid, artifact_uri, lifecycle_stage) VALUES (?, ?, 'active')", "r2", "s3://bucket/0/r2/artifacts")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		c := newClient(t, db)
		c.ok("POST", "/registered-models/create", `{"name":"m"}`)
		mv := obj(c.ok("POST", "/model-versions/create", js(map[string]any{"name": "m", "source": root + "/model", "run_id": "r1"})), "model_version")
		if mv["source"] != root+"/model" {
			t.Errorf("local source: %v", mv)
		}
		c.ok("POST", "/model-versions/create", js(map[string]any{"name": "m", "source": "file://" + root, "run_id": "r1"}))
		for _, s := range []string{root + "/../../r9/artifacts", root + "/link/x", outside, "file://" + outside, root + "x"} {
			c.fails("POST", "/model-versions/create", js(map[string]any{"name": "m", "source": s, "run_id": "r1"}), 400, "INVALID_PARAMETER_VALUE", "")
		}
		// A run whose artifacts are remote takes no local source.
		c.fails("POST", "/model-versions/create", js(map[string]any{"name": "m", "source": root + "/model", "run_id": "r2"}), 400, "INVALID_PARAMETER_VALUE", "")
		c.fails("POST", "/model-versions/create", js(map[string]any{"name": "m", "source": root + "/model", "run_id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=nope not found")
		c.fails("POST", "/model-versions/create", js(map[string]any{"name": "m", "source": "s3://b/../x", "run_id": "r1"}), 400, "INVALID_PARAMETER_VALUE", "")
		// prompts: placeholders pass, local paths do not
		c.ok("POST", "/model-versions/create", `{"name":"m","source":"prompt-template","tags":[{"key":"mlflow.prompt.is_prompt","value":"true"}]}`)
		c.fails("POST", "/model-versions/create", `{"name":"m","source":"/etc/passwd","tags":[{"key":"mlflow.prompt.is_prompt","value":"true"}]}`, 400, "INVALID_PARAMETER_VALUE",
			"Invalid prompt source: '/etc/passwd'. Local source paths are not allowed for prompts.")
		c = newClientWith(t, db, Config{Log: domaintest.Quiet, SourceRegex: regexp.MustCompile("^s3://allowed/")})
		c.ok("POST", "/model-versions/create", `{"name":"m","source":"s3://allowed/x"}`)
		c.fails("POST", "/model-versions/create", `{"name":"m","source":"s3://other/x"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid model version source: 's3://other/x'.")
	})
}
