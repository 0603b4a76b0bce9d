// Package s3 is the Amazon S3 (and S3-compatible: MinIO, versitygw, ...)
// store driver for s3://bucket/prefix destinations, on minio-go.
//
// Configuration is upstream MLflow's environment (see ConfigFromEnv).
// Uploads stream with their real size: below
// MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE as one PUT, at or above it as
// a multipart upload in parts of MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE, read
// into (off-heap) buffers two at a time, one read while the previous one
// uploads, each hashed once as it is read (buffers.go); bodies of unknown
// length are cut into the same parts. Downloads stream with ranges;
// listing and deleting paginate. The driver also presigns downloads and
// multipart part uploads, so MLflow clients move big files straight to
// S3 (signed for FERRY_S3_PRESIGN_ENDPOINT_URL's host when set:
// presign.go). With MLFLOW_S3_EXPECTED_BUCKET_OWNER set, every request and
// every presigned URL carries a signed x-amz-expected-bucket-owner
// (owner.go).
package s3

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferryml/ferry/stores"
)

func init() {
	stores.Register("s3", func(ctx context.Context, u *url.URL) (stores.Store, error) {
		cfg, err := ConfigFromEnv(u, os.Getenv)
		if err != nil {
			return nil, err
		}
		return New(ctx, cfg)
	})
}

// defaultPageSize is the listing page size when the caller sets none, and
// S3's own maximum per ListObjectsV2 call.
const defaultPageSize = 1000

// abortTimeout bounds the cleanup of a failed upload, which runs even when
// the request's context is already cancelled.
const abortTimeout = 30 * time.Second

// Store is an S3 bucket (and key prefix) used as an artifact store.
type Store struct {
	cfg    Config
	client *minio.Client
	core   minio.Core
	// owner is the header set to add, before signing, wherever minio-go
	// has a slot for it (nil when no owner is configured).
	owner http.Header
	// signPayload: buffered bodies go with their SHA-256 signed in (plain
	// http, as minio-go signs payloads there); over https they go as
	// UNSIGNED-PAYLOAD, TLS protecting them.
	signPayload bool
	bufSize     int64       // the size of reusable part buffers
	buffers     chan []byte // idle part buffers of bufSize bytes (buffers.go)
	// janitor retries aborts of failed multipart Puts that failed
	// themselves (janitor.go).
	janitor *janitor
	// presign signs presigned URLs for FERRY_S3_PRESIGN_ENDPOINT_URL
	// (presign.go); nil without one: client signs them.
	presign *presigner
	// scoped marks a view made by Scope: it shares everything above with
	// its parent and owns nothing, so its Close does nothing.
	scoped bool
}

var (
	_ stores.Store       = (*Store)(nil)
	_ stores.Driver      = (*Store)(nil)
	_ stores.Presigner   = (*Store)(nil)
	_ stores.Multiparter = (*Store)(nil)
	_ io.Closer          = (*Store)(nil)
	_ stores.Scoper      = (*Store)(nil)
)

// New builds a store from cfg. It makes no request: a bucket that is
// unreachable now is reported by the first operation, and the store works
// as soon as S3 does.
func New(_ context.Context, cfg Config) (*Store, error) {
	return newStore(cfg, nil)
}

