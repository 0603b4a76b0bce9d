package gcs

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/test/backends/gcssrv"
	"github.com/ferryml/ferry/test/backends/gcsxml"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("gs://bucket/some/prefix/")
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := ConfigFromEnv(u, env(nil))
	if err != nil || c.Bucket != "bucket" || c.Prefix != "some/prefix" || c.UploadChunkSize != DefaultUploadChunkSize || c.Timeout != DefaultTimeout {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = ConfigFromEnv(u, env(map[string]string{
		"MLFLOW_GCS_UPLOAD_CHUNK_SIZE": "524288", "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE": "262144",
		"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "-1", "STORAGE_EMULATOR_HOST": "localhost:4443",
		"GOOGLE_APPLICATION_CREDENTIALS": "/k.json",
	}))
	if err != nil || c.UploadChunkSize != 512<<10 || c.DownloadChunkSize != 256<<10 || c.Timeout != 0 || c.EmulatorHost != "localhost:4443" || c.CredentialsFile != "/k.json" {
		t.Fatalf("set: %+v, %v", c, err)
	}
	if c, _ := ConfigFromEnv(u, env(map[string]string{"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "90"})); c.Timeout != 90*time.Second {
		t.Fatalf("timeout 90: %v", c.Timeout)
	}
	// Every problem at once.
	bad, _ := url.Parse("gs:///x")
	_, err = ConfigFromEnv(bad, env(map[string]string{
		"MLFLOW_GCS_UPLOAD_CHUNK_SIZE": "1000", "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE": "x",
		"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "0", "STORAGE_EMULATOR_HOST": "ftp://h",
	}))
	for _, want := range []string{"names no bucket", "MLFLOW_GCS_UPLOAD_CHUNK_SIZE", "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE", "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", "STORAGE_EMULATOR_HOST"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestChunkFor(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		size int64
		want int
	}{
		{-1, 16 << 20}, {0, ChunkAlign}, {1, ChunkAlign}, {ChunkAlign - 1, ChunkAlign}, {ChunkAlign, 2 * ChunkAlign},
		{16<<20 - 1, 16 << 20}, {16 << 20, 16 << 20}, {1 << 30, 16 << 20},
	} {
		if got := chunkFor(16<<20, tt.size); got != tt.want {
			t.Errorf("chunkFor(16 MiB, %d) = %d; want %d", tt.size, got, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want error
	}{
		{&xmlError{Status: 404, Code: "NoSuchUpload"}, stores.ErrNotFound},
		{&xmlError{Status: 403, Code: "AccessDenied"}, stores.ErrPermission},
		{&xmlError{Status: 503}, stores.ErrUnavailable},
		{&url.Error{Op: "Get", URL: "http://x", Err: io.ErrUnexpectedEOF}, stores.ErrUnavailable},
	} {
		if got := classify(tt.err); !errors.Is(got, tt.want) {
			t.Errorf("classify(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
	if got := classify(&xmlError{Status: 400, Code: "InvalidPart"}); errors.Is(got, stores.ErrUnavailable) || errors.Is(got, stores.ErrPermission) {
		t.Errorf("a 400 classified as %v", got)
	}
}

// TestSignBlobFromMetadataServer: Application Default Credentials from
// the metadata server hold no key, so URLs are signed through IAM
// signBlob as that account; gcsxml verifies the result like any signed
// URL. The full presign and multipart round trip works that way.
//
// Google's metadata package decides "on GCE" once per process: no test in
// this package may search for ADC before this one (newStore never does
// with an emulator and no key file, nor does storage.NewClient as called).
func TestSignBlobFromMetadataServer(t *testing.T) {
	srv := gcssrv.Start(t)
	xs := gcsxml.Start(t, srv.Endpoint)
	xs.RequireAuth.Store(true)
	acct := xs.NewAccount(t, "vm-default")
	xs.SetMetadataAccount(acct)
	t.Setenv("GCE_METADATA_HOST", xs.Host)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir()) // no gcloud credentials file
	bucket := srv.Bucket(t)
	cfg := Config{Bucket: bucket, Prefix: testPrefix, EmulatorHost: xs.Host, UploadChunkSize: DefaultUploadChunkSize,
		Timeout: DefaultTimeout, detectADC: true, iamEndpoint: xs.URL}
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ss, ok := s.(*SigningStore)
	if !ok {
		t.Fatal("metadata-server credentials must allow presigning through signBlob")
	}
	if ss.signer.email != acct.Email || len(ss.signer.key) != 0 {
		t.Fatalf("signer %q (key %v); want signBlob as %s", ss.signer.email, len(ss.signer.key) > 0, acct.Email)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 400<<10) // 6.25 MiB
	if err := s.Put(t.Context(), "vm/obj.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	req, err := ss.PresignGet(t.Context(), "vm/obj.bin", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(req.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("signBlob-signed GET: %d, %d bytes", resp.StatusCode, len(got))
	}
	up, err := ss.CreateMultipart(t.Context(), "vm/mpu.bin", 2)
	if err != nil {
		t.Fatal(err)
	}
	var parts []stores.CompletedPart
	for i, p := range up.Parts {
		body := data[:5<<20]
		if i == 1 {
			body = data[5<<20:]
		}
		r, _ := http.NewRequest(http.MethodPut, p.Request.URL, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(r)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("part %d: %v %v", p.PartNumber, resp, err)
		}
		resp.Body.Close()
		parts = append(parts, stores.CompletedPart{PartNumber: p.PartNumber, ETag: resp.Header.Get("ETag")})
	}
	if err := ss.CompleteMultipart(t.Context(), "vm/mpu.bin", up.UploadID, parts); err != nil {
		t.Fatal(err)
	}
	rc, e, err := s.Open(t.Context(), "vm/mpu.bin", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(rc)
	rc.Close()
	if e.Size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("multipart object: %d bytes, content differs", len(got))
	}
	if xs.SignedRefused.Load() != 0 {
		t.Fatalf("%d signed requests refused", xs.SignedRefused.Load())
	}

	// Without the signBlob permission (another account's e-mail), presign
	// fails as a permission error, not as an outage.
	ss.signer = &signer{email: "other@ferry-test.iam.gserviceaccount.com", hc: ss.hc, iam: xs.URL}
	if _, err := ss.PresignGet(t.Context(), "vm/obj.bin", time.Minute); !errors.Is(err, stores.ErrPermission) {
		t.Fatalf("presign without signBlob permission: %v; want ErrPermission", err)
	}
}
