package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/test/backends/s3srv"
)

// deadEndpoint is an http:// endpoint where nothing listens.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// offlineConfig is a store configuration whose S3 endpoint is dead.
func offlineConfig(t *testing.T) Config {
	return Config{
		Bucket: "bucket", Prefix: "pre", Endpoint: deadEndpoint(t), Region: "eu-west-1",
		AccessKey: "AKIAEXAMPLE", SecretKey: "secret", AddressingStyle: "auto",
		PresignEndpoint: "http://localhost:9000",
	}
}

// countRequests is a newStore wrapper that counts (and refuses) every
// request of the main client.
func countRequests(n *atomic.Int64) func(http.RoundTripper) http.RoundTripper {
	return func(http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			n.Add(1)
			if r.Body != nil {
				r.Body.Close()
			}
			return nil, errors.New("test: no request expected")
		})
	}
}

// TestPresignEndpointOffline: with a region configured, presigned URLs
// name FERRY_S3_PRESIGN_ENDPOINT_URL, are signed for that host and region
// with the expected owner, and making them sends no request at all
// (neither to S3 nor to the public endpoint).
func TestPresignEndpointOffline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		style, presign, wantScheme, wantHost, wantPath string
	}{
		{"auto", "http://localhost:9000", "http", "localhost:9000", "/bucket/pre/dir/k%201.bin"},
		{"path", "https://s3.public.example:8443/", "https", "s3.public.example:8443", "/bucket/pre/dir/k%201.bin"},
		{"virtual", "https://s3.public.example", "https", "bucket.s3.public.example", "/pre/dir/k%201.bin"},
		// Default ports are left out of the URL (and of the signed Host),
		// as clients send them.
		{"auto", "http://public.example:80", "http", "public.example", "/bucket/pre/dir/k%201.bin"},
	}
	for _, tt := range tests {
		t.Run(tt.style+" "+tt.presign, func(t *testing.T) {
			t.Parallel()
			cfg := offlineConfig(t)
			cfg.AddressingStyle, cfg.PresignEndpoint = tt.style, tt.presign
			cfg.ExpectedBucketOwner = "123456789012"
			var sent atomic.Int64
			s, err := newStore(cfg, countRequests(&sent))
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, pr stores.PresignedRequest) {
				t.Helper()
				u, err := url.Parse(pr.URL)
				if err != nil {
					t.Fatal(err)
				}
				q := u.Query()
				if u.Scheme != tt.wantScheme || u.Host != tt.wantHost || u.EscapedPath() != tt.wantPath {
					t.Errorf("%s URL %s; want %s://%s%s", what, pr.URL, tt.wantScheme, tt.wantHost, tt.wantPath)
				}
				if c := q.Get("X-Amz-Credential"); !strings.HasPrefix(c, "AKIAEXAMPLE/") || !strings.HasSuffix(c, "/eu-west-1/s3/aws4_request") {
					t.Errorf("%s X-Amz-Credential=%q; want the access key and region eu-west-1", what, c)
				}
				if sh := q.Get("X-Amz-SignedHeaders"); sh != "host;"+OwnerHeader {
					t.Errorf("%s X-Amz-SignedHeaders=%q; want host and the owner", what, sh)
				}
				if got := pr.Headers[OwnerHeader]; len(got) != 1 || got[0] != "123456789012" {
					t.Errorf("%s headers %v lack the owner", what, pr.Headers)
				}
			}
			get, err := s.PresignGet(t.Context(), "dir/k 1.bin", DefaultPartURLTTL)
			if err != nil {
				t.Fatal(err)
			}
			check("GET", get)
			if q, _ := url.ParseQuery(strings.SplitN(get.URL, "?", 2)[1]); q.Get("X-Amz-Expires") != "3600" {
				t.Errorf("GET expires %q", q.Get("X-Amz-Expires"))
			}
			// UploadPart URLs: the same client signs them after the
			// upload is opened, which needs S3 — dead here, so sign one
			// the way CreateMultipart does.
			pc, err := s.presignClient(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			pu, err := pc.PresignHeader(t.Context(), http.MethodPut, cfg.Bucket, s.objectKey("dir/k 1.bin"), DefaultPartURLTTL,
				url.Values{"partNumber": {"1"}, "uploadId": {"id"}}, s.presignHeaders())
			if err != nil {
				t.Fatal(err)
			}
			check("UploadPart", s.presigned(pu))
			if n := sent.Load(); n != 0 {
				t.Errorf("%d requests sent to S3 while presigning", n)
			}
		})
	}
}

