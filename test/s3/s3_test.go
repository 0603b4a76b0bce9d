package s3e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferryml/ferry/test/backends/s3srv"
	"github.com/ferryml/ferry/test/ferrytest"
)

const prefix = "mlartifacts"

// The multipart helpers shared with the other black-box tests.
type (
	credential = ferrytest.Credential
	createResp = ferrytest.CreateResp
	part       = ferrytest.Part
)

var (
	randomBytes = ferrytest.RandomBytes
	putPart     = ferrytest.PutPart
)

// TestProxyOnMinIO drives every artifact route of a ferry whose
// --artifacts-destination is s3://bucket/prefix on MinIO.
func TestProxyOnMinIO(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	root := srv.Client(t)
	env := append(srv.Env(),
		"MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE=6291456", // 6 MiB
		"MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=5242880")        // 5 MiB
	f := startFerry(t, "s3://"+bucket+"/"+prefix, env)

	small := []byte("hello from ferry on minio\n")
	big := randomBytes(t, 12<<20+7)

	t.Run("put, get, range, list", func(t *testing.T) {
		if code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/run/artifacts/hello.txt"), bytes.NewReader(small), nil); code != 200 {
			t.Fatalf("PUT: %d %s", code, b)
		}
		code, b, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/run/artifacts/hello.txt"), nil, nil)
		if code != 200 || !bytes.Equal(b, small) {
			t.Fatalf("GET: %d %q", code, b)
		}
		code, b, h := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/run/artifacts/hello.txt"), nil, map[string]string{"Range": "bytes=6-9"})
		if code != 206 || string(b) != "from" || h.Get("Content-Range") != fmt.Sprintf("bytes 6-9/%d", len(small)) {
			t.Fatalf("ranged GET: %d %q %v", code, b, h)
		}
		code, b, _ = do(t, http.MethodGet, f.Base+"/api/2.0/mlflow-artifacts/artifacts?path=0/run/artifacts", nil, nil)
		if code != 200 || !strings.Contains(string(b), `"path":"hello.txt"`) {
			t.Fatalf("list: %d %s", code, b)
		}
		if _, err := root.StatObject(t.Context(), bucket, prefix+"/0/run/artifacts/hello.txt", minio.StatObjectOptions{}); err != nil {
			t.Fatalf("object not at s3://%s/%s/0/run/artifacts/hello.txt: %v", bucket, prefix, err)
		}
	})

	t.Run("large PUT becomes a multipart upload", func(t *testing.T) {
		code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/run/artifacts/big.bin"), bytes.NewReader(big), nil)
		if code != 200 {
			t.Fatalf("PUT: %d %s", code, b)
		}
		info, err := root.StatObject(t.Context(), bucket, prefix+"/0/run/artifacts/big.bin", minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(info.ETag, "-3") || info.Size != int64(len(big)) {
			t.Fatalf("stored with ETag %s, %d bytes; want 3 parts of 5 MiB, %d bytes", info.ETag, info.Size, len(big))
		}
		code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/run/artifacts/big.bin"), nil, nil)
		if code != 200 || !bytes.Equal(got, big) {
			t.Fatalf("GET: %d, %d bytes", code, len(got))
		}
	})

	t.Run("chunked PUT of unknown length", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for off := 0; off < len(big); off += 1 << 20 {
				pw.Write(big[off:min(off+1<<20, len(big))])
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPut, f.ArtifactsURL("artifacts", "0/run/artifacts/chunked.bin"), pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("chunked PUT: %d %s", resp.StatusCode, b)
		}
		code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/run/artifacts/chunked.bin"), nil, nil)
		if code != 200 || !bytes.Equal(got, big) {
			t.Fatalf("GET: %d, %d bytes", code, len(got))
		}
	})

	t.Run("presigned download", func(t *testing.T) {
		code, b, _ := do(t, http.MethodGet, f.ArtifactsURL("presigned", "0/run/artifacts/big.bin"), nil, nil)
		if code != 200 {
			t.Fatalf("presigned: %d %s", code, b)
		}
		var p struct {
			URL      string            `json:"url"`
			Headers  map[string]string `json:"headers"`
			FileSize int64             `json:"file_size"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if p.FileSize != int64(len(big)) || !strings.HasPrefix(p.URL, srv.Endpoint) {
			t.Fatalf("presigned answer %s", b)
		}
		h := map[string]string{"Range": "bytes=100-199"}
		for k, v := range p.Headers {
			h[k] = v
		}
		code, got, _ := do(t, http.MethodGet, p.URL, nil, h)
		if code != 206 || !bytes.Equal(got, big[100:200]) {
			t.Fatalf("GET presigned range: %d, %d bytes", code, len(got))
		}
	})

	t.Run("presigned multipart: no bytes through ferry", func(t *testing.T) {
		before := f.Metric(t, "ferry_store_transferred_bytes_total", `op="put"`)
		var cr createResp
		code, b := postJSON(t, f.ArtifactsURL("mpu/create", "0/run/artifacts/mpu"), map[string]any{"path": "/local/data/model.bin", "num_parts": 3}, &cr)
		if code != 200 || cr.UploadID == "" || len(cr.Credentials) != 3 {
			t.Fatalf("create: %d %s", code, b)
		}
		var parts []part
		for i, c := range cr.Credentials {
			if c.PartNumber != i+1 {
				t.Fatalf("credential %d has part_number %d", i, c.PartNumber)
			}
			chunk := big[i*(5<<20) : min((i+1)*(5<<20), len(big))]
			p, code, msg := putPart(t, c, chunk)
			if code != 200 {
				t.Fatalf("part %d: %d %s", c.PartNumber, code, msg)
			}
			parts = append(parts, p)
		}
		code, b = postJSON(t, f.ArtifactsURL("mpu/complete", "0/run/artifacts/mpu"), map[string]any{"path": "/local/data/model.bin", "upload_id": cr.UploadID, "parts": parts}, nil)
		if code != 200 {
			t.Fatalf("complete: %d %s", code, b)
		}
		if after := f.Metric(t, "ferry_store_transferred_bytes_total", `op="put"`); after != before {
			t.Fatalf("ferry's put byte counter moved by %.0f during a presigned multipart upload", after-before)
		}
		code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/run/artifacts/mpu/model.bin"), nil, nil)
		if code != 200 || !bytes.Equal(got, big) {
			t.Fatalf("GET after complete: %d, %d bytes", code, len(got))
		}

		// Abort: nothing is left.
		code, b = postJSON(t, f.ArtifactsURL("mpu/create", "0/run/artifacts/mpu"), map[string]any{"path": "aborted.bin", "num_parts": 1}, &cr)
		if code != 200 {
			t.Fatalf("create: %d %s", code, b)
		}
		if _, code, msg := putPart(t, cr.Credentials[0], small); code != 200 {
			t.Fatalf("part: %d %s", code, msg)
		}
		if code, b = postJSON(t, f.ArtifactsURL("mpu/abort", "0/run/artifacts/mpu"), map[string]any{"path": "aborted.bin", "upload_id": cr.UploadID}, nil); code != 200 {
			t.Fatalf("abort: %d %s", code, b)
		}
		// The whole bucket: MinIO takes a non-empty prefix as one exact key.
		ups, err := minio.Core{Client: root}.ListMultipartUploads(t.Context(), bucket, "", "", "", "", 1000)
		if err != nil || len(ups.Uploads) != 0 {
			t.Fatalf("uploads left after abort: %+v, %v", ups.Uploads, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if code, b, _ := do(t, http.MethodDelete, f.ArtifactsURL("artifacts", "0/run"), nil, nil); code != 200 {
			t.Fatalf("DELETE: %d %s", code, b)
		}
		for o := range root.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
			t.Errorf("left after delete: %s %v", o.Key, o.Err)
		}
	})
}

// TestExpectedOwnerThroughFerry runs ferry on versitygw, which checks
// x-amz-expected-bucket-owner: with a wrong owner every kind of request
// fails with a clear error and writes nothing; with the right one
// everything works, presigned parts included.
func TestExpectedOwnerThroughFerry(t *testing.T) {
	srv := s3srv.Start(t, s3srv.Versitygw)
	bucket := srv.Bucket(t)
	root := srv.Client(t)
	seed := []byte("seeded by the bucket owner")
	if _, err := root.PutObject(t.Context(), bucket, prefix+"/0/r/seed.txt", bytes.NewReader(seed), int64(len(seed)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	listing := func() string {
		var b strings.Builder
		for o := range root.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
			fmt.Fprintf(&b, "%s(%d) ", o.Key, o.Size)
		}
		return b.String()
	}

	t.Run("wrong owner", func(t *testing.T) {
		f := startFerry(t, "s3://"+bucket+"/"+prefix, append(srv.Env(), "MLFLOW_S3_EXPECTED_BUCKET_OWNER=999999999999"))
		before := listing()
		checks := []struct {
			name string
			run  func() (int, []byte)
		}{
			{"upload", func() (int, []byte) {
				c, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/r/new.txt"), bytes.NewReader([]byte("x")), nil)
				return c, b
			}},
			{"download", func() (int, []byte) {
				c, b, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/seed.txt"), nil, nil)
				return c, b
			}},
			{"list", func() (int, []byte) {
				c, b, _ := do(t, http.MethodGet, f.Base+"/api/2.0/mlflow-artifacts/artifacts?path=0/r", nil, nil)
				return c, b
			}},
			{"mpu/create", func() (int, []byte) {
				return postJSON(t, f.ArtifactsURL("mpu/create", "0/r"), map[string]any{"path": "big.bin", "num_parts": 2}, nil)
			}},
			{"presigned download", func() (int, []byte) {
				c, b, _ := do(t, http.MethodGet, f.ArtifactsURL("presigned", "0/r/seed.txt"), nil, nil)
				return c, b
			}},
			{"delete", func() (int, []byte) {
				c, b, _ := do(t, http.MethodDelete, f.ArtifactsURL("artifacts", "0/r/seed.txt"), nil, nil)
				return c, b
			}},
		}
		for _, c := range checks {
			code, body := c.run()
			if code != http.StatusForbidden || !strings.Contains(string(body), "PERMISSION_DENIED") {
				t.Errorf("%s with a wrong owner: %d %s; want 403 PERMISSION_DENIED", c.name, code, body)
			}
		}
		if after := listing(); after != before {
			t.Fatalf("bucket changed:\nbefore %s\nafter  %s", before, after)
		}
		if ups, err := (minio.Core{Client: root}).ListMultipartUploads(t.Context(), bucket, "", "", "", "", 100); err != nil || len(ups.Uploads) != 0 {
			t.Fatalf("multipart uploads opened with a wrong owner: %+v %v", ups.Uploads, err)
		}
	})

	t.Run("right owner", func(t *testing.T) {
		f := startFerry(t, "s3://"+bucket+"/"+prefix, append(srv.Env(), "MLFLOW_S3_EXPECTED_BUCKET_OWNER="+srv.Owner))
		code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/seed.txt"), nil, nil)
		if code != 200 || !bytes.Equal(got, seed) {
			t.Fatalf("download: %d %s", code, got)
		}
		data := randomBytes(t, 6<<20)
		if code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/r/new.bin"), bytes.NewReader(data), nil); code != 200 {
			t.Fatalf("upload: %d %s", code, b)
		}
		var cr createResp
		if code, b := postJSON(t, f.ArtifactsURL("mpu/create", "0/r"), map[string]any{"path": "big.bin", "num_parts": 2}, &cr); code != 200 {
			t.Fatalf("mpu/create: %d %s", code, b)
		}
		var parts []part
		for i, c := range cr.Credentials {
			if c.Headers["x-amz-expected-bucket-owner"] != srv.Owner {
				t.Fatalf("credential %d headers %v lack the owner", i, c.Headers)
			}
			p, code, msg := putPart(t, c, data[i*(5<<20):min((i+1)*(5<<20), len(data))])
			if code != 200 {
				t.Fatalf("part %d: %d %s", c.PartNumber, code, msg)
			}
			parts = append(parts, p)
		}
		if code, b := postJSON(t, f.ArtifactsURL("mpu/complete", "0/r"), map[string]any{"path": "big.bin", "upload_id": cr.UploadID, "parts": parts}, nil); code != 200 {
			t.Fatalf("mpu/complete: %d %s", code, b)
		}
		code, got, _ = do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/big.bin"), nil, nil)
		if code != 200 || !bytes.Equal(got, data) {
			t.Fatalf("download after mpu: %d, %d bytes", code, len(got))
		}
		code, b, _ := do(t, http.MethodGet, f.Base+"/api/2.0/mlflow-artifacts/artifacts?path=0/r", nil, nil)
		if code != 200 || !strings.Contains(string(b), "big.bin") || !strings.Contains(string(b), "new.bin") {
			t.Fatalf("list: %d %s", code, b)
		}
	})
}

// TestPresignEndpointThroughFerry: ferry reaches MinIO as 127.0.0.1:PORT
// and hands out presigned URLs for localhost:PORT
// (FERRY_S3_PRESIGN_ENDPOINT_URL), as in docker compose where ferry says
// minio:9000 and clients localhost:9000. A presigned multipart upload and
// a presigned download work at the public name, with the region
// configured and looked up. A bad value stops ferry at start, reported
// with the other bad S3 settings.
func TestPresignEndpointThroughFerry(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.Endpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	public := "localhost:" + port
	var noRegion []string
	for _, kv := range srv.Env() {
		if !strings.HasPrefix(kv, "AWS_DEFAULT_REGION=") {
			noRegion = append(noRegion, kv)
		}
	}
	for _, tc := range []struct {
		name string
		env  []string
	}{{"region set", srv.Env()}, {"region looked up", noRegion}} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFerry(t, "s3://"+bucket+"/"+prefix, append(tc.env, "FERRY_S3_PRESIGN_ENDPOINT_URL=http://"+public))
			dir := "0/" + strings.ReplaceAll(tc.name, " ", "-")
			data := randomBytes(t, 10<<20+5)
			var cr createResp
			if code, b := postJSON(t, f.ArtifactsURL("mpu/create", dir), map[string]any{"path": "model.bin", "num_parts": 3}, &cr); code != 200 || len(cr.Credentials) != 3 {
				t.Fatalf("mpu/create: %d %s", code, b)
			}
			var parts []part
			for i, c := range cr.Credentials {
				u, err := url.Parse(c.URL)
				if err != nil || u.Host != public {
					t.Fatalf("part %d URL %s; want host %s", c.PartNumber, c.URL, public)
				}
				p, code, msg := putPart(t, c, data[i*(5<<20):min((i+1)*(5<<20), len(data))])
				if code != 200 {
					t.Fatalf("part %d at %s: %d %s", c.PartNumber, public, code, msg)
				}
				parts = append(parts, p)
			}
			if code, b := postJSON(t, f.ArtifactsURL("mpu/complete", dir), map[string]any{"path": "model.bin", "upload_id": cr.UploadID, "parts": parts}, nil); code != 200 {
				t.Fatalf("mpu/complete: %d %s", code, b)
			}
			if code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", dir+"/model.bin"), nil, nil); code != 200 || !bytes.Equal(got, data) {
				t.Fatalf("GET after complete: %d, %d bytes", code, len(got))
			}

			code, b, _ := do(t, http.MethodGet, f.ArtifactsURL("presigned", dir+"/model.bin"), nil, nil)
			var p struct {
				URL      string            `json:"url"`
				Headers  map[string]string `json:"headers"`
				FileSize int64             `json:"file_size"`
			}
			if code != 200 || json.Unmarshal(b, &p) != nil || p.FileSize != int64(len(data)) {
				t.Fatalf("presigned: %d %s", code, b)
			}
			if u, err := url.Parse(p.URL); err != nil || u.Host != public {
				t.Fatalf("presigned download URL %s; want host %s", p.URL, public)
			}
			h := map[string]string{"Range": "bytes=100-199"}
			for k, v := range p.Headers {
				h[k] = v
			}
			if code, got, _ := do(t, http.MethodGet, p.URL, nil, h); code != 206 || !bytes.Equal(got, data[100:200]) {
				t.Fatalf("GET presigned range at %s: %d, %d bytes", public, code, len(got))
			}
		})
	}

	t.Run("bad value", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, ferryBin, "server", "--host", "127.0.0.1", "--port", strconv.Itoa(freePort(t)),
			"--artifacts-destination", "s3://"+bucket+"/"+prefix,
			"--backend-store-uri", "sqlite:///"+filepath.Join(t.TempDir(), "mlflow.db"))
		cmd.Dir = t.TempDir()
		cmd.Env = append(cleanEnv(), srv.Env()...)
		cmd.Env = append(cmd.Env, "FERRY_S3_PRESIGN_ENDPOINT_URL=localhost:"+port, "MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE=dns")
		out, err := cmd.CombinedOutput()
		if err == nil || ctx.Err() != nil {
			t.Fatalf("ferry with FERRY_S3_PRESIGN_ENDPOINT_URL=localhost:%s: %v (context %v); want a start-up error\n%s", port, err, ctx.Err(), tail(string(out), 4096))
		}
		for _, want := range []string{"FERRY_S3_PRESIGN_ENDPOINT_URL", "want http(s)://host[:port]", "MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("start-up error does not mention %q:\n%s", want, tail(string(out), 4096))
			}
		}
	})
}

// slowBody yields first, calls mid, then yields rest: an upload that is
// midway when something happens.
type slowBody struct {
	first, rest []byte
	mid         func()
}

func (s *slowBody) Read(p []byte) (int, error) {
	if len(s.first) > 0 {
		n := copy(p, s.first)
		s.first = s.first[n:]
		return n, nil
	}
	if s.mid != nil {
		s.mid()
		s.mid = nil
	}
	if len(s.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

// TestMinIOStoppedMidUpload kills MinIO during a proxied upload: the
// client gets a clear 5xx, no partial object exists, and the same ferry
// process serves again as soon as MinIO is back.
func TestMinIOStoppedMidUpload(t *testing.T) {
	tests := []struct {
		name string
		env  []string
	}{
		{"single PUT", nil},
		{"multipart upload", []string{"MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE=5242880", "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=5242880"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testStoppedMidUpload(t, tt.env, tt.env != nil) })
	}
}

// testStoppedMidUpload: see TestMinIOStoppedMidUpload. multipart: the cut
// upload is a multipart one, whose abort fails while MinIO is down; the
// abort janitor must abort it once MinIO is back.
func testStoppedMidUpload(t *testing.T, extraEnv []string, multipart bool) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	f := startFerry(t, "s3://"+bucket+"/"+prefix, append(srv.Env(), extraEnv...))
	pid := f.PID()
	existing := []byte("written before the outage")
	if code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/r/existing.txt"), bytes.NewReader(existing), nil); code != 200 {
		t.Fatalf("PUT: %d %s", code, b)
	}

	data := randomBytes(t, 48<<20)
	body := &slowBody{first: data[:8<<20], rest: data[8<<20:], mid: func() {
		srv.Kill()
		time.Sleep(200 * time.Millisecond)
	}}
	req, _ := http.NewRequest(http.MethodPut, f.ArtifactsURL("artifacts", "0/r/cut.bin"), body)
	req.ContentLength = int64(len(data))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	switch {
	case err != nil:
		// The server may close the connection while the client still
		// sends; the answer must still have been a 5xx (see the log).
		if !strings.Contains(f.Logs.String(), `"status":503`) && !strings.Contains(f.Logs.String(), "store unavailable") {
			t.Fatalf("upload failed on the client side (%v) and ferry logged no 503:\n%s", err, tail(f.Logs.String(), 4096))
		}
		t.Logf("client saw %v; ferry logged the store failure", err)
	default:
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 500 || !strings.Contains(string(b), "error_code") {
			t.Fatalf("upload with MinIO down: %d %s; want a 5xx MLflow error", resp.StatusCode, b)
		}
		t.Logf("client got %d %s after %v", resp.StatusCode, b, time.Since(start).Round(time.Millisecond))
	}

	// While MinIO is down, reads fail clearly and fast too.
	start = time.Now()
	code, b, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/existing.txt"), nil, nil)
	if code < 500 || !strings.Contains(string(b), "error_code") {
		t.Fatalf("GET with MinIO down: %d %s", code, b)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("GET with MinIO down took %v", d)
	}
	t.Logf("GET with MinIO down: %d %s in %v", code, b, time.Since(start).Round(time.Millisecond))

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	// Back at once, same process.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/existing.txt"), nil, nil)
		if code == 200 && bytes.Equal(got, existing) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry does not serve again after MinIO came back: %d %s", code, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if f.PID() != pid {
		t.Fatal("ferry was restarted")
	}
	if multipart {
		checkJanitor(t, f, srv.Client(t), bucket, prefix+"/0/r/cut.bin", back)
	}
	code, b, _ = do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/cut.bin"), nil, nil)
	if code != 404 && code != 500 {
		t.Fatalf("GET of the cut upload: %d %s; want not found", code, b)
	}
	if _, err := srv.Client(t).StatObject(t.Context(), bucket, prefix+"/0/r/cut.bin", minio.StatObjectOptions{}); err == nil {
		t.Fatal("a partial object was stored")
	} else if minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		t.Fatalf("stat of the cut upload: %v", err)
	}
	if code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/r/cut.bin"), bytes.NewReader(data), nil); code != 200 {
		t.Fatalf("PUT after recovery: %d %s", code, b)
	}
	if _, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/cut.bin"), nil, nil); !bytes.Equal(got, data) {
		t.Fatal(errors.New("content after recovery differs"))
	}
}

// checkJanitor: the multipart upload of key cut by the outage was opened
// on MinIO (ferry queued its failed abort) and, MinIO being back since
// back, is aborted by the janitor (first retry 1 s after the failure, the
// wait doubling) within about 20 s: ferry logs the successful retry for
// key (janitor.go: "s3: aborted a failed multipart upload on retry") and
// no upload of key is listed. The log line is required: an empty listing
// alone would also pass if MinIO had lost the upload in the crash.
//
// Listing: MinIO takes a non-empty prefix as one exact key, and lists for
// the whole bucket (prefix "") only the uploads created since it last
// started — after the restart the cut upload is listed by its exact key
// only. Both are checked.
func checkJanitor(t *testing.T, f *ferry, root *minio.Client, bucket, key string, back time.Time) {
	t.Helper()
	if !strings.Contains(f.Logs.String(), "retrying in the background") {
		t.Fatalf("ferry queued no abort: the cut upload's abort did not fail, so this test proves nothing about the janitor:\n%s", tail(f.Logs.String(), 4096))
	}
	open := func() ([]string, error) {
		var left []string
		for _, p := range []string{key, ""} {
			ups, err := minio.Core{Client: root}.ListMultipartUploads(t.Context(), bucket, p, "", "", "", 1000)
			if err != nil {
				return nil, err
			}
			for _, u := range ups.Uploads {
				left = append(left, fmt.Sprintf("%s %s (listed with prefix %q)", u.Key, u.UploadID, p))
			}
		}
		return left, nil
	}
	seen := false // an open upload was listed after the restart
	deadline := back.Add(20 * time.Second)
	for {
		retried := loggedRetryAbort(f.Logs.String(), key)
		left, err := open()
		if retried && err == nil && len(left) == 0 {
			t.Logf("the janitor aborted the upload (logged) and none is left %v after MinIO was back (listed open after the restart: %v)", time.Since(back).Round(time.Millisecond), seen)
			return
		}
		seen = seen || len(left) > 0
		if time.Now().After(deadline) {
			if !retried {
				t.Fatalf("ferry logged no successful abort retry for %s 20 s after MinIO came back (uploads listed: %v, list error %v):\n%s", key, left, err, tail(f.Logs.String(), 4096))
			}
			t.Fatalf("incomplete multipart uploads left 20 s after MinIO came back: %v (list error %v)", left, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// loggedRetryAbort reports whether ferry's JSON log holds the janitor's
// line for a successful abort retry of key.
func loggedRetryAbort(logs, key string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var e struct {
			Msg string `json:"msg"`
			Key string `json:"key"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "s3: aborted a failed multipart upload on retry" && e.Key == key {
			return true
		}
	}
	return false
}