// newStore is New with an optional wrapper around the HTTP transport
// (tests use it to watch every request).
func newStore(cfg Config, wrap func(http.RoundTripper) http.RoundTripper) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 store: no bucket")
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.MultipartThreshold <= 0 {
		cfg.MultipartThreshold = DefaultMultipartThreshold
	}
	if cfg.PartURLTTL <= 0 {
		cfg.PartURLTTL = DefaultPartURLTTL
	}
	if cfg.Anonymous && cfg.ExpectedBucketOwner != "" {
		return nil, errors.New("s3 store: MLFLOW_S3_EXPECTED_BUCKET_OWNER needs signed requests, not MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION=unsigned")
	}

	host, secure := "s3.amazonaws.com", true
	if cfg.Endpoint != "" {
		var err error
		if host, secure, err = parseEndpoint(cfg.Endpoint, false); err != nil {
			return nil, fmt.Errorf("s3 store: MLFLOW_S3_ENDPOINT_URL=%q: %v", cfg.Endpoint, err)
		}
	}

	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3 store: %w", err)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	switch {
	case cfg.IgnoreTLS:
		tr.TLSClientConfig.InsecureSkipVerify = true
	case cfg.CABundle != "":
		pem, err := os.ReadFile(cfg.CABundle)
		if err != nil {
			return nil, fmt.Errorf("s3 store: AWS_CA_BUNDLE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3 store: AWS_CA_BUNDLE %s holds no PEM certificate", cfg.CABundle)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	if cfg.Timeout > 0 {
		tr.ResponseHeaderTimeout = cfg.Timeout
	}

	var creds *credentials.Credentials
	switch {
	case cfg.Anonymous:
		creds = credentials.NewStatic("", "", "", credentials.SignatureAnonymous)
	case cfg.AccessKey != "":
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	default:
		// The rest of the AWS chain: shared files, then IAM roles (web
		// identity, ECS task role, EC2 instance profile). What they fetch
		// (instance metadata, STS, the SSO portal) goes through their own
		// HTTP client on the plain transport, never through the main
		// client's (ownerTransport would refuse them: credsFetcher).
		creds = credentials.New(credsFetcher{
			p: &credentials.Chain{Providers: []credentials.Provider{
				&credentials.FileAWSCredentials{Profile: cfg.Profile},
				&credentials.IAM{Endpoint: cfg.imdsEndpoint},
			}},
			client: &http.Client{Transport: tr},
		})
	}

	var rt http.RoundTripper = tr
	var owner http.Header
	if cfg.ExpectedBucketOwner != "" {
		owner = http.Header{OwnerHeader: {cfg.ExpectedBucketOwner}}
		rt = &ownerTransport{base: tr, owner: cfg.ExpectedBucketOwner, creds: creds}
	}
	if wrap != nil {
		rt = wrap(rt)
	}

	lookup := minio.BucketLookupAuto
	switch cfg.AddressingStyle {
	case "path":
		lookup = minio.BucketLookupPath
	case "virtual":
		lookup = minio.BucketLookupDNS
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    rt,
		Region:       cfg.Region,
		BucketLookup: lookup,
		// A few quick retries of idempotent requests; a server that is
		// down should give the client a prompt 503, not a minute's wait.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 store: %w", err)
	}
	s := &Store{cfg: cfg, client: client, core: minio.Core{Client: client}, owner: owner}
	if cfg.PresignEndpoint != "" {
		if s.presign, err = newPresigner(cfg, lookup, creds, client); err != nil {
			return nil, err
		}
	}
	s.signPayload = !secure && !cfg.Anonymous
	s.bufSize = partSizeFor(cfg.PartSize, -1)
	s.buffers = make(chan []byte, maxIdleBuffers)
	s.janitor = newJanitor(cfg.Bucket, func(ctx context.Context, obj, id string) error {
		return s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, obj, id)
	})
	return s, nil
}

// credsFetcher runs a credentials provider with its own HTTP client.
//
// minio-go hands a provider the CredContext of the client that needs the
// credentials, whose HTTP client is the one S3 requests go through. With
// MLFLOW_S3_EXPECTED_BUCKET_OWNER that client's transport is
// ownerTransport, which refuses anything not SigV4-signed: the unsigned
// requests to the instance metadata service, the ECS endpoint, STS or the
// SSO portal would fail and the chain would end anonymous. (Without an
// owner they would go through the S3 transport, TLS settings and timeout
// included, which is what the client given here is made of too.) The
// caller's context still applies.
type credsFetcher struct {
	p      credentials.Provider
	client *http.Client
}

