package gcse2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/test/backends/gcssrv"
	"github.com/ferryml/ferry/test/backends/gcsxml"
)

const prefix = "mlflow/artifacts"

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// signedSetup starts fake-gcs-server behind gcsxml (tokens required) and
// a ferry using a service-account key for gs://bucket/prefix.
func signedSetup(t *testing.T, extraEnv ...string) (*ferry, *gcssrv.Server, *gcsxml.Server, string) {
	t.Helper()
	gcs := gcssrv.Start(t)
	xs := gcsxml.Start(t, gcs.Endpoint)
	xs.RequireAuth.Store(true)
	acct := xs.NewAccount(t, "ferry")
	bucket := gcs.Bucket(t)
	env := append([]string{"STORAGE_EMULATOR_HOST=" + xs.Host, "GOOGLE_APPLICATION_CREDENTIALS=" + acct.CredentialsFile(t)}, extraEnv...)
	f := startFerry(t, "gs://"+bucket+"/"+prefix, env)
	return f, gcs, xs, bucket
}

type credential struct {
	URL        string            `json:"url"`
	PartNumber int               `json:"part_number"`
	Headers    map[string]string `json:"headers"`
}

// putPart PUTs one part straight to its presigned URL the way MLflow's
// client does (requests.put with the credential's headers only) and
// returns the ETag.
func putPart(t *testing.T, c credential, data []byte) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, c.URL, bytes.NewReader(data))
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("part %d PUT: %d %s", c.PartNumber, resp.StatusCode, b)
	}
	return resp.Header.Get("ETag")
}

// TestPresignedMultipartThroughFerry runs MLflow's proxy multipart
// algorithm against ferry on GCS: mpu/create hands out V4-signed XML-API
// part URLs, the client PUTs the parts straight to the (signature
// checking) server, mpu/complete assembles the object, which reads back
// byte for byte; no part byte passes through ferry. An aborted upload
// leaves nothing. The presigned download route hands out a signed GET.
func TestPresignedMultipartThroughFerry(t *testing.T) {
	f, gcs, xs, bucket := signedSetup(t)
	putBefore := f.Metric(t, "ferry_store_transferred_bytes_total", `op="put"`)
	getBefore := f.Metric(t, "ferry_store_transferred_bytes_total", `op="get"`)

	const chunk = 5 << 20
	data := randomBytes(t, 2*chunk+12345)
	var create struct {
		UploadID    string       `json:"upload_id"`
		Credentials []credential `json:"credentials"`
	}
	if code, b := postJSON(t, f.ArtifactsURL("mpu/create", "0/r/artifacts/weights"), map[string]any{"path": "/local/dir/big.bin", "num_parts": 3}, &create); code != 200 {
		t.Fatalf("mpu/create: %d %s", code, b)
	}
	if create.UploadID == "" || len(create.Credentials) != 3 {
		t.Fatalf("mpu/create answer: %+v", create)
	}
	type donePart struct {
		PartNumber int    `json:"part_number"`
		ETag       string `json:"etag"`
		URL        string `json:"url"`
	}
	var parts []donePart
	for i, c := range create.Credentials {
		if c.PartNumber != i+1 || !strings.HasPrefix(c.URL, xs.URL+"/"+bucket+"/"+prefix+"/0/r/artifacts/weights/big.bin?") {
			t.Fatalf("credential %d: %+v", i, c)
		}
		end := min((i+1)*chunk, len(data))
		parts = append(parts, donePart{PartNumber: c.PartNumber, ETag: putPart(t, c, data[i*chunk:end]), URL: c.URL})
	}
	if code, b := postJSON(t, f.ArtifactsURL("mpu/complete", "0/r/artifacts/weights"), map[string]any{"path": "/local/dir/big.bin", "upload_id": create.UploadID, "parts": parts}, nil); code != 200 {
		t.Fatalf("mpu/complete: %d %s", code, b)
	}
	if got := xs.PartBytes.Load(); got != int64(len(data)) {
		t.Fatalf("the server received %d part bytes; want %d", got, len(data))
	}
	if d := f.Metric(t, "ferry_store_transferred_bytes_total", `op="put"`) - putBefore; d != 0 {
		t.Fatalf("%v bytes went through ferry during a presigned multipart upload", d)
	}
	objs := gcs.Objects(t, bucket, prefix+"/")
	if len(objs) != 1 || objs[0].Name != prefix+"/0/r/artifacts/weights/big.bin" || objs[0].Size != int64(len(data)) {
		t.Fatalf("objects after complete: %+v", objs)
	}

	// Presigned download: a signed GET URL, fetched without ferry.
	code, b, _ := do(t, http.MethodGet, f.ArtifactsURL("presigned", "0/r/artifacts/weights/big.bin"), nil, nil)
	var pd struct {
		URL      string            `json:"url"`
		Headers  map[string]string `json:"headers"`
		FileSize int64             `json:"file_size"`
	}
	if code != 200 || json.Unmarshal(b, &pd) != nil || pd.FileSize != int64(len(data)) {
		t.Fatalf("presigned download: %d %s", code, b)
	}
	resp, err := http.Get(pd.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("presigned GET: %d, %d bytes; content differs", resp.StatusCode, len(got))
	}
	if d := f.Metric(t, "ferry_store_transferred_bytes_total", `op="get"`) - getBefore; d != 0 {
		t.Fatalf("%v bytes went through ferry during a presigned download", d)
	}
	// And through ferry, byte for byte.
	if code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/artifacts/weights/big.bin"), nil, nil); code != 200 || !bytes.Equal(got, data) {
		t.Fatalf("GET through ferry: %d, %d bytes", code, len(got))
	}

	// Abort: one part up, then abort; nothing is left.
	if code, b := postJSON(t, f.ArtifactsURL("mpu/create", "0/r/artifacts/weights"), map[string]any{"path": "aborted.bin", "num_parts": 2}, &create); code != 200 {
		t.Fatalf("mpu/create: %d %s", code, b)
	}
	putPart(t, create.Credentials[0], data[:chunk])
	if code, b := postJSON(t, f.ArtifactsURL("mpu/abort", "0/r/artifacts/weights"), map[string]any{"path": "aborted.bin", "upload_id": create.UploadID}, nil); code != 200 {
		t.Fatalf("mpu/abort: %d %s", code, b)
	}
	if n := xs.OpenUploads(); n != 0 {
		t.Fatalf("%d uploads open after abort", n)
	}
	if code, _, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/artifacts/weights/aborted.bin"), nil, nil); code != 404 {
		t.Fatalf("GET of the aborted upload: %d; want 404", code)
	}
	if objs := gcs.Objects(t, bucket, prefix+"/"); len(objs) != 1 {
		t.Fatalf("objects after abort: %+v", objs)
	}
	// A part URL of the aborted upload is useless now.
	req, _ := http.NewRequest(http.MethodPut, create.Credentials[1].URL, bytes.NewReader([]byte("late")))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 404 {
		t.Fatalf("part PUT after abort: %v %v; want 404", resp.Status, err)
	}
}

