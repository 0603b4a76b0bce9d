package s3e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/ferryml/ferry/test/backends/s3srv"
)

// tracking calls a tracking route and decodes the 200 answer.
func (f *ferry) tracking(t testing.TB, method, route string, body any, q url.Values) map[string]any {
	t.Helper()
	var code int
	var raw []byte
	if body != nil {
		b, _ := json.Marshal(body)
		code, raw, _ = do(t, method, f.Base+"/api/2.0/mlflow"+route, bytes.NewReader(b), map[string]string{"Content-Type": "application/json"})
	} else {
		code, raw, _ = do(t, method, f.Base+"/api/2.0/mlflow"+route+"?"+q.Encode(), nil, nil)
	}
	if code != 200 {
		t.Fatalf("%s %s: %d %s", method, route, code, raw)
	}
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *ferry) newRun(t testing.TB, exp string) (id, uri string) {
	t.Helper()
	info := f.tracking(t, http.MethodPost, "/runs/create", map[string]any{"experiment_id": exp}, nil)["run"].(map[string]any)["info"].(map[string]any)
	return info["run_id"].(string), info["artifact_uri"].(string)
}

func (f *ferry) list(t testing.TB, run string) string {
	t.Helper()
	files, _ := f.tracking(t, http.MethodGet, "/artifacts/list", nil, url.Values{"run_id": {run}})["files"].([]any)
	var paths []string
	for _, fi := range files {
		paths = append(paths, fi.(map[string]any)["path"].(string))
	}
	sort.Strings(paths)
	return fmt.Sprint(paths)
}

func openFDs(t testing.TB, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestRunRootsOnS3: with artifact_location s3://bucket/prefix?x=1 each run's
// root is s3://bucket/prefix/<run>/artifacts?x=1 (the query after the run
// path, as upstream's append_to_uri_path), so two runs list their own
// objects and not the experiment's; the proxied mlflow-artifacts:/…?x=1
// form on an S3 destination keeps runs apart too; and listing hundreds of
// distinct runs' S3 roots shares one client, so the server's descriptors
// (its connections to S3) stay flat.
func TestRunRootsOnS3(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	root := srv.Client(t)
	f := startFerry(t, "s3://"+bucket+"/"+prefix, srv.Env())
	put := func(key string) {
		t.Helper()
		if _, err := root.PutObject(t.Context(), bucket, key, bytes.NewReader([]byte(key)), int64(len(key)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("s3 location with a query", func(t *testing.T) {
		exp := f.tracking(t, http.MethodPost, "/experiments/create",
			map[string]any{"name": "s3q", "artifact_location": "s3://" + bucket + "/exp?x=1"}, nil)["experiment_id"].(string)
		a, uriA := f.newRun(t, exp)
		b, _ := f.newRun(t, exp)
		if want := "s3://" + bucket + "/exp/" + a + "/artifacts?x=1"; uriA != want {
			t.Fatalf("artifact_uri %q, want %q", uriA, want)
		}
		put("exp/" + a + "/artifacts/a.txt")
		put("exp/" + b + "/artifacts/b.txt")
		put("exp/at-the-experiment-root.txt")
		if got := f.list(t, a); got != "[a.txt]" {
			t.Errorf("run A lists %s, want [a.txt]", got)
		}
		if got := f.list(t, b); got != "[b.txt]" {
			t.Errorf("run B lists %s, want [b.txt]", got)
		}
	})

	t.Run("mlflow-artifacts location with a query on an S3 destination", func(t *testing.T) {
		exp := f.tracking(t, http.MethodPost, "/experiments/create",
			map[string]any{"name": "pq", "artifact_location": "mlflow-artifacts:/pq?x=1"}, nil)["experiment_id"].(string)
		a, _ := f.newRun(t, exp)
		b, _ := f.newRun(t, exp)
		for run, name := range map[string]string{a: "a.txt", b: "b.txt"} {
			if code, body, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "pq/"+run+"/artifacts/"+name), bytes.NewReader([]byte(name)), nil); code != 200 {
				t.Fatalf("PUT: %d %s", code, body)
			}
		}
		if got := f.list(t, a); got != "[a.txt]" {
			t.Errorf("run A lists %s, want [a.txt]", got)
		}
		if got := f.list(t, b); got != "[b.txt]" {
			t.Errorf("run B lists %s, want [b.txt]", got)
		}
	})

	t.Run("distinct run listings share one client", func(t *testing.T) {
		exp := f.tracking(t, http.MethodPost, "/experiments/create",
			map[string]any{"name": "many", "artifact_location": "s3://" + bucket + "/many"}, nil)["experiment_id"].(string)
		const n = 300
		runs := make([]string, n)
		for i := range runs {
			runs[i], _ = f.newRun(t, exp)
			put("many/" + runs[i] + "/artifacts/m.bin")
		}
		for i := 0; i < 20; i++ { // warm up the connection pool
			f.list(t, runs[i])
		}
		before := openFDs(t, f.PID())
		for i := 20; i < n; i++ {
			if got := f.list(t, runs[i]); got != "[m.bin]" {
				t.Fatalf("run %d lists %s", i, got)
			}
		}
		after := openFDs(t, f.PID())
		t.Logf("%d listings of distinct S3 run roots: descriptors %d -> %d", n-20, before, after)
		if after > before+4 {
			t.Errorf("descriptors %d -> %d over %d listings of distinct S3 run roots", before, after, n-20)
		}
	})
}