// RetrieveWithCredContext implements credentials.Provider.
func (f credsFetcher) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	own := credentials.CredContext{Client: f.client}
	if cc != nil {
		own.Endpoint, own.Context = cc.Endpoint, cc.Context
	}
	return f.p.RetrieveWithCredContext(&own)
}

// Retrieve implements credentials.Provider.
func (f credsFetcher) Retrieve() (credentials.Value, error) { return f.RetrieveWithCredContext(nil) }

// IsExpired implements credentials.Provider.
func (f credsFetcher) IsExpired() bool { return f.p.IsExpired() }

// SetLogger sets where the store logs (slog.Default() until set); the
// driver logs only what happens outside a request: aborts of failed
// uploads that are retried in the background (janitor.go).
func (s *Store) SetLogger(l *slog.Logger) {
	if l != nil {
		s.janitor.log.Store(l)
	}
}

// Close stops the background retry of failed aborts, after one last short
// attempt for the uploads still queued (each one left is logged). The
// store, and every store Scope made from it, must not be used afterwards.
// Closing a scoped store does nothing. It always returns nil.
func (s *Store) Close() error {
	if !s.scoped {
		s.janitor.close()
	}
	return nil
}

// Scope implements stores.Scoper: the store for the key prefix dir below
// this store's prefix (s3://bucket/p scoped to "a/b" is s3://bucket/p/a/b),
// sharing this store's HTTP client and connections, part buffers, abort
// janitor and presigner, so that it costs one small allocation.
func (s *Store) Scope(dir string) (stores.Store, error) {
	c := *s
	c.cfg.Prefix = stores.JoinKey(s.cfg.Prefix, dir)
	c.scoped = true
	return &c, nil
}

// DriverName implements stores.Driver.
func (s *Store) DriverName() string { return "s3" }

// Bucket is the bucket behind the store.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// Prefix is the key prefix behind the store ("" for the whole bucket).
func (s *Store) Prefix() string { return s.cfg.Prefix }

// objectKey is the S3 key of a store key.
func (s *Store) objectKey(key string) string { return stores.JoinKey(s.cfg.Prefix, key) }

// dirPrefix is the S3 prefix under which dir's children live.
func (s *Store) dirPrefix(dir string) string {
	if k := s.objectKey(dir); k != "" {
		return k + "/"
	}
	return ""
}

func (s *Store) getOptions() minio.GetObjectOptions {
	var o minio.GetObjectOptions
	for k, v := range s.owner {
		o.Set(k, v[0])
	}
	return o
}

func (s *Store) listOptions(prefix string, recursive bool) minio.ListObjectsOptions {
	o := minio.ListObjectsOptions{Prefix: prefix, Recursive: recursive, MaxKeys: defaultPageSize}
	for k, v := range s.owner {
		o.Set(k, v[0])
	}
	return o
}

// putOptions are the options of every object write: the upload args, and
// the owner signed in through the one pre-signing header slot minio-go's
// PutObject has (see withHeaders).
func (s *Store) putOptions(key string) minio.PutObjectOptions {
	o := s.cfg.Upload.putOptions(key)
	if s.owner != nil {
		o.ServerSideEncryption = withHeaders{inner: o.ServerSideEncryption, h: s.owner}
	}
	return o
}

// partOptions are the options of a buffered part whose payload hash is
// sha (hex; "" sends it as UNSIGNED-PAYLOAD). A buffered part is hashed
// once, as it is read, not chunk-signed in 64 KiB pieces as minio-go
// streams do: one SHA-256 pass, no per-chunk HMACs and framing copies.
func (s *Store) partOptions(sha string) minio.PutObjectPartOptions {
	o := minio.PutObjectPartOptions{SSE: s.cfg.Upload.SSEC, Sha256Hex: sha, DisableContentSha256: true}
	if s.owner != nil {
		o.CustomHeader = s.owner.Clone()
	}
	return o
}