// TestWrongCredentials: a key the server does not know is refused by its
// token endpoint; every route answers 403 PERMISSION_DENIED in MLflow's
// JSON, never a 500, and nothing is written.
func TestWrongCredentials(t *testing.T) {
	gcs := gcssrv.Start(t)
	xs := gcsxml.Start(t, gcs.Endpoint)
	xs.RequireAuth.Store(true)
	bucket := gcs.Bucket(t)
	gcs.Put(t, bucket, prefix+"/0/r/existing.txt", []byte("existing"))
	stranger := xs.Unregistered(t, "stranger@ferry-test.iam.gserviceaccount.com")
	f := startFerry(t, "gs://"+bucket+"/"+prefix, []string{"STORAGE_EMULATOR_HOST=" + xs.Host, "GOOGLE_APPLICATION_CREDENTIALS=" + stranger.CredentialsFile(t)})
	checks := []struct {
		name string
		do   func() (int, []byte)
	}{
		{"upload", func() (int, []byte) {
			c, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/r/new.txt"), bytes.NewReader([]byte("new")), nil)
			return c, b
		}},
		{"download", func() (int, []byte) {
			c, b, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/existing.txt"), nil, nil)
			return c, b
		}},
		{"list", func() (int, []byte) {
			c, b, _ := do(t, http.MethodGet, f.Base+"/api/2.0/mlflow-artifacts/artifacts?path=0/r", nil, nil)
			return c, b
		}},
		{"delete", func() (int, []byte) {
			c, b, _ := do(t, http.MethodDelete, f.ArtifactsURL("artifacts", "0/r/existing.txt"), nil, nil)
			return c, b
		}},
		{"mpu/create", func() (int, []byte) {
			return postJSON(t, f.ArtifactsURL("mpu/create", "0/r"), map[string]any{"path": "x.bin", "num_parts": 2}, nil)
		}},
	}
	for _, c := range checks {
		code, b := c.do()
		var e struct {
			ErrorCode string `json:"error_code"`
		}
		if code != 403 || json.Unmarshal(b, &e) != nil || e.ErrorCode != "PERMISSION_DENIED" {
			t.Errorf("%s with wrong credentials: %d %s; want 403 PERMISSION_DENIED", c.name, code, b)
		}
	}
	if objs := gcs.Objects(t, bucket, ""); len(objs) != 1 {
		t.Fatalf("objects changed with wrong credentials: %+v", objs)
	}
	if strings.Contains(f.Logs.String(), "PRIVATE KEY") {
		t.Fatal("the private key reached the logs")
	}
}

