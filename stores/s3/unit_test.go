package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/ferryml/ferry/stores"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("s3://bucket/some/prefix/")
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", env: nil, check: func(t *testing.T, c Config) {
			if c.Bucket != "bucket" || c.Prefix != "some/prefix" {
				t.Errorf("bucket/prefix = %q/%q", c.Bucket, c.Prefix)
			}
			if c.AddressingStyle != "auto" || c.MultipartThreshold != 500<<20 || c.PartSize != 10<<20 || c.Timeout != 0 || c.IgnoreTLS {
				t.Errorf("defaults wrong: %+v", c)
			}
		}},
		{name: "all set", env: map[string]string{
			"MLFLOW_S3_ENDPOINT_URL":                    "http://127.0.0.1:9000",
			"MLFLOW_S3_IGNORE_TLS":                      "TRUE",
			"AWS_DEFAULT_REGION":                        "eu-west-1",
			"AWS_REGION":                                "eu-central-1",
			"AWS_ACCESS_KEY_ID":                         "ak",
			"AWS_SECRET_ACCESS_KEY":                     "sk",
			"AWS_SESSION_TOKEN":                         "tok",
			"MLFLOW_S3_EXPECTED_BUCKET_OWNER":           " 123456789012 ",
			"MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE":       "Path",
			"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT":   "30",
			"MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": "1048576",
			"MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE":        "6291456",
			"MLFLOW_S3_UPLOAD_EXTRA_ARGS":               `{"ServerSideEncryption":"aws:kms","SSEKMSKeyId":"1234"}`,
		}, check: func(t *testing.T, c Config) {
			want := Config{Endpoint: "http://127.0.0.1:9000", IgnoreTLS: true, Region: "eu-central-1",
				AccessKey: "ak", SecretKey: "sk", SessionToken: "tok", ExpectedBucketOwner: "123456789012",
				AddressingStyle: "path", Timeout: 30 * time.Second, MultipartThreshold: 1 << 20, PartSize: 6 << 20}
			got := c
			got.Bucket, got.Prefix, got.Upload, got.PartURLTTL = "", "", UploadArgs{}, 0
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			if c.Upload.Opts.ServerSideEncryption == nil || c.Upload.Opts.ServerSideEncryption.Type() != "KMS" {
				t.Errorf("SSE-KMS not parsed: %+v", c.Upload)
			}
		}},
		{name: "bad bool", env: map[string]string{"MLFLOW_S3_IGNORE_TLS": "yes"}, wantErr: "MLFLOW_S3_IGNORE_TLS"},
		{name: "bad style", env: map[string]string{"MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE": "dns"}, wantErr: "ADDRESSING_STYLE"},
		{name: "bad timeout", env: map[string]string{"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "1m"}, wantErr: "TIMEOUT"},
		{name: "negative timeout means none", env: map[string]string{"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "-1"}, check: func(t *testing.T, c Config) {
			if c.Timeout != 0 {
				t.Errorf("timeout %v", c.Timeout)
			}
		}},
		{name: "bad chunk", env: map[string]string{"MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": "0"}, wantErr: "CHUNK_SIZE"},
		{name: "bad extra args json", env: map[string]string{"MLFLOW_S3_UPLOAD_EXTRA_ARGS": `[1]`}, wantErr: "not a JSON object"},
		{name: "unsupported extra arg", env: map[string]string{"MLFLOW_S3_UPLOAD_EXTRA_ARGS": `{"Bogus":"x"}`}, wantErr: "Bogus is not supported"},
		{name: "unsigned", env: map[string]string{"MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION": "unsigned"}, check: func(t *testing.T, c Config) {
			if !c.Anonymous {
				t.Error("not anonymous")
			}
		}},
		{name: "several problems at once", env: map[string]string{"MLFLOW_S3_IGNORE_TLS": "x", "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": "-5"}, wantErr: "CHUNK_SIZE"},
		{name: "presign endpoint", env: map[string]string{
			"MLFLOW_S3_ENDPOINT_URL":        "http://minio:9000",
			"FERRY_S3_PRESIGN_ENDPOINT_URL": " http://localhost:9000/ ",
		}, check: func(t *testing.T, c Config) {
			if c.Endpoint != "http://minio:9000" || c.PresignEndpoint != "http://localhost:9000/" {
				t.Errorf("endpoint %q, presign endpoint %q", c.Endpoint, c.PresignEndpoint)
			}
		}},
		{name: "presign endpoint without MLFLOW_S3_ENDPOINT_URL", env: map[string]string{"FERRY_S3_PRESIGN_ENDPOINT_URL": "https://s3.example.com"}, check: func(t *testing.T, c Config) {
			if c.Endpoint != "" || c.PresignEndpoint != "https://s3.example.com" {
				t.Errorf("endpoint %q, presign endpoint %q", c.Endpoint, c.PresignEndpoint)
			}
		}},
		{name: "presign endpoint unset", env: nil, check: func(t *testing.T, c Config) {
			if c.PresignEndpoint != "" {
				t.Errorf("presign endpoint %q", c.PresignEndpoint)
			}
		}},
		{name: "presign endpoint without scheme", env: map[string]string{"FERRY_S3_PRESIGN_ENDPOINT_URL": "localhost:9000"}, wantErr: `FERRY_S3_PRESIGN_ENDPOINT_URL="localhost:9000": want http(s)://host[:port]`},
		{name: "presign endpoint ftp", env: map[string]string{"FERRY_S3_PRESIGN_ENDPOINT_URL": "ftp://localhost:9000"}, wantErr: "FERRY_S3_PRESIGN_ENDPOINT_URL"},
		{name: "presign endpoint without host", env: map[string]string{"FERRY_S3_PRESIGN_ENDPOINT_URL": "http://"}, wantErr: "FERRY_S3_PRESIGN_ENDPOINT_URL"},
		{name: "presign endpoint unparsable", env: map[string]string{"FERRY_S3_PRESIGN_ENDPOINT_URL": "http://[::1"}, wantErr: "FERRY_S3_PRESIGN_ENDPOINT_URL"},
		{name: "presign endpoint with a path", env: map[string]string{"FERRY_S3_PRESIGN_ENDPOINT_URL": "https://proxy.example.com/s3"}, wantErr: "without user, path, query or fragment"},
		{name: "presign endpoint with a query", env: map[string]string{"FERRY_S3_PRESIGN_ENDPOINT_URL": "http://localhost:9000?x=1"}, wantErr: "FERRY_S3_PRESIGN_ENDPOINT_URL"},
		{name: "presign endpoint with user", env: map[string]string{"FERRY_S3_PRESIGN_ENDPOINT_URL": "http://u:p@localhost:9000"}, wantErr: "FERRY_S3_PRESIGN_ENDPOINT_URL"},
		{name: "bad MLFLOW_S3_ENDPOINT_URL", env: map[string]string{"MLFLOW_S3_ENDPOINT_URL": "minio:9000"}, wantErr: `MLFLOW_S3_ENDPOINT_URL="minio:9000": want http(s)://host[:port]`},
		// Hosts minio.New refuses are start-up errors of ConfigFromEnv too.
		{name: "bad MLFLOW_S3_ENDPOINT_URL host", env: map[string]string{"MLFLOW_S3_ENDPOINT_URL": "http://-bad-:9000"}, wantErr: `MLFLOW_S3_ENDPOINT_URL="http://-bad-:9000": host "-bad-:9000" is neither an IP address nor a domain name`},
		{name: "bad presign endpoint host", env: map[string]string{"FERRY_S3_PRESIGN_ENDPOINT_URL": "https://bucket.s3.amazonaws.com"}, wantErr: `FERRY_S3_PRESIGN_ENDPOINT_URL="https://bucket.s3.amazonaws.com": host`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ConfigFromEnv(u, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
	if _, err := ConfigFromEnv(&url.URL{Scheme: "s3"}, env(nil)); err == nil {
		t.Error("s3:// without a bucket accepted")
	}
	// Every problem at once: both endpoints and an unrelated variable,
	// the endpoints without a scheme, or with hosts minio-go refuses.
	for _, eps := range [][2]string{{"minio:9000", "localhost:9000"}, {"http://-bad-:9000", "http://_bad_:9000"}} {
		_, err := ConfigFromEnv(u, env(map[string]string{
			"MLFLOW_S3_ENDPOINT_URL":              eps[0],
			"FERRY_S3_PRESIGN_ENDPOINT_URL":       eps[1],
			"MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE": "dns",
		}))
		for _, want := range []string{`MLFLOW_S3_ENDPOINT_URL="` + eps[0], `FERRY_S3_PRESIGN_ENDPOINT_URL="` + eps[1], "ADDRESSING_STYLE"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v; want all problems reported, %s among them", err, want)
			}
		}
	}
}

// TestEndpointHostLikeMinio: the endpoint check (parseEndpoint, used by
// ConfigFromEnv and newStore) refuses a host exactly when minio.New, given
// what newStore gives it, does; so what ConfigFromEnv passes, newStore
// accepts.
func TestEndpointHostLikeMinio(t *testing.T) {
	t.Parallel()
	for _, ep := range []string{
		"http://127.0.0.1:9000", "http://[::1]:9000", "http://minio:9000", "http://localhost:80", "http://a_b:1", "http://a..b",
		"https://s3.amazonaws.com", "https://s3.eu-west-1.amazonaws.com", "https://s3.dualstack.eu-west-1.amazonaws.com",
		"https://storage.googleapis.com", "https://x.s3-outposts.eu-west-1.amazonaws.com",
		"http://-bad-:9000", "http://_bad_:9000", "http://.x", "http://x-", "https://bucket.s3.amazonaws.com",
		"http://foo.s3.amazonaws.com.example", "http://x.googleapis.com", "http://s3-outposts.example",
	} {
		u, err := url.Parse(ep)
		if err != nil {
			t.Fatal(err)
		}
		_, minioErr := minio.New(u.Host, &minio.Options{Secure: u.Scheme == "https"})
		for _, strict := range []bool{false, true} {
			if _, _, err := parseEndpoint(ep, strict); (err == nil) != (minioErr == nil) {
				t.Errorf("parseEndpoint(%q, %v) = %v; minio.New: %v", ep, strict, err, minioErr)
			}
		}
	}
}

func TestParseUploadArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    map[string]any
		wantErr string
		headers map[string]string // expected request headers for key "x/model.tar.gz"
	}{
		{name: "kms", args: map[string]any{"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "key-1"},
			headers: map[string]string{"X-Amz-Server-Side-Encryption": "aws:kms", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "key-1",
				"Content-Type": "application/x-tar", "Content-Encoding": "gzip"}},
		{name: "aes", args: map[string]any{"ServerSideEncryption": "AES256"},
			headers: map[string]string{"X-Amz-Server-Side-Encryption": "AES256"}},
		{name: "acl metadata tagging content type", args: map[string]any{
			"ACL": "bucket-owner-full-control", "Metadata": map[string]any{"team": "ml"}, "Tagging": "a=1&b=2",
			"ContentType": "application/octet-stream", "CacheControl": "no-cache", "StorageClass": "STANDARD_IA"},
			headers: map[string]string{"X-Amz-Acl": "bucket-owner-full-control", "X-Amz-Meta-Team": "ml",
				"X-Amz-Tagging": "a=1&b=2", "Content-Type": "application/octet-stream", "Cache-Control": "no-cache",
				"X-Amz-Storage-Class": "STANDARD_IA"}},
		{name: "kms key without sse", args: map[string]any{"SSEKMSKeyId": "k"}, wantErr: "needs ServerSideEncryption aws:kms"},
		{name: "bad sse", args: map[string]any{"ServerSideEncryption": "rot13"}, wantErr: "want AES256 or aws:kms"},
		{name: "unknown", args: map[string]any{"RequestPayer": "requester"}, wantErr: "RequestPayer is not supported"},
		{name: "wrong type", args: map[string]any{"ACL": 3.0}, wantErr: "want a string"},
		{name: "ssec needs algorithm", args: map[string]any{"SSECustomerKey": strings.Repeat("k", 32)}, wantErr: "SSECustomerAlgorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := ParseUploadArgs(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := a.putOptions("x/model.tar.gz").Header()
			for k, v := range tt.headers {
				if got := h.Get(k); got != v {
					t.Errorf("header %s = %q, want %q (all: %v)", k, got, v, h)
				}
			}
		})
	}
}

func TestPartSizeFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		configured, size, want int64
	}{
		{10 << 20, 1 << 30, 10 << 20},
		{1 << 20, 100 << 20, MinPartSize},    // raised to S3's minimum
		{10 << 20, 200 << 30, 21 << 20},      // 200 GiB needs > 20 MiB parts to stay within 10,000
		{10 << 20, -1, 10 << 20},             // unknown size
		{10 << 30, 1 << 40, MaxPartSize},     // capped at 5 GiB
		{10 << 20, 100000 << 20, 10 << 20},   // exactly 10,000 parts
		{10 << 20, 100000<<20 + 1, 11 << 20}, // one byte more
		{6 << 20, 0, 6 << 20},
	}
	for _, tt := range tests {
		got := partSizeFor(tt.configured, tt.size)
		if got != tt.want {
			t.Errorf("partSizeFor(%d, %d) = %d, want %d", tt.configured, tt.size, got, tt.want)
		}
		if tt.size > 0 && (tt.size+got-1)/got > MaxParts && got < MaxPartSize {
			t.Errorf("partSizeFor(%d, %d) = %d needs more than %d parts", tt.configured, tt.size, got, MaxParts)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	resp := func(code string, status int) error {
		return minio.ErrorResponse{Code: code, StatusCode: status, Message: "msg " + code}
	}
	tests := []struct {
		name string
		err  error
		want error // nil: no sentinel
	}{
		{"no such key", resp("NoSuchKey", 404), stores.ErrNotFound},
		{"no such bucket", resp("NoSuchBucket", 404), stores.ErrNotFound},
		{"no such upload", resp("NoSuchUpload", 404), stores.ErrNotFound},
		{"access denied", resp("AccessDenied", 403), stores.ErrPermission},
		{"bad key id", resp("InvalidAccessKeyId", 403), stores.ErrPermission},
		{"bad signature", resp("SignatureDoesNotMatch", 403), stores.ErrPermission},
		{"range", resp("InvalidRange", 416), stores.ErrInvalidRange},
		{"too large", resp("EntityTooLarge", 400), stores.ErrTooLarge},
		{"internal", resp("InternalError", 500), stores.ErrUnavailable},
		{"slow down", resp("SlowDown", 503), stores.ErrUnavailable},
		{"unknown 5xx", resp("Weird", 502), stores.ErrUnavailable},
		{"unknown 4xx", resp("InvalidPart", 400), nil},
		{"refused", &url.Error{Op: "Put", URL: "http://x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, stores.ErrUnavailable},
		{"reset", fmt.Errorf("x: %w", syscall.ECONNRESET), stores.ErrUnavailable},
		{"unexpected eof", io.ErrUnexpectedEOF, stores.ErrUnavailable},
		{"already classified", fmt.Errorf("x: %w", stores.ErrIncomplete), stores.ErrIncomplete},
		{"canceled", context.Canceled, context.Canceled},
		{"plain", errors.New("plain"), nil},
		{"owner refused", &url.Error{Op: "Delete", URL: "http://x", Err: fmt.Errorf("s3: cannot add it: not signed (%w)", errOwnerRefused)}, nil},
		{"presign sent", &url.Error{Op: "Get", URL: "http://x", Err: errPresignSend}, nil},
	}
	sentinels := []error{stores.ErrNotFound, stores.ErrPermission, stores.ErrInvalidRange, stores.ErrTooLarge,
		stores.ErrUnavailable, stores.ErrIncomplete}
	for _, tt := range tests {
		got := classify(tt.err)
		if !errors.Is(got, tt.err) {
			t.Errorf("%s: classify lost the original error: %v", tt.name, got)
		}
		for _, s := range sentinels {
			if want := s == tt.want; errors.Is(got, s) != want {
				t.Errorf("%s: errors.Is(%v, %v) = %v, want %v", tt.name, got, s, !want, want)
			}
		}
		if tt.want != nil && !errors.Is(got, tt.want) {
			t.Errorf("%s: %v does not wrap %v", tt.name, got, tt.want)
		}
	}
}

func TestHeaderSignedAndScope(t *testing.T) {
	t.Parallel()
	auth := "AWS4-HMAC-SHA256 Credential=AKIA/20250101/eu-west-3/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-expected-bucket-owner, Signature=abc"
	req, _ := http.NewRequest(http.MethodGet, "http://h/b/k", nil)
	req.Header.Set("Authorization", auth)
	if !headerSigned(req, OwnerHeader) {
		t.Error("owner header not found in SignedHeaders")
	}
	if headerSigned(req, "x-amz-acl") {
		t.Error("x-amz-acl reported signed")
	}
	if got := scopeRegion(auth); got != "eu-west-3" {
		t.Errorf("scopeRegion = %q", got)
	}
	if got := scopeRegion("AWS4-HMAC-SHA256 Signature=x"); got != "" {
		t.Errorf("scopeRegion without scope = %q", got)
	}
}

func TestGuessType(t *testing.T) {
	t.Parallel()
	tests := []struct{ key, ct, enc string }{
		{"a/model.json", "application/json", ""},
		{"a/data.tar.gz", "application/x-tar", "gzip"},
		{"a/noext", "", ""},
		{"a/x.json.bz2", "application/json", "bzip2"},
	}
	for _, tt := range tests {
		ct, enc := guessType(tt.key)
		if ct != tt.ct || enc != tt.enc {
			t.Errorf("guessType(%q) = %q, %q; want %q, %q", tt.key, ct, enc, tt.ct, tt.enc)
		}
	}
}

type captureRT struct{ got *http.Request }

func (c *captureRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.got = r
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

// TestOwnerTransport checks the re-signing fallback on its own: requests
// that lack the owner get it signed in; chunk-signed uploads that lack it
// are refused rather than sent unchecked; signed ones pass untouched.
func TestOwnerTransport(t *testing.T) {
	t.Parallel()
	creds := credentials.NewStaticV4("AKIDEXAMPLE", "secret", "")
	sign := func(payload string, withOwner bool) *http.Request {
		r, _ := http.NewRequest(http.MethodDelete, "http://127.0.0.1:9/bucket/key?uploadId=1", nil)
		r.Header.Set("X-Amz-Content-Sha256", payload)
		if withOwner {
			r.Header.Set(OwnerHeader, "111122223333")
		}
		return signer.SignV4(*r, "AKIDEXAMPLE", "secret", "", "eu-west-1")
	}
	emptySHA := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		name       string
		req        *http.Request
		wantErr    string
		wantResign bool
	}{
		{"no owner: signed in", sign(emptySHA, false), "", true},
		{"unsigned payload: signed in", sign("UNSIGNED-PAYLOAD", false), "", true},
		{"already signed: untouched", sign(emptySHA, true), "", false},
		{"chunk-signed upload without owner: refused", sign("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", false), "chains its signature", false},
		{"owner added after signing: signed in", func() *http.Request {
			r := sign(emptySHA, false)
			r.Header.Set(OwnerHeader, "111122223333")
			return r
		}(), "", true},
		{"not SigV4: refused", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9/b/k", nil)
			return r
		}(), "not SigV4-signed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := &captureRT{}
			resigned := 0
			tr := &ownerTransport{base: base, owner: "111122223333", creds: creds, resigned: func() { resigned++ }}
			before := tt.req.Header.Get("Authorization")
			_, err := tr.RoundTrip(tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || base.got != nil {
					t.Fatalf("err = %v, sent = %v; want %q and nothing sent", err, base.got != nil, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (resigned == 1) != tt.wantResign {
				t.Fatalf("re-signed %d times; want %v", resigned, tt.wantResign)
			}
			got := base.got
			if got.Header.Get(OwnerHeader) != "111122223333" || !headerSigned(got, OwnerHeader) {
				t.Fatalf("sent without a signed owner: %v", got.Header)
			}
			if scopeRegion(got.Header.Get("Authorization")) != "eu-west-1" {
				t.Fatalf("region changed: %s", got.Header.Get("Authorization"))
			}
			if tt.req.Header.Get("Authorization") != before {
				t.Fatal("the caller's request was modified")
			}
			// (That the new signature verifies is shown by the servers:
			// TestExpectedOwnerOnEveryRequest and TestExpectedOwnerEnforced
			// send re-signed requests to MinIO and versitygw.)
		})
	}
}

// TestReadPart checks readPart against io.ReadFull's contract, including
// readers that return the last bytes together with io.EOF (fasthttp's
// request stream does), and that it hashes exactly the bytes read.
func TestReadPart(t *testing.T) {
	data := []byte("0123456789abcdef")
	tests := []struct {
		name    string
		r       io.Reader
		buf     int
		wantN   int
		wantErr error
	}{
		{"exact, data with EOF", &eofWithData{data: data}, 16, 16, nil},
		{"exact, EOF after", iotest.OneByteReader(bytes.NewReader(data)), 16, 16, nil},
		{"short, data with EOF", &eofWithData{data: data}, 20, 16, io.ErrUnexpectedEOF},
		{"short", bytes.NewReader(data), 20, 16, io.ErrUnexpectedEOF},
		{"empty", bytes.NewReader(nil), 4, 0, io.EOF},
		{"more than the buffer", bytes.NewReader(data), 8, 8, nil},
		{"error", iotest.ErrReader(errBody), 8, 0, errBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sha256.New()
			buf := make([]byte, tt.buf)
			n, err := readPart(tt.r, buf, h)
			if n != tt.wantN || !errors.Is(err, tt.wantErr) {
				t.Fatalf("readPart = %d, %v; want %d, %v", n, err, tt.wantN, tt.wantErr)
			}
			if want := sha256.Sum256(buf[:n]); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatal("hash is not the hash of the bytes read")
			}
		})
	}
}

// eofWithData returns all its data in one Read, together with io.EOF.
type eofWithData struct{ data []byte }

func (e *eofWithData) Read(p []byte) (int, error) {
	n := copy(p, e.data)
	e.data = e.data[n:]
	if len(e.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// TestPartReader checks that a revoked partReader never touches its
// buffer again and that it seeks as minio-go's retries need.
func TestPartReader(t *testing.T) {
	buf := []byte("hello, world")
	pr := newPartReader(buf)
	got, err := io.ReadAll(pr)
	if err != nil || string(got) != "hello, world" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if pos, err := pr.Seek(7, io.SeekStart); err != nil || pos != 7 {
		t.Fatalf("Seek = %d, %v", pos, err)
	}
	if got, _ := io.ReadAll(pr); string(got) != "world" {
		t.Fatalf("after Seek: %q", got)
	}
	if _, err := pr.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("Seek before the start succeeded")
	}
	if _, err := pr.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	pr.revoke()
	if n, err := pr.Read(make([]byte, 4)); n != 0 || !errors.Is(err, errRevoked) {
		t.Fatalf("Read after revoke = %d, %v", n, err)
	}
	if _, err := pr.Seek(0, io.SeekStart); !errors.Is(err, errRevoked) {
		t.Fatalf("Seek after revoke = %v", err)
	}
}

// TestBuffers checks the free list: part-size buffers are reused up to
// maxIdleBuffers, others are fresh, and all are writable.
func TestBuffers(t *testing.T) {
	s := &Store{bufSize: 1 << 20, buffers: make(chan []byte, maxIdleBuffers)}
	var bs [][]byte
	for range maxIdleBuffers + 1 {
		b := s.getBuffer(s.bufSize)
		if len(b) != int(s.bufSize) {
			t.Fatalf("buffer of %d bytes", len(b))
		}
		b[0], b[len(b)-1] = 1, 2
		bs = append(bs, b)
	}
	for _, b := range bs {
		s.putBuffer(b)
	}
	if len(s.buffers) != maxIdleBuffers {
		t.Fatalf("%d idle buffers kept; want %d", len(s.buffers), maxIdleBuffers)
	}
	if b := s.getBuffer(s.bufSize); &b[0] != &bs[0][0] && &b[0] != &bs[1][0] {
		t.Fatal("an idle buffer was not reused")
	}
	odd := s.getBuffer(3 << 20)
	if len(odd) != 3<<20 {
		t.Fatalf("odd buffer of %d bytes", len(odd))
	}
	odd[len(odd)-1] = 1
	s.putBuffer(odd) // released, not kept
	if len(s.buffers) != maxIdleBuffers-1 {
		t.Fatalf("%d idle buffers after an odd one came back", len(s.buffers))
	}
}