func (s *Store) fail(op, key string, err error) error {
	return fmt.Errorf("s3 %s s3://%s/%s: %w", op, s.cfg.Bucket, s.objectKey(key), classify(err))
}

// Stat implements stores.Store. A key with objects under it is a
// directory; the root always is one.
func (s *Store) Stat(ctx context.Context, key string) (stores.Entry, error) {
	if key == "" {
		return stores.Entry{IsDir: true}, nil
	}
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, s.objectKey(key), s.getOptions())
	if err == nil {
		return stores.Entry{Key: key, Size: info.Size, ModTime: info.LastModified}, nil
	}
	err = s.fail("stat", key, err)
	if !errors.Is(err, stores.ErrNotFound) {
		return stores.Entry{}, err
	}
	isDir, derr := s.hasChildren(ctx, key)
	if derr != nil {
		return stores.Entry{}, derr
	}
	if isDir {
		return stores.Entry{Key: key, IsDir: true}, nil
	}
	return stores.Entry{}, err
}

// hasChildren reports whether any object lives under key/.
func (s *Store) hasChildren(ctx context.Context, key string) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := s.listOptions(s.dirPrefix(key), true)
	opts.MaxKeys = 1
	ch := s.client.ListObjects(ctx, s.cfg.Bucket, opts)
	defer drain(ch)
	for obj := range ch {
		if obj.Err != nil {
			return false, s.fail("list", key, obj.Err)
		}
		return true, nil
	}
	return false, nil
}

// drain empties a listing channel after its context was cancelled, so
// minio-go's goroutine ends.
func drain(ch <-chan minio.ObjectInfo) {
	for range ch { //nolint:revive // draining
	}
}

// List implements stores.Store.
//
// S3 lists in byte order of the full names, with directories as
// "name/"; the store's order is by key, where a directory "a" sorts before
// "a.txt" although "a/" sorts after it. So a page reads on past its last
// entry just far enough to be sure that no directory whose key belongs in
// the page is still to come (stores.ListBound). That needs S3's own order, which
// minio-go's ListObjects channel does not keep (it sends each batch's
// objects before its directories), hence the batch-wise listBatch.
func (s *Store) List(ctx context.Context, dir string, page stores.ListPage) (stores.Listing, error) {
	limit := page.Limit
	if limit <= 0 || limit > defaultPageSize {
		limit = defaultPageSize
	}
	prefix := s.dirPrefix(dir)
	startAfter := ""
	if page.After != "" {
		startAfter = s.objectKey(page.After)
	}
	type item struct {
		name  string // the S3 name: key, or prefix ending in "/"
		entry stores.Entry
	}
	var got []stores.Entry
	bound, token := "", ""
	for done := false; !done; {
		r, err := s.listBatch(ctx, prefix, startAfter, token)
		if err != nil {
			return stores.Listing{}, s.fail("list", dir, err)
		}
		items := make([]item, 0, len(r.Contents)+len(r.CommonPrefixes))
		for _, o := range r.Contents {
			items = append(items, item{o.Key, stores.Entry{Size: o.Size, ModTime: o.LastModified}})
		}
		for _, p := range r.CommonPrefixes {
			items = append(items, item{p.Prefix, stores.Entry{IsDir: true}})
		}
		sort.Slice(items, func(i, j int) bool { return items[i].name < items[j].name })
		for _, it := range items {
			if bound != "" && it.name > bound {
				done = true
				break
			}
			name, _ := strings.CutSuffix(strings.TrimPrefix(it.name, prefix), "/")
			if name == "" || name == "." || name == ".." || strings.Contains(name, "/") || !strings.HasPrefix(it.name, prefix) {
				continue // a "dir/" marker object, or a name no clean key can have
			}
			e := it.entry
			e.Key = stores.JoinKey(dir, name)
			if page.After != "" && e.Key <= page.After {
				continue
			}
			got = append(got, e)
			if len(got) > limit {
				sort.Slice(got, func(i, j int) bool { return got[i].Key < got[j].Key })
				got = got[:limit+1]
				bound = stores.ListBound(s.objectKey(got[limit].Key), prefix)
			}
		}
		if !r.IsTruncated || r.NextContinuationToken == "" {
			break
		}
		token = r.NextContinuationToken
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Key < got[j].Key })
	out := stores.Listing{Entries: got}
	if len(got) > limit {
		out.Entries = got[:limit]
		out.NextAfter = got[limit-1].Key
	}
	return out, nil
}

