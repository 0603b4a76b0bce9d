package s3e2e

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/ferryml/ferry/test/backends/s3srv"
	"github.com/ferryml/ferry/test/ferrytest"
)

// TestDownloadRoutesOnS3: /get-artifact and /model-versions/get-artifact
// stream files from an S3 artifacts destination (proxied run roots) and
// from an S3 run root of its own (non-proxied), byte-exact with ranges,
// for versions registered from a run, by alias and by version; hostile
// paths and sources answer 400 and never return the sentinel objects
// planted beside every root.
func TestDownloadRoutesOnS3(t *testing.T) {
	const sentinel = "SENTINEL-outside-the-root"
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	mc := srv.Client(t)
	f := startFerry(t, "s3://"+bucket+"/"+prefix, srv.Env())
	put := func(key string, data []byte) {
		t.Helper()
		if _, err := mc.PutObject(t.Context(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"secret.txt", prefix + "/secret.txt", "direct/secret.txt", "direct/x/secret.txt"} {
		put(k, []byte(sentinel))
	}
	files := map[string][]byte{"MLmodel": []byte("flavors: {}\n"), "model.pkl": ferrytest.RandomBytes(t, 5<<20+3), "sub/w b.bin": []byte("w b")}

	// A proxied run (mlflow-artifacts:/<exp>/<run>/artifacts on the S3
	// destination), its files uploaded through the proxy.
	exp := f.tracking(t, http.MethodPost, "/experiments/create", map[string]any{"name": "dl"}, nil)["experiment_id"].(string)
	proxied, proxiedURI := f.newRun(t, exp)
	put(prefix+"/"+exp+"/secret.txt", []byte(sentinel))
	for name, data := range files {
		if code, body, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", exp+"/"+proxied+"/artifacts/model/"+name), bytes.NewReader(data), nil); code != 200 {
			t.Fatalf("PUT %s: %d %s", name, code, body)
		}
	}
	// A run whose root is S3 itself (non-proxied), files written to S3.
	exp2 := f.tracking(t, http.MethodPost, "/experiments/create", map[string]any{"name": "direct", "artifact_location": "s3://" + bucket + "/direct"}, nil)["experiment_id"].(string)
	direct, directURI := f.newRun(t, exp2)
	for name, data := range files {
		put("direct/"+direct+"/artifacts/model/"+name, data)
	}

	f.tracking(t, http.MethodPost, "/registered-models/create", map[string]any{"name": "m"}, nil)
	f.tracking(t, http.MethodPost, "/model-versions/create", map[string]any{"name": "m", "source": proxiedURI + "/model", "run_id": proxied}, nil)
	f.tracking(t, http.MethodPost, "/model-versions/create", map[string]any{"name": "m", "source": directURI + "/model", "run_id": direct}, nil)
	f.tracking(t, http.MethodPost, "/registered-models/alias", map[string]any{"name": "m", "alias": "champion", "version": "2"}, nil)
	f.tracking(t, http.MethodPost, "/model-versions/create", map[string]any{"name": "m", "source": "models:/m@champion"}, nil)
	f.tracking(t, http.MethodPost, "/model-versions/create", map[string]any{"name": "m", "source": "models:/m/1"}, nil)

	get := func(route string, q url.Values, header map[string]string) (int, []byte, http.Header) {
		t.Helper()
		code, body, h := do(t, http.MethodGet, f.Base+route+"?"+q.Encode(), nil, header)
		if bytes.Contains(body, []byte(sentinel)) {
			t.Fatalf("%s %v: a byte from outside the root", route, q)
		}
		return code, body, h
	}
	type target struct {
		route string
		q     url.Values
	}
	targets := []target{
		{"/get-artifact", url.Values{"run_id": {proxied}}},
		{"/get-artifact", url.Values{"run_id": {direct}}},
	}
	for _, v := range []string{"1", "2", "3", "4"} {
		targets = append(targets, target{"/model-versions/get-artifact", url.Values{"name": {"m"}, "version": {v}}})
	}
	for _, tg := range targets {
		pathPrefix := ""
		if tg.route == "/get-artifact" {
			pathPrefix = "model/"
		}
		for name, data := range files {
			q := url.Values{"path": {pathPrefix + name}}
			for k, v := range tg.q {
				q[k] = v
			}
			code, body, h := get(tg.route, q, nil)
			if code != 200 || !bytes.Equal(body, data) || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment; filename=") {
				t.Errorf("%s %v: %d, %d bytes, %v", tg.route, q, code, len(body), h)
			}
		}
		q := url.Values{"path": {pathPrefix + "model.pkl"}}
		for k, v := range tg.q {
			q[k] = v
		}
		if code, body, h := get(tg.route, q, map[string]string{"Range": "bytes=1048576-1048585"}); code != 206 || !bytes.Equal(body, files["model.pkl"][1<<20:1<<20+10]) || h.Get("Content-Range") != "bytes 1048576-1048585/5242883" {
			t.Errorf("%s range: %d %v", tg.route, code, h)
		}
		for _, bad := range []string{"../secret.txt", "../../secret.txt", "../../../secret.txt", "../../../../secret.txt", "%2e%2e/%2e%2e/secret.txt",
			"%252e%252e%252f%252e%252e%252fsecret.txt", "..%5c..%5csecret.txt", "/secret.txt", "//secret.txt", "a\x00b", "model/../../../secret.txt"} {
			q := url.Values{"path": {bad}}
			for k, v := range tg.q {
				q[k] = v
			}
			if code, body, _ := get(tg.route, q, nil); code != 400 {
				t.Errorf("%s hostile %q: %d %s", tg.route, bad, code, body)
			}
		}
		q.Set("path", pathPrefix+"nope")
		if code, body, _ := get(tg.route, q, nil); code != 404 {
			t.Errorf("%s missing file: %d %s", tg.route, code, body)
		}
	}
	// Sources that leave their root are refused at create, so no version
	// can point there.
	for _, src := range []string{"s3://" + bucket + "/direct/" + direct + "/../x", "s3://" + bucket + "/direct/%2e%2e/x", "mlflow-artifacts:/../secret.txt",
		"mlflow-artifacts:/" + exp + "/%252e%252e/secret.txt", "http:///#/../secret.txt"} {
		code, body := postJSON(t, f.Base+"/api/2.0/mlflow/model-versions/create", map[string]any{"name": "m", "source": src, "run_id": direct}, nil)
		if code != 400 {
			t.Errorf("source %q: %d %s", src, code, body)
		}
	}
}
