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

// fakeS3 is a newStore wrapper standing in for S3 (path style, bucket
// "bucket"): answer decides each request, and every request is noted as
// "METHOD ?query".
type fakeS3 struct {
	mu     sync.Mutex
	reqs   []string
	answer func(r *http.Request) (*http.Response, error)
}

func (f *fakeS3) wrap(http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Method+" ?"+r.URL.RawQuery)
		answer := f.answer
		f.mu.Unlock()
		return answer(r)
	})
}

// sent counts the requests noted with method whose query has key.
func (f *fakeS3) sent(method, key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.reqs {
		m, q, _ := strings.Cut(r, " ?")
		if v, err := url.ParseQuery(q); m == method && err == nil && v.Has(key) {
			n++
		}
	}
	return n
}

func (f *fakeS3) setAnswer(a func(r *http.Request) (*http.Response, error)) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

// xmlResponse is an S3 answer with an XML body.
func xmlResponse(r *http.Request, status int, body string, header ...string) *http.Response {
	h := http.Header{"Content-Type": {"application/xml"}}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h, Request: r,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), ProtoMajor: 1, ProtoMinor: 1}
}

// isLocation reports whether r is the bucket-location lookup.
func isLocation(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Query().Has("location")
}

// uploadsOK answers everything but ?location as a willing S3 would: a
// multipart upload is opened (id "up-1"), anything else succeeds empty.
func uploadsOK(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.URL.Query().Has("uploads") {
		return xmlResponse(r, http.StatusOK, `<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>pre/k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>`), nil
	}
	return xmlResponse(r, http.StatusOK, ""), nil
}

// credentialRegion is the region in a presigned URL's X-Amz-Credential.
func credentialRegion(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(u.Query().Get("X-Amz-Credential"), "/")
	if len(parts) != 5 {
		t.Fatalf("X-Amz-Credential of %s: %q", raw, u.Query().Get("X-Amz-Credential"))
	}
	return parts[2]
}

// TestPresignRegionLookup: without a configured region the bucket's region
// comes from the main client. When that lookup fails (only it: S3 would
// open an upload), presigning fails as unavailable, is tried again next
// time, and CreateMultipart opens no upload. And when the lookup works but
// the presign client cannot be had, CreateMultipart still opens no upload:
// it gets the signing client first. (A failed lookup alone cannot show
// that order: minio-go needs the same lookup before it sends POST
// ?uploads.)
func TestPresignRegionLookup(t *testing.T) {
	t.Parallel()
	cfg := offlineConfig(t)
	cfg.Region = ""
	f := &fakeS3{answer: func(r *http.Request) (*http.Response, error) {
		if isLocation(r) {
			return nil, errors.New("test: the location lookup fails")
		}
		return uploadsOK(r)
	}}
	s, err := newStore(cfg, f.wrap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PresignGet(t.Context(), "k", DefaultPartURLTTL); !errors.Is(err, stores.ErrUnavailable) {
		t.Errorf("presign get with the lookup failing: %v; want unavailable", err)
	}
	n := f.sent(http.MethodGet, "location")
	if n == 0 {
		t.Error("no region lookup through the main client")
	}
	if _, err := s.CreateMultipart(t.Context(), "k", 2); !errors.Is(err, stores.ErrUnavailable) {
		t.Errorf("create multipart with the lookup failing: %v; want unavailable", err)
	}
	if f.sent(http.MethodGet, "location") == n {
		t.Error("the failed lookup was cached")
	}
	if s.presign.client != nil {
		t.Error("a presign client without a region was kept")
	}

	// The lookup works now; making the presign client fails.
	f.setAnswer(func(r *http.Request) (*http.Response, error) {
		if isLocation(r) {
			return xmlResponse(r, http.StatusOK, `<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-1</LocationConstraint>`), nil
		}
		return uploadsOK(r)
	})
	newClient := s.presign.newClient
	errNoClient := errors.New("test: no presign client")
	s.presign.newClient = func(string) (*minio.Client, error) { return nil, errNoClient }
	if _, err := s.CreateMultipart(t.Context(), "k", 2); !errors.Is(err, errNoClient) {
		t.Errorf("create multipart without a presign client: %v; want the test's error", err)
	}
	if n := f.sent(http.MethodPost, "uploads"); n != 0 {
		t.Fatalf("%d multipart uploads opened (POST ?uploads) though no part URL could be signed; requests: %v", n, f.reqs)
	}
	// The same with the presign client: the upload is opened (so the
	// check above could fail), its URLs signed for the bucket's region.
	s.presign.newClient = newClient
	up, err := s.CreateMultipart(t.Context(), "k", 2)
	if err != nil {
		t.Fatal(err)
	}
	if f.sent(http.MethodPost, "uploads") != 1 || up.UploadID != "up-1" || len(up.Parts) != 2 {
		t.Fatalf("upload %+v; requests %v", up, f.reqs)
	}
	if r := credentialRegion(t, up.Parts[0].Request.URL); r != "eu-west-1" {
		t.Errorf("part URL signed for %q; want eu-west-1", r)
	}
}

// TestPresignRegionCorrected: minio-go takes a refused ?location (403
// AccessDenied) as us-east-1 and caches that; a later request that fails
// with a region error naming the bucket's real region corrects the main
// client's cache. Presigned URLs must follow: from then on they are signed
// for the real region, not for the one the presign client was first made
// with.
func TestPresignRegionCorrected(t *testing.T) {
	t.Parallel()
	cfg := offlineConfig(t)
	cfg.Region = ""
	const real = "eu-west-1"
	f := &fakeS3{answer: func(r *http.Request) (*http.Response, error) {
		if isLocation(r) {
			return xmlResponse(r, http.StatusForbidden, `<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`), nil
		}
		if region := scopeRegion(r.Header.Get("Authorization")); region != real {
			return xmlResponse(r, http.StatusBadRequest,
				`<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region '`+region+`' is wrong; expecting '`+real+`'</Message><Region>`+real+`</Region></Error>`,
				"x-amz-bucket-region", real), nil
		}
		return xmlResponse(r, http.StatusOK, `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>pre/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated></ListBucketResult>`), nil
	}}
	s, err := newStore(cfg, f.wrap)
	if err != nil {
		t.Fatal(err)
	}
	get, err := s.PresignGet(t.Context(), "k", DefaultPartURLTTL)
	if err != nil {
		t.Fatal(err)
	}
	if r := credentialRegion(t, get.URL); r != "us-east-1" {
		t.Fatalf("first URL signed for %q; the test expects minio-go's us-east-1 for a refused lookup", r)
	}
	// A request of the main client: refused for us-east-1, the region
	// learnt from the error, retried for eu-west-1.
	if _, err := s.List(t.Context(), "", stores.ListPage{}); err != nil {
		t.Fatalf("list: %v (requests %v)", err, f.reqs)
	}
	if r, _ := s.client.GetBucketLocation(t.Context(), cfg.Bucket); r != real {
		t.Fatalf("the main client holds region %q after the region error; the test expects %s", r, real)
	}
	for range 2 {
		get, err = s.PresignGet(t.Context(), "k", DefaultPartURLTTL)
		if err != nil {
			t.Fatal(err)
		}
		if r := credentialRegion(t, get.URL); r != real {
			t.Errorf("URL signed for %q after the main client learnt %s: %s", r, real, get.URL)
		}
	}
	if n := f.sent(http.MethodGet, "location"); n != 1 {
		t.Errorf("%d location lookups; want 1 (then minio-go's cache)", n)
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