// listBatch is one ListObjectsV2 call (delimiter "/", up to 1000 names).
// minio-go's Core call takes no context, so it runs aside and is left to
// finish on its own when ctx ends first; the owner header reaches it
// through ownerTransport.
func (s *Store) listBatch(ctx context.Context, prefix, startAfter, token string) (minio.ListBucketV2Result, error) {
	type result struct {
		r   minio.ListBucketV2Result
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := s.core.ListObjectsV2(s.cfg.Bucket, prefix, startAfter, token, "/", defaultPageSize)
		ch <- result{r, err}
	}()
	select {
	case res := <-ch:
		return res.r, res.err
	case <-ctx.Done():
		return minio.ListBucketV2Result{}, ctx.Err()
	}
}

// Open implements stores.Store.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, stores.Entry, error) {
	if rc, e, done, err := stores.OpenWithoutRead(ctx, s.Stat, key, offset, length); done {
		return rc, e, err
	}
	ranged := offset > 0 || length > 0
	rc, e, err := s.get(ctx, key, offset, length, ranged)
	if err != nil && ranged && offset == 0 && errors.Is(err, stores.ErrInvalidRange) {
		// "bytes=0-n" of an empty object: S3 refuses, the store contract
		// gives the (empty) object.
		rc, e, err = s.get(ctx, key, 0, -1, false)
	}
	if err == nil {
		return rc, e, nil
	}
	if errors.Is(err, stores.ErrNotFound) {
		if isDir, derr := s.hasChildren(ctx, key); derr == nil && isDir {
			return nil, stores.Entry{Key: key, IsDir: true}, fmt.Errorf("open %s: %w", key, stores.ErrIsDir)
		}
	}
	return nil, e, err
}

func (s *Store) get(ctx context.Context, key string, offset, length int64, ranged bool) (io.ReadCloser, stores.Entry, error) {
	opts := s.getOptions()
	if ranged {
		end := int64(0) // "bytes=offset-"
		if length > 0 {
			end = offset + length - 1
		}
		if err := opts.SetRange(offset, end); err != nil {
			return nil, stores.Entry{}, fmt.Errorf("open %s: %v: %w", key, err, stores.ErrInvalidRange)
		}
	}
	rc, info, h, err := s.core.GetObject(ctx, s.cfg.Bucket, s.objectKey(key), opts)
	if err != nil {
		return nil, stores.Entry{}, s.fail("get", key, err)
	}
	e := stores.Entry{Key: key, Size: info.Size, ModTime: info.LastModified}
	rc = &body{rc: rc}
	if cr := h.Get("Content-Range"); cr != "" {
		// "bytes a-b/total"
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if total, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				e.Size = total
			}
		}
	}
	return rc, e, nil
}

// singlePut reports whether an upload of size bytes goes as one PUT (a
// known size under the multipart threshold and S3's single-PUT limit)
// rather than as a multipart upload.
func (s *Store) singlePut(size int64) bool {
	return size >= 0 && size < s.cfg.MultipartThreshold && size <= MaxSinglePut
}

