package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/storetest"
	"github.com/ferryml/ferry/test/backends/s3srv"
)

// testPrefix is the key prefix every test store writes under; objects
// planted beside it must survive everything the store does.
const testPrefix = "ferry/artifacts"

// config is a store configuration for srv's bucket.
func config(srv *s3srv.Server, bucket string) Config {
	return Config{
		Bucket: bucket, Prefix: testPrefix, Endpoint: srv.Endpoint, Region: "us-east-1",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, AddressingStyle: "auto",
		MultipartThreshold: DefaultMultipartThreshold, PartSize: DefaultPartSize, PartURLTTL: DefaultPartURLTTL,
	}
}

// plantNeighbours puts objects beside the store's prefix and checks at
// cleanup that they are untouched.
func plantNeighbours(t *testing.T, srv *s3srv.Server, bucket string) {
	t.Helper()
	c := srv.Client(t)
	keys := []string{"outside.txt", testPrefix + "-sibling/x", "ferry/artifact"}
	for _, k := range keys {
		if _, err := c.PutObject(context.Background(), bucket, k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("plant %s: %v", k, err)
		}
	}
	t.Cleanup(func() {
		for _, k := range keys {
			if _, err := c.StatObject(context.Background(), bucket, k, minio.StatObjectOptions{}); err != nil {
				t.Errorf("object %q outside the store's prefix is gone: %v", k, err)
			}
		}
	})
}

func instrument(s stores.Store) stores.Store {
	return stores.Instrument(s, "s3", stores.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
}

// TestConformance runs the shared store suite on MinIO and on versitygw
// (there with MLFLOW_S3_EXPECTED_BUCKET_OWNER set to the right owner, so
// every operation, presigned ones included, carries the check).
func TestConformance(t *testing.T) {
	for _, kind := range []s3srv.Kind{s3srv.MinIO, s3srv.Versitygw} {
		t.Run(string(kind), func(t *testing.T) {
			srv := s3srv.Start(t, kind)
			storetest.Run(t, func(t *testing.T) stores.Store {
				bucket := srv.Bucket(t)
				plantNeighbours(t, srv, bucket)
				cfg := config(srv, bucket)
				cfg.ExpectedBucketOwner = srv.Owner
				s, err := New(t.Context(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				return instrument(s)
			})
		})
	}
}

// TestPutStrategy checks how Puts reach S3: below the threshold as one
// PUT, at or above it as a multipart upload in parts of the chunk size,
// streamed; bodies of unknown length in bounded parts; and that a failed
// multipart upload is aborted.
func TestPutStrategy(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	cfg := config(srv, bucket)
	cfg.MultipartThreshold = 8 << 20
	cfg.PartSize = 5 << 20
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	root := srv.Client(t)
	data := make([]byte, 12<<20+5)
	_, _ = rand.Read(data)

	tests := []struct {
		name      string
		size      int
		announced bool
		wantParts int // 0: a single PUT
	}{
		{"below the threshold", 8<<20 - 1, true, 0},
		{"at the threshold", 8 << 20, true, 2},
		{"above, three parts", 12<<20 + 5, true, 3},
		{"unknown size, fits one part", 5<<20 - 1, false, 0},
		{"unknown size, exactly one part", 5 << 20, false, 1},
		{"unknown size, three parts", 12<<20 + 5, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "strategy/" + strings.ReplaceAll(tt.name, " ", "-")
			size := int64(tt.size)
			if !tt.announced {
				size = -1
			}
			if err := s.Put(t.Context(), key, bytes.NewReader(data[:tt.size]), size); err != nil {
				t.Fatalf("Put: %v", err)
			}
			info, err := root.StatObject(t.Context(), bucket, testPrefix+"/"+key, minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			parts := 0
			if i := strings.LastIndexByte(info.ETag, '-'); i >= 0 {
				fmt.Sscan(info.ETag[i+1:], &parts)
			}
			if parts != tt.wantParts || info.Size != int64(tt.size) {
				t.Fatalf("stored as %d parts (ETag %s), %d bytes; want %d parts, %d bytes", parts, info.ETag, info.Size, tt.wantParts, tt.size)
			}
			rc, _, err := s.Open(t.Context(), key, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data[:tt.size]) {
				t.Fatalf("read back %d bytes, %v; content differs", len(got), err)
			}
		})
	}

	failures := []struct {
		name    string
		r       io.Reader
		size    int64
		wantErr error
	}{
		{"short body in the second part", bytes.NewReader(data[:7<<20]), 12 << 20, stores.ErrIncomplete},
		{"body fails in the third part", io.MultiReader(bytes.NewReader(data[:11<<20]), errorReader{}), 12 << 20, errBody},
		{"unknown size, body fails in the second part", io.MultiReader(bytes.NewReader(data[:6<<20]), errorReader{}), -1, errBody},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			key := "strategy/failed"
			if err := s.Put(t.Context(), key, tt.r, tt.size); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Put = %v; want %v", err, tt.wantErr)
			}
			if _, err := s.Stat(t.Context(), key); !errors.Is(err, stores.ErrNotFound) {
				t.Fatalf("Stat after a failed Put = %v; want ErrNotFound", err)
			}
			// The whole (fresh) bucket: MinIO lists the uploads of one
			// exact key for any other prefix.
			ups, err := s.core.ListMultipartUploads(t.Context(), bucket, "", "", "", "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(ups.Uploads) != 0 {
				t.Fatalf("%d multipart uploads left open after a failed Put", len(ups.Uploads))
			}
		})
	}
}