// TestPresignClientSendsNothing: the presign client's transport refuses
// every request. Built without a region (what newStore never does past
// start-up), Presign would look the region up at the public endpoint; it
// fails loudly instead, and not as "S3 unavailable".
func TestPresignClientSendsNothing(t *testing.T) {
	t.Parallel()
	cfg := offlineConfig(t)
	cfg.Region = ""
	s, err := newStore(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.presign.newClient("")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PresignHeader(t.Context(), http.MethodGet, cfg.Bucket, "k", DefaultPartURLTTL, nil, nil)
	if !errors.Is(err, errPresignSend) {
		t.Fatalf("presign without a region: %v; want the presign client's refusal", err)
	}
	if err := classify(err); errors.Is(err, stores.ErrUnavailable) {
		t.Errorf("the refusal classifies as %v; it is a bug, not an outage", err)
	}
	t.Logf("refused: %v", err)
}

// TestPresignRegionLookup: without a configured region the bucket's region
// comes from the main client; when that lookup fails (S3 down) presigning
// fails as unavailable, opens no upload and is tried again next time.
func TestPresignRegionLookup(t *testing.T) {
	t.Parallel()
	cfg := offlineConfig(t)
	cfg.Region = ""
	var sent atomic.Int64
	s, err := newStore(cfg, countRequests(&sent))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PresignGet(t.Context(), "k", DefaultPartURLTTL); !errors.Is(err, stores.ErrUnavailable) {
		t.Errorf("presign get with S3 down: %v; want unavailable", err)
	}
	n := sent.Load()
	if n == 0 {
		t.Error("no region lookup through the main client")
	}
	if _, err := s.CreateMultipart(t.Context(), "k", 2); !errors.Is(err, stores.ErrUnavailable) {
		t.Errorf("create multipart with S3 down: %v; want unavailable", err)
	}
	if sent.Load() == n {
		t.Error("the failed lookup was cached")
	}
	if s.presign.client != nil {
		t.Error("a presign client without a region was kept")
	}
}

// TestPresignEndpointRefused: a bad FERRY_S3_PRESIGN_ENDPOINT_URL in a
// Config built directly fails newStore.
func TestPresignEndpointRefused(t *testing.T) {
	t.Parallel()
	for _, ep := range []string{"localhost:9000", "ftp://localhost", "http://", "http://h/path", "http://-bad-:9000"} {
		for _, region := range []string{"eu-west-1", ""} {
			cfg := offlineConfig(t)
			cfg.PresignEndpoint, cfg.Region = ep, region
			if _, err := newStore(cfg, nil); err == nil || !strings.Contains(err.Error(), "FERRY_S3_PRESIGN_ENDPOINT_URL") {
				t.Errorf("presign endpoint %q (region %q): %v; want a start-up error naming the variable", ep, region, err)
			}
		}
	}
}

// rotating hands out a new key on every retrieval and notes the HTTP
// client it was given (IAM providers fetch with it).
type rotating struct {
	mu      sync.Mutex
	n       int
	clients []*http.Client
}

func (r *rotating) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.clients = append(r.clients, cc.Client)
	return credentials.Value{AccessKeyID: "key" + string(rune('0'+r.n)), SecretAccessKey: "s", SignerType: credentials.SignatureV4}, nil
}
func (r *rotating) Retrieve() (credentials.Value, error) { return r.RetrieveWithCredContext(nil) }
func (r *rotating) IsExpired() bool                      { return false }