// Put implements stores.Store. S3 commits an object only whole (a single
// PUT, or a multipart upload's complete), so a failed or short upload
// leaves nothing behind; a failed multipart upload is aborted.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if key == "" {
		return fmt.Errorf("put: %w: an object needs a name", stores.ErrInvalidKey)
	}
	opts := s.putOptions(key)
	if size < 0 {
		return s.putUnknown(ctx, key, r, opts)
	}
	if s.singlePut(size) {
		sr := &sizedReader{ctx: ctx, r: r, remaining: size}
		if size <= landedCheckMax {
			sr.md5 = md5.New()
		}
		_, err := s.core.PutObject(ctx, s.cfg.Bucket, s.objectKey(key), sr, size, "", "", opts)
		if err != nil && sr.md5 != nil && sr.err == nil && !sr.short && sr.remaining == 0 && s.landed(ctx, key, size, sr.md5) {
			// Go's HTTP/1 transport can fail a request whose bytes all
			// went out when another request's broken body tears down the
			// shared connection ("transport connection broken"); the
			// server may have stored it whole. An object of this size
			// whose ETag is the MD5 of what was sent is this upload.
			return nil
		}
		return s.putErr(key, sr, size, err)
	}
	return s.putMultipart(ctx, key, r, size, opts, nil)
}

// landedCheckMax bounds the single PUTs that are MD5-hashed as they stream,
// so that an ambiguous transport error can be resolved (landed): larger
// ones (up to the 500 MiB multipart threshold) would pay the hash's CPU on
// every upload for a rare error, and keep reporting it.
const landedCheckMax = 16 << 20

// landed reports whether the object at key is exactly the single PUT whose
// bytes hashed to sum: its size and its ETag (the MD5 of the content for a
// single PUT without SSE-KMS/SSE-C; anything else never matches).
func (s *Store) landed(ctx context.Context, key string, size int64, sum hash.Hash) bool {
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, s.objectKey(key), s.getOptions())
	if err != nil || info.Size != size {
		return false
	}
	return strings.EqualFold(strings.Trim(info.ETag, `"`), hex.EncodeToString(sum.Sum(nil)))
}

// putErr classifies a failed single PUT, telling a short body apart.
func (s *Store) putErr(key string, sr *sizedReader, size int64, err error) error {
	if sr.short {
		return fmt.Errorf("put %s: got %d of %d bytes: %w", key, size-sr.remaining, size, stores.ErrIncomplete)
	}
	if sr.err != nil {
		return fmt.Errorf("put %s: reading the upload: %w", key, sr.err)
	}
	if err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

// partsInFlight bounds the part buffers of one multipart Put: one part
// is read from the client while up to two earlier ones upload, so the
// client never waits for S3 to acknowledge a part and S3 works on two
// parts at once (a single part stream keeps MinIO on about one core; two
// measured 0.83-0.96x -> 0.94-0.99x of a direct 4-parallel upload, best of
// rounds, test/bench/s3), at three parts of memory (30 MiB with MLflow's
// 10 MiB chunk; peak RSS 49 -> 60 MiB, target 64).
const partsInFlight = 3

// part is a buffered part: n bytes of buf, and their SHA-256 in hex
// ("" when payloads go unsigned).
type part struct {
	buf []byte
	n   int
	sha string
}

// putBuffered sends a buffered part's bytes with send, through a
// partReader that is revoked before the buffer goes back (buffers.go).
func (s *Store) putBuffered(p part, send func(r io.Reader) error) error {
	pr := newPartReader(p.buf[:p.n])
	err := send(pr)
	pr.revoke()
	s.putBuffer(p.buf)
	return err
}

// putUnknown uploads a body of unknown length: a body that fits one part
// goes up as a single PUT, a longer one as a multipart upload.
func (s *Store) putUnknown(ctx context.Context, key string, r io.Reader, opts minio.PutObjectOptions) error {
	r = stores.ContextReader(ctx, r)
	partSize := partSizeFor(s.cfg.PartSize, -1)
	h := s.newPartHash()
	first := part{buf: s.getBuffer(partSize)}
	n, err := readPart(r, first.buf, h)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		s.putBuffer(first.buf)
		return fmt.Errorf("put %s: reading the upload: %w", key, err)
	}
	first.n, first.sha = n, sumHex(h)
	if int64(n) < partSize {
		// One PUT, chunk-signed over http like the streamed single PUT
		// (a PUT cut short must not be stored: see NOTES.md, versitygw).
		// A cut part, by contrast, is never completed: the upload is
		// aborted.
		return s.putBuffered(first, func(body io.Reader) error {
			if _, err := s.core.PutObject(ctx, s.cfg.Bucket, s.objectKey(key), body, int64(n), "", "", opts); err != nil {
				return s.fail("put", key, err)
			}
			return nil
		})
	}
	return s.putMultipart(ctx, key, r, -1, opts, &first)
}