// TestPartPayload checks how buffered parts travel over plain http: each
// with the SHA-256 of exactly its bytes signed in (hashed once as the
// part is read), not chunk-signed and not unsigned, while a single PUT of
// a known size stays chunk-signed (see NOTES.md on versitygw).
func TestPartPayload(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	cfg := config(srv, bucket)
	cfg.MultipartThreshold, cfg.PartSize = 8<<20, 5<<20
	var mu sync.Mutex
	payloads := map[string]string{} // "partNumber=N" or "single" → X-Amz-Content-Sha256
	s, err := newStore(cfg, func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodPut {
				k := "single"
				if n := req.URL.Query().Get("partNumber"); n != "" {
					k = "partNumber=" + n
				}
				mu.Lock()
				payloads[k] = req.Header.Get("X-Amz-Content-Sha256")
				mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 12<<20+5)
	_, _ = rand.Read(data)
	for _, size := range []int64{int64(len(data)), -1} {
		clear(payloads)
		if err := s.Put(t.Context(), "payload/big", bytes.NewReader(data), size); err != nil {
			t.Fatal(err)
		}
		for i, part := range [][]byte{data[:5<<20], data[5<<20 : 10<<20], data[10<<20:]} {
			k := fmt.Sprintf("partNumber=%d", i+1)
			if want := fmt.Sprintf("%x", sha256.Sum256(part)); payloads[k] != want {
				t.Errorf("size %d: %s sent with payload %q; want its SHA-256 %s", size, k, payloads[k], want)
			}
		}
	}
	clear(payloads)
	if err := s.Put(t.Context(), "payload/small", bytes.NewReader(data[:1<<20]), 1<<20); err != nil {
		t.Fatal(err)
	}
	if got := payloads["single"]; got != "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" {
		t.Errorf("single PUT sent with payload %q; want it chunk-signed", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var errBody = errors.New("the body failed")

type errorReader struct{}

func (errorReader) Read([]byte) (int, error) { return 0, errBody }

// recorder notes every request the driver sends.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []string // "METHOD path?query owner=<value> signed=<bool>"
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, fmt.Sprintf("%s %s?%s owner=%q signed=%v", req.Method, req.URL.Path, req.URL.RawQuery,
		req.Header.Get(OwnerHeader), headerSigned(req, OwnerHeader)))
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// exercise runs every store operation once, presigned ones included,
// and returns the first error of each.
func exercise(ctx context.Context, s *Store) map[string]error {
	errs := map[string]error{}
	note := func(op string, err error) {
		if _, seen := errs[op]; !seen || errs[op] == nil {
			errs[op] = err
		}
	}
	small := []byte("small object")
	big := make([]byte, 11<<20)
	note("put", s.Put(ctx, "ex/small", bytes.NewReader(small), int64(len(small))))
	note("put multipart", s.Put(ctx, "ex/big", bytes.NewReader(big), int64(len(big))))
	note("put unknown size", s.Put(ctx, "ex/unknown", bytes.NewReader(big), -1))
	_, err := s.Stat(ctx, "ex/small")
	note("stat", err)
	_, err = s.Stat(ctx, "ex")
	note("stat dir", err)
	_, err = s.List(ctx, "ex", stores.ListPage{})
	note("list", err)
	rc, _, err := s.Open(ctx, "ex/small", 2, 3)
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	note("get", err)
	req, err := s.PresignGet(ctx, "ex/small", 60e9)
	if err == nil {
		_, err = send(ctx, http.MethodGet, req, nil)
	}
	note("presigned get", err)
	up, err := s.CreateMultipart(ctx, "ex/mpu", 2)
	note("mpu create", err)
	if err == nil {
		var parts []stores.CompletedPart
		for i, p := range up.Parts {
			body := big[:5<<20]
			if i == 1 {
				body = small
			}
			etag, err := send(ctx, http.MethodPut, p.Request, body)
			note("presigned part put", err)
			parts = append(parts, stores.CompletedPart{PartNumber: p.PartNumber, ETag: etag})
		}
		note("mpu complete", s.CompleteMultipart(ctx, "ex/mpu", up.UploadID, parts))
	}
	up, err = s.CreateMultipart(ctx, "ex/aborted", 1)
	if err == nil {
		err = s.AbortMultipart(ctx, "ex/aborted", up.UploadID)
	}
	note("mpu abort", err)
	note("delete object", s.Delete(ctx, "ex/small"))
	note("delete dir", s.Delete(ctx, "ex"))
	return errs
}

// send does a presigned request with exactly its headers and returns the
// ETag of the answer.
func send(ctx context.Context, method string, pr stores.PresignedRequest, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, pr.URL, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	for k, v := range pr.Headers {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s presigned: %s: %.300s", method, resp.Status, b)
	}
	return resp.Header.Get("ETag"), nil
}

// TestExpectedOwnerOnEveryRequest watches the wire: with an expected
// owner configured, every request the driver sends carries it, signed,
// and every presigned URL is signed with it and hands it out as a header.
func TestExpectedOwnerOnEveryRequest(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	for _, region := range []string{"us-east-1", ""} { // "": the bucket-location lookup is a request too
		t.Run("region="+region, func(t *testing.T) {
			cfg := config(srv, bucket)
			cfg.Region = region
			cfg.ExpectedBucketOwner = "123456789012"
			cfg.PartSize = 5 << 20
			cfg.MultipartThreshold = 8 << 20
			rec := &recorder{}
			s, err := newStore(cfg, func(rt http.RoundTripper) http.RoundTripper { rec.base = rt; return rec })
			if err != nil {
				t.Fatal(err)
			}
			// The recorder sits outside ownerTransport; look beneath it
			// too, at what reaches the network.
			inner := &recorder{base: rec.base.(*ownerTransport).base}
			rec.base.(*ownerTransport).base = inner
			for op, err := range exercise(t.Context(), s) {
				if err != nil {
					t.Errorf("%s: %v", op, err)
				}
			}
			if len(inner.reqs) < 15 {
				t.Fatalf("only %d requests seen", len(inner.reqs))
			}
			for _, r := range inner.reqs {
				if !strings.Contains(r, `owner="123456789012" signed=true`) {
					t.Errorf("request without a signed owner: %s", r)
				}
			}
			t.Logf("%d requests, all with the owner signed in; e.g. %s", len(inner.reqs), inner.reqs[0])
			up, err := s.CreateMultipart(t.Context(), "x/y", 1)
			if err != nil {
				t.Fatal(err)
			}
			defer s.AbortMultipart(context.Background(), "x/y", up.UploadID)
			p := up.Parts[0].Request
			u, err := url.Parse(p.URL)
			if err != nil {
				t.Fatal(err)
			}
			if signed := u.Query().Get("X-Amz-SignedHeaders"); !strings.Contains(signed, OwnerHeader) {
				t.Errorf("part URL not signed with the owner: X-Amz-SignedHeaders=%q", signed)
			}
			// The lower-case wire name, as MLflow's credential headers map
			// carries it.
			if got := p.Headers[OwnerHeader]; len(got) != 1 || got[0] != "123456789012" {
				t.Errorf("part credential headers = %v; want %s: 123456789012", p.Headers, OwnerHeader)
			}
		})
	}
}

// TestExpectedOwnerEnforced runs against versitygw, which checks the
// owner: with the right one everything works (presigned parts
// included); with a wrong one every operation fails with
// ErrPermission and nothing is written.
func TestExpectedOwnerEnforced(t *testing.T) {
	srv := s3srv.Start(t, s3srv.Versitygw)
	bucket := srv.Bucket(t)
	root := srv.Client(t)

	t.Run("right owner", func(t *testing.T) {
		cfg := config(srv, bucket)
		cfg.ExpectedBucketOwner = srv.Owner
		cfg.PartSize, cfg.MultipartThreshold = 5<<20, 8<<20
		s, err := New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for op, err := range exercise(t.Context(), s) {
			if err != nil {
				t.Errorf("%s: %v", op, err)
			}
		}
	})

	t.Run("presigned part without the header", func(t *testing.T) {
		cfg := config(srv, bucket)
		cfg.ExpectedBucketOwner = srv.Owner
		s, err := New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		up, err := s.CreateMultipart(t.Context(), "nohdr/obj", 1)
		if err != nil {
			t.Fatal(err)
		}
		defer s.AbortMultipart(context.Background(), "nohdr/obj", up.UploadID)
		p := up.Parts[0].Request
		p.Headers = nil
		if _, err := send(t.Context(), http.MethodPut, p, []byte("x")); err == nil {
			t.Fatal("a part PUT without the signed owner header was accepted")
		}
	})

	t.Run("wrong owner", func(t *testing.T) {
		// Something to read, list and delete.
		seed := testPrefix + "/wrong/existing"
		if _, err := root.PutObject(t.Context(), bucket, seed, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		cfg := config(srv, bucket)
		cfg.ExpectedBucketOwner = "999999999999"
		s, err := New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		before := objectsIn(t, root, bucket)
		ctx := t.Context()
		big := make([]byte, 6<<20)
		checks := []struct {
			op  string
			err func() error
		}{
			{"put", func() error { return s.Put(ctx, "wrong/new", strings.NewReader("abc"), 3) }},
			{"put multipart", func() error {
				s.cfg.MultipartThreshold, s.cfg.PartSize = 5<<20, 5<<20
				defer func() { s.cfg.MultipartThreshold, s.cfg.PartSize = DefaultMultipartThreshold, DefaultPartSize }()
				return s.Put(ctx, "wrong/big", bytes.NewReader(big), int64(len(big)))
			}},
			{"put unknown size", func() error { return s.Put(ctx, "wrong/unknown", strings.NewReader("abc"), -1) }},
			{"stat", func() error { _, err := s.Stat(ctx, "wrong/existing"); return err }},
			{"get", func() error {
				rc, _, err := s.Open(ctx, "wrong/existing", 0, -1)
				if rc != nil {
					rc.Close()
				}
				return err
			}},
			{"list", func() error { _, err := s.List(ctx, "wrong", stores.ListPage{}); return err }},
			{"delete", func() error { return s.Delete(ctx, "wrong/existing") }},
			{"delete dir", func() error { return s.Delete(ctx, "wrong") }},
			{"mpu create", func() error { _, err := s.CreateMultipart(ctx, "wrong/mpu", 2); return err }},
			{"mpu abort", func() error { return s.AbortMultipart(ctx, "wrong/mpu", "no-such-upload") }},
			{"mpu complete", func() error {
				return s.CompleteMultipart(ctx, "wrong/mpu", "no-such-upload", []stores.CompletedPart{{PartNumber: 1, ETag: `"x"`}})
			}},
		}
		for _, c := range checks {
			t.Run(c.op, func(t *testing.T) {
				err := c.err()
				if !errors.Is(err, stores.ErrPermission) {
					t.Fatalf("%s with a wrong owner = %v; want ErrPermission", c.op, err)
				}
				t.Logf("%s: %v", c.op, err)
			})
		}
		if after := objectsIn(t, root, bucket); after != before {
			t.Fatalf("objects changed with a wrong owner:\nbefore %s\nafter  %s", before, after)
		}
		ups, err := s3core(root).ListMultipartUploads(t.Context(), bucket, testPrefix+"/wrong", "", "", "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ups.Uploads) != 0 {
			t.Fatalf("a wrong owner left %d multipart uploads", len(ups.Uploads))
		}
	})
}

func s3core(c *minio.Client) minio.Core { return minio.Core{Client: c} }

// objectsIn lists a bucket (as the root user, without an owner check).
func objectsIn(t *testing.T, c *minio.Client, bucket string) string {
	t.Helper()
	var b strings.Builder
	for o := range c.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		fmt.Fprintf(&b, "%s(%d) ", o.Key, o.Size)
	}
	return b.String()
}

// TestOwnerWithInstanceProfile: with MLFLOW_S3_EXPECTED_BUCKET_OWNER set
// and no keys configured, the credentials come from the EC2 instance
// metadata service (an httptest server here). Its requests are not S3
// requests: they go through the credential chain's own HTTP client, not
// through ownerTransport, which refuses anything not SigV4-signed (the
// chain would end anonymous). The store then works, on versitygw checking
// the owner, and so do presigned URLs: the first credential fetch is the
// presign client's (viaClient).
func TestOwnerWithInstanceProfile(t *testing.T) {
	// Nothing but the instance profile: no other IAM source, no files.
	for _, k := range []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_CONFIG_FILE", none)

	for _, kind := range []s3srv.Kind{s3srv.MinIO, s3srv.Versitygw} {
		t.Run(string(kind), func(t *testing.T) {
			srv := s3srv.Start(t, kind)
			bucket := srv.Bucket(t)
			var mu sync.Mutex
			var seen []string
			imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, fmt.Sprintf("%s %s auth=%q", r.Method, r.URL.Path, r.Header.Get("Authorization")))
				mu.Unlock()
				const token, role = "imds-token", "ferry-role"
				switch {
				case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
					io.WriteString(w, token)
				case r.Header.Get("X-aws-ec2-metadata-token") != token:
					http.Error(w, "no IMDSv2 token", http.StatusUnauthorized)
				case r.URL.Path == "/latest/meta-data/iam/security-credentials/":
					io.WriteString(w, role+"\n")
				case r.URL.Path == "/latest/meta-data/iam/security-credentials/"+role:
					json.NewEncoder(w).Encode(map[string]any{
						"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": srv.AccessKey, "SecretAccessKey": srv.SecretKey,
						"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
					})
				default:
					http.NotFound(w, r)
				}
			}))
			t.Cleanup(imds.Close)

			owner := srv.Owner
			if owner == "" {
				owner = "123456789012" // MinIO does not check it; ownerTransport still runs
			}
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.Endpoint, "http://"))
			cfg := config(srv, bucket)
			cfg.AccessKey, cfg.SecretKey = "", ""
			cfg.imdsEndpoint = imds.URL
			cfg.ExpectedBucketOwner = owner
			cfg.PresignEndpoint = "http://localhost:" + port
			cfg.PartSize, cfg.MultipartThreshold = 5<<20, 8<<20
			s, err := New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()

			seed := []byte("seeded by the root user")
			if _, err := srv.Client(t).PutObject(t.Context(), bucket, testPrefix+"/imds/seed", bytes.NewReader(seed), int64(len(seed)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			get, err := s.PresignGet(t.Context(), "imds/seed", DefaultPartURLTTL)
			switch c := mustQuery(t, get.URL).Get("X-Amz-Credential"); {
			case err != nil:
				t.Errorf("presign get: %v", err)
			case !strings.HasPrefix(c, srv.AccessKey+"/"):
				t.Errorf("presigned GET not signed with the instance profile's key: X-Amz-Credential=%q (%s)", c, get.URL)
			default:
				if got := fetch(t, get); !bytes.Equal(got, seed) {
					t.Errorf("presigned GET: %q", got)
				}
			}
			for op, err := range exercise(t.Context(), s) {
				if err != nil {
					t.Errorf("%s: %v", op, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			fetched := false
			for _, r := range seen {
				fetched = fetched || strings.HasPrefix(r, "GET /latest/meta-data/iam/security-credentials/ferry-role ")
				if !strings.HasSuffix(r, `auth=""`) {
					t.Errorf("metadata request with an Authorization header: %s", r)
				}
			}
			if !fetched {
				t.Errorf("the credentials were not fetched from the metadata service; it saw %v", seen)
			}
			t.Logf("metadata service saw %v", seen)
		})
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}