// TestViaClient: the presign client's credentials are the main client's,
// fetched with the main client's HTTP client, and never stale.
func TestViaClient(t *testing.T) {
	t.Parallel()
	prov := &rotating{}
	shared := credentials.New(prov)
	main, err := minio.New("127.0.0.1:9", &minio.Options{Creds: shared})
	if err != nil {
		t.Fatal(err)
	}
	pcreds := credentials.New(viaClient{creds: shared, main: main})
	presignClient, err := minio.New("localhost:9", &minio.Options{Creds: pcreds, Transport: noRequests{}, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	key := func(c *minio.Client) string {
		t.Helper()
		u, err := c.PresignHeader(t.Context(), http.MethodGet, "bucket", "k", DefaultPartURLTTL, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return strings.SplitN(u.Query().Get("X-Amz-Credential"), "/", 2)[0]
	}
	if k := key(presignClient); k != "key1" {
		t.Fatalf("first presign signed with %q", k)
	}
	shared.Expire() // the main client's credentials are renewed
	if v, _ := main.GetCreds(); v.AccessKeyID != "key2" {
		t.Fatalf("main client has %q", v.AccessKeyID)
	}
	if k := key(presignClient); k != "key2" {
		t.Errorf("presign after the renewal signed with %q; want key2", k)
	}
	prov.mu.Lock()
	defer prov.mu.Unlock()
	for i, c := range prov.clients {
		if c != main.CredContext().Client {
			t.Errorf("retrieval %d used HTTP client %p, not the main client's", i+1, c)
		}
	}
}

// hostRecorder notes the host of every request the main client sends.
type hostRecorder struct {
	base  http.RoundTripper
	mu    sync.Mutex
	hosts map[string]int
}

func (r *hostRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.hosts[req.URL.Host]++
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// fetch GETs a presigned URL with its headers and returns the body.
func fetch(t *testing.T, pr stores.PresignedRequest) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, pr.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range pr.Headers {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET presigned %s: %s %v: %.300s", pr.URL, resp.Status, err, b)
	}
	return b
}

// TestPresignEndpoint runs a presigned multipart upload and a presigned
// GET on real servers with S3 at http://127.0.0.1:PORT and
// FERRY_S3_PRESIGN_ENDPOINT_URL=http://localhost:PORT: every URL names
// localhost:PORT and works there (so it is signed for that Host), every
// request the store sends goes to 127.0.0.1:PORT, and on versitygw the
// expected owner is still signed in and checked. With no region
// configured the main client looks it up; the presign client, which
// refuses to send anything, would fail otherwise.
func TestPresignEndpoint(t *testing.T) {
	for _, kind := range []s3srv.Kind{s3srv.MinIO, s3srv.Versitygw} {
		t.Run(string(kind), func(t *testing.T) {
			srv := s3srv.Start(t, kind)
			bucket := srv.Bucket(t)
			internal := strings.TrimPrefix(srv.Endpoint, "http://")
			_, port, _ := net.SplitHostPort(internal)
			public := "localhost:" + port
			for _, region := range []string{"us-east-1", ""} {
				t.Run("region="+region, func(t *testing.T) {
					cfg := config(srv, bucket)
					cfg.Region = region
					cfg.PresignEndpoint = "http://" + public
					cfg.ExpectedBucketOwner = srv.Owner
					rec := &hostRecorder{hosts: map[string]int{}}
					s, err := newStore(cfg, func(rt http.RoundTripper) http.RoundTripper { rec.base = rt; return rec })
					if err != nil {
						t.Fatal(err)
					}
					ctx := t.Context()
					key := "presign-" + region + "/model.bin"
					data := make([]byte, 10<<20+1000)
					if _, err := rand.Read(data); err != nil {
						t.Fatal(err)
					}
					up, err := s.CreateMultipart(ctx, key, 3)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = s.AbortMultipart(context.Background(), key, up.UploadID) }) // when the test fails midway
					var parts []stores.CompletedPart
					for i, p := range up.Parts {
						u, err := url.Parse(p.Request.URL)
						if err != nil {
							t.Fatal(err)
						}
						if u.Host != public {
							t.Fatalf("part %d URL %s; want host %s", p.PartNumber, p.Request.URL, public)
						}
						if srv.Owner != "" && (len(p.Request.Headers[OwnerHeader]) != 1 || p.Request.Headers[OwnerHeader][0] != srv.Owner || !strings.Contains(u.Query().Get("X-Amz-SignedHeaders"), OwnerHeader)) {
							t.Fatalf("part %d not signed with the owner: %s %v", p.PartNumber, p.Request.URL, p.Request.Headers)
						}
						body := data[i*(5<<20) : min((i+1)*(5<<20), len(data))]
						if i == 0 {
							// The signature covers the Host: the same URL
							// sent to the internal name is refused.
							moved := p.Request
							moved.URL = strings.Replace(moved.URL, "//"+public+"/", "//"+internal+"/", 1)
							if _, err := send(ctx, http.MethodPut, moved, body); err == nil {
								t.Fatal("a part URL signed for localhost worked at 127.0.0.1: the Host is not signed")
							}
						}
						etag, err := send(ctx, http.MethodPut, p.Request, body)
						if err != nil {
							t.Fatalf("part %d: %v", p.PartNumber, err)
						}
						parts = append(parts, stores.CompletedPart{PartNumber: p.PartNumber, ETag: etag})
					}
					if err := s.CompleteMultipart(ctx, key, up.UploadID, parts); err != nil {
						t.Fatal(err)
					}
					rc, _, err := s.Open(ctx, key, 0, -1)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("read back %d bytes (%v); want the %d uploaded", len(got), err, len(data))
					}

					get, err := s.PresignGet(ctx, key, DefaultPartURLTTL)
					if err != nil {
						t.Fatal(err)
					}
					if u, _ := url.Parse(get.URL); u == nil || u.Host != public {
						t.Fatalf("presigned GET %s; want host %s", get.URL, public)
					}
					if got := fetch(t, get); !bytes.Equal(got, data) {
						t.Fatalf("presigned GET: %d bytes, want the %d uploaded", len(got), len(data))
					}

					// Everything else, presigned requests included.
					for op, err := range exercise(ctx, s) {
						if err != nil {
							t.Errorf("%s: %v", op, err)
						}
					}
					rec.mu.Lock()
					defer rec.mu.Unlock()
					for h, n := range rec.hosts {
						if h != internal {
							t.Errorf("%d requests sent to %s; want all at %s", n, h, internal)
						}
					}
					t.Logf("requests sent: %v", rec.hosts)
				})
			}
			ups, err := s3core(srv.Client(t)).ListMultipartUploads(t.Context(), bucket, "", "", "", "", 1000)
			if err != nil || len(ups.Uploads) != 0 {
				t.Fatalf("uploads left open: %+v %v", ups.Uploads, err)
			}
		})
	}
}