// putMultipart uploads size bytes of r (size < 0: until EOF) as a
// multipart upload in parts of the configured size, partsInFlight at a
// time. first, when set, is a full first part already read. On any
// failure the upload is aborted, so nothing is stored.
func (s *Store) putMultipart(ctx context.Context, key string, r io.Reader, size int64, opts minio.PutObjectOptions, first *part) (err error) {
	partSize := partSizeFor(s.cfg.PartSize, size)
	obj := s.objectKey(key)
	id, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, obj, opts)
	if err != nil {
		if first != nil {
			s.putBuffer(first.buf)
		}
		return s.fail("create multipart upload", key, err)
	}
	// pctx ends the reading and the other parts once one part fails.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r = stores.ContextReader(pctx, r)
	var (
		mu       sync.Mutex
		firstErr error
		parts    []minio.CompletePart
		wg       sync.WaitGroup
	)
	setErr := func(e error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = e
			cancel()
		}
		mu.Unlock()
	}
	slots := make(chan struct{}, partsInFlight)
	var read int64
	for num := 1; ; num++ {
		if num > MaxParts {
			setErr(fmt.Errorf("put %s: more than %d parts of %d bytes: %w", key, MaxParts, partSize, stores.ErrTooLarge))
			break
		}
		slots <- struct{}{}
		if pctx.Err() != nil {
			<-slots
			break
		}
		want := partSize
		if size >= 0 {
			want = min(partSize, size-read)
		}
		var p part
		if first != nil {
			p, first = *first, nil
		} else {
			p.buf = s.getBuffer(partSize)
			h := s.newPartHash()
			n, rerr := readPart(r, p.buf[:want], h)
			var readErr error
			switch {
			case rerr == nil:
			case (rerr == io.EOF || rerr == io.ErrUnexpectedEOF) && size >= 0:
				readErr = fmt.Errorf("put %s: got %d of %d bytes: %w", key, read+int64(n), size, stores.ErrIncomplete)
			case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
				// The end of a body of unknown length.
			default:
				readErr = fmt.Errorf("put %s: reading the upload: %w", key, rerr)
			}
			if readErr != nil || n == 0 {
				if readErr != nil {
					setErr(readErr)
				}
				s.putBuffer(p.buf)
				<-slots
				break
			}
			p.n, p.sha = n, sumHex(h)
		}
		read += int64(p.n)
		wg.Add(1)
		go func(num int, p part) {
			defer func() { <-slots; wg.Done() }()
			perr := s.putBuffered(p, func(body io.Reader) error {
				up, err := s.core.PutObjectPart(pctx, s.cfg.Bucket, obj, id, num, body, int64(p.n), s.partOptions(p.sha))
				if err != nil {
					return err
				}
				mu.Lock()
				parts = append(parts, minio.CompletePart{PartNumber: num, ETag: up.ETag})
				mu.Unlock()
				return nil
			})
			if perr != nil {
				setErr(s.fail(fmt.Sprintf("upload part %d of", num), key, perr))
			}
		}(num, p)
		if (size >= 0 && read >= size) || (size < 0 && int64(p.n) < partSize) {
			break
		}
	}
	wg.Wait()
	mu.Lock()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	mu.Unlock()
	if firstErr != nil {
		s.abortQuietly(ctx, obj, id)
		return firstErr
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	if _, err := s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, obj, id, parts, opts); err != nil {
		s.abortQuietly(ctx, obj, id)
		return s.fail("complete multipart upload", key, err)
	}
	return nil
}