// slowBody hands out first, calls mid once, then the rest.
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
	n := copy(p, s.rest[:min(len(s.rest), 64<<10)])
	s.rest = s.rest[n:]
	return n, nil
}

// TestEmulatorKilledMidUpload kills fake-gcs-server while a resumable
// upload is half sent, streamed as one request (below the multipart
// threshold) or in chunks (its first chunks stored in an upload session):
// the client gets 503 in MLflow's JSON, reads fail clearly meanwhile, and
// after a restart on the same data no partial object exists and the same
// ferry works again.
func TestEmulatorKilledMidUpload(t *testing.T) {
	for _, tc := range []struct{ name, threshold string }{
		{"streamed", "104857600"},
		{"chunked", "8388608"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			emulatorKilledMidUpload(t, "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE="+tc.threshold)
		})
	}
}

func emulatorKilledMidUpload(t *testing.T, threshold string) {
	gcs := gcssrv.Start(t)
	bucket := gcs.Bucket(t)
	f := startFerry(t, "gs://"+bucket+"/"+prefix, []string{"STORAGE_EMULATOR_HOST=" + gcs.Host, "MLFLOW_GCS_UPLOAD_CHUNK_SIZE=4194304", threshold})
	existing := []byte("written before the outage")
	if code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/r/existing.txt"), bytes.NewReader(existing), nil); code != 200 {
		t.Fatalf("PUT: %d %s", code, b)
	}
	data := randomBytes(t, 24<<20)
	body := &slowBody{first: data[:10<<20], rest: data[10<<20:], mid: func() {
		time.Sleep(500 * time.Millisecond) // let the first chunks reach the session
		gcs.Kill()
	}}
	req, _ := http.NewRequest(http.MethodPut, f.ArtifactsURL("artifacts", "0/r/cut.bin"), body)
	req.ContentLength = int64(len(data))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	switch {
	case err != nil:
		if !strings.Contains(f.Logs.String(), `"status":503`) {
			t.Fatalf("upload failed on the client side (%v) and ferry logged no 503:\n%s", err, tail(f.Logs.String(), 4096))
		}
		t.Logf("client saw %v; ferry logged a 503", err)
	default:
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || !strings.Contains(string(b), "TEMPORARILY_UNAVAILABLE") {
			t.Fatalf("upload with GCS down: %d %s; want 503 TEMPORARILY_UNAVAILABLE", resp.StatusCode, b)
		}
		t.Logf("client got %d %s after %v", resp.StatusCode, b, time.Since(start).Round(time.Millisecond))
	}
	start = time.Now()
	if code, b, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/existing.txt"), nil, nil); code != 503 {
		t.Fatalf("GET with GCS down: %d %s; want 503", code, b)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("GET with GCS down took %v", d)
	}
	if err := gcs.Start(); err != nil {
		t.Fatal(err)
	}
	if code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/existing.txt"), nil, nil); code != 200 || !bytes.Equal(got, existing) {
		t.Fatalf("GET after restart: %d %s", code, got)
	}
	if code, b, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/cut.bin"), nil, nil); code != 404 {
		t.Fatalf("GET of the cut upload after restart: %d %s; want 404", code, b)
	}
	for _, o := range gcs.Objects(t, bucket, "") {
		if strings.HasSuffix(o.Name, "cut.bin") {
			t.Fatalf("a partial object was stored: %+v", o)
		}
	}
	if code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/r/cut.bin"), bytes.NewReader(data), nil); code != 200 {
		t.Fatalf("PUT after recovery: %d %s", code, b)
	}
	if _, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/cut.bin"), nil, nil); !bytes.Equal(got, data) {
		t.Fatal("read back after recovery differs")
	}
}