// abortQuietly aborts a failed upload even when ctx is done; the upload's
// own error is what the caller reports. An abort that fails for a reason
// that may pass (S3 down) is retried in the background (janitor.go).
func (s *Store) abortQuietly(ctx context.Context, obj, id string) {
	s.janitor.abortNow(ctx, obj, id)
}

// Delete implements stores.Store: the object at key and every object
// under key/ (not, unlike upstream's prefix delete, "keyX" siblings).
// Deleting the root empties the prefix (or the bucket).
func (s *Store) Delete(ctx context.Context, key string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objs := make(chan minio.ObjectInfo)
	var listErr error
	go func() {
		defer close(objs)
		send := func(o minio.ObjectInfo) bool {
			select {
			case objs <- o:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if key != "" && !send(minio.ObjectInfo{Key: s.objectKey(key)}) {
			return
		}
		ch := s.client.ListObjects(ctx, s.cfg.Bucket, s.listOptions(s.dirPrefix(key), true))
		defer drain(ch)
		for o := range ch {
			if o.Err != nil {
				listErr = o.Err
				return
			}
			if !send(minio.ObjectInfo{Key: o.Key}) {
				return
			}
		}
	}()
	var first error
	for e := range s.client.RemoveObjects(ctx, s.cfg.Bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err == nil || errors.Is(classify(e.Err), stores.ErrNotFound) {
			continue
		}
		if first == nil {
			first = fmt.Errorf("s3 delete s3://%s/%s: %w", s.cfg.Bucket, e.ObjectName, classify(e.Err))
		}
	}
	cancel()
	for range objs { //nolint:revive // wait for the lister to finish
	}
	if first != nil {
		return first
	}
	if listErr != nil {
		return s.fail("list for delete", key, listErr)
	}
	return nil
}

// sizedReader delivers exactly remaining bytes of r and notes a body that
// ends early (short) or fails (err), so the upload fails rather than
// committing a prefix.
type sizedReader struct {
	ctx       context.Context
	r         io.Reader
	remaining int64
	short     bool
	err       error
	// md5, when set, hashes what was read (to recognise the upload's own
	// object after an ambiguous transport error).
	md5 hash.Hash
}

func (s *sizedReader) Read(p []byte) (int, error) {
	if s.remaining <= 0 {
		return 0, io.EOF
	}
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	if int64(len(p)) > s.remaining {
		p = p[:s.remaining]
	}
	n, err := s.r.Read(p)
	s.remaining -= int64(n)
	if s.md5 != nil {
		s.md5.Write(p[:n])
	}
	switch {
	case err == io.EOF && s.remaining > 0:
		s.short = true
		return n, fmt.Errorf("upload body ended %d bytes early: %w", s.remaining, stores.ErrIncomplete)
	case err == io.EOF:
		return n, io.EOF
	case err != nil:
		s.err = err
	}
	return n, err
}

// body is an S3 response body whose WriteTo copies in large chunks (the
// HTTP layer's default copy would use its own 4 KiB buffer).
type body struct{ rc io.ReadCloser }

func (b *body) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b *body) Close() error               { return b.rc.Close() }

// WriteTo implements io.WriterTo with stores.CopyDownload: a read of the
// response body returns one socket read, 64 to 256 KiB, and each write to
// the client is a syscall, so it gathers up to 1 MiB per write.
func (b *body) WriteTo(w io.Writer) (int64, error) { return stores.CopyDownload(w, b.rc) }
