// Package gcs is the Google Cloud Storage store driver for
// gs://bucket/prefix destinations, on cloud.google.com/go/storage.
//
// Configuration is upstream MLflow's environment (see ConfigFromEnv):
// Application Default Credentials or GOOGLE_APPLICATION_CREDENTIALS,
// STORAGE_EMULATOR_HOST, MLFLOW_GCS_UPLOAD_CHUNK_SIZE,
// MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE, MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT.
//
// Uploads of a known size from one MLFLOW_GCS_UPLOAD_CHUNK_SIZE chunk up
// to below MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE stream as one
// request of a resumable upload, holding nothing (stream.go); larger ones
// and those of unknown size go in chunks, each retried on its own,
// holding one chunk in memory; smaller ones are one request holding the
// object. GCS creates an object only when an upload is finalised, so a
// Put whose body fails or ends early cancels the upload and leaves
// nothing. Downloads stream with ranges; listing and deleting paginate.
//
// When the credentials can sign (a service-account key, or a service
// account that may call IAM signBlob), New returns a store that also
// presigns downloads (V4 signed GET URLs) and presigned multipart uploads
// through the XML API as upstream does (multipart.go); otherwise the store
// has neither capability and the proxy answers 501, so clients fall back
// to proxied transfers.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/auth/httptransport"
	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/ferryml/ferry/stores"
)

func init() {
	stores.Register("gs", func(ctx context.Context, u *url.URL) (stores.Store, error) {
		cfg, err := ConfigFromEnv(u, getenv)
		if err != nil {
			return nil, err
		}
		return New(ctx, cfg)
	})
}

// Scopes are the OAuth scopes Ferry asks for: full control of objects,
// and cloud-platform for IAM signBlob.
var Scopes = []string{storage.ScopeFullControl, "https://www.googleapis.com/auth/cloud-platform"}

// defaultPageSize is the listing page size when the caller sets none (and
// its maximum): GCS's own maximum page.
const defaultPageSize = 1000

// deleteWorkers bounds the object deletes one Delete runs at once (GCS
// deletes objects one by one).
const deleteWorkers = 8

// Store is a GCS store rooted at gs://Bucket/Prefix. It has no presign or
// multipart capability; SigningStore adds them.
type Store struct {
	cfg    Config
	client *storage.Client
	bucket *storage.BucketHandle
	// hc sends Ferry's own XML API requests (multipart uploads) with the
	// same credentials as the storage client.
	hc *http.Client
	// xmlScheme and xmlHost are where the XML API and signed URLs point.
	xmlScheme, xmlHost string
	signer             *signer
	logMu              sync.RWMutex
	log                *slog.Logger
}

// SigningStore is a Store whose credentials can sign: it also implements
// stores.Presigner and stores.Multiparter.
type SigningStore struct{ *Store }

// New builds a store for cfg: a *SigningStore when the credentials can
// sign URLs, else a *Store.
func New(ctx context.Context, cfg Config) (stores.Store, error) {
	s, err := newStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if s.signer != nil {
		return &SigningStore{s}, nil
	}
	return s, nil
}

func newStore(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("gcs store: no bucket")
	}
	if cfg.UploadChunkSize <= 0 {
		cfg.UploadChunkSize = DefaultUploadChunkSize
	}
	if cfg.MultipartThreshold <= 0 {
		cfg.MultipartThreshold = DefaultMultipartThreshold
	}
	s := &Store{cfg: cfg, xmlScheme: "https", xmlHost: DefaultXMLHost, log: slog.Default()}
	endpoint := "https://storage.googleapis.com/storage/v1/"
	if cfg.EmulatorHost != "" {
		scheme, host, err := emulatorURL(cfg.EmulatorHost)
		if err != nil {
			return nil, fmt.Errorf("gcs store: STORAGE_EMULATOR_HOST=%q: %v", cfg.EmulatorHost, err)
		}
		s.xmlScheme, s.xmlHost = scheme, host
		endpoint = scheme + "://" + host + "/storage/v1/"
	}

	base := newTransport(cfg.Timeout)
	s.hc = &http.Client{Transport: base}
	var creds *auth.Credentials
	if cfg.EmulatorHost == "" || cfg.CredentialsFile != "" || cfg.detectADC {
		c, err := credentials.DetectDefault(&credentials.DetectOptions{
			Scopes:          Scopes,
			CredentialsFile: cfg.CredentialsFile,
			Client:          &http.Client{Transport: base},
		})
		switch {
		case err == nil:
			creds = c
		case cfg.CredentialsFile != "":
			// A named file that cannot be used is a configuration error,
			// not a reason to go anonymous.
			return nil, fmt.Errorf("gcs store: GOOGLE_APPLICATION_CREDENTIALS: %w", err)
		default:
			// As upstream: no credentials found, an anonymous client.
			slog.Info("gcs store: no Application Default Credentials found; using an anonymous client", "error", err.Error())
		}
	}
	if creds != nil {
		if err := httptransport.AddAuthorizationMiddleware(s.hc, creds); err != nil {
			return nil, fmt.Errorf("gcs store: %w", err)
		}
	}
	// s.hc carries the credentials; WithoutAuthentication keeps
	// storage.NewClient from running its own ADC search (which probes
	// the metadata server and caches "not on GCE" for the process).
	client, err := storage.NewClient(ctx, option.WithHTTPClient(s.hc), option.WithEndpoint(endpoint), option.WithoutAuthentication())
	if err != nil {
		return nil, fmt.Errorf("gcs store: %w", err)
	}
	// Retries are bounded so that an unreachable GCS becomes a 503 within
	// seconds instead of a request hanging until its client gives up.
	client.SetRetry(storage.WithMaxAttempts(retryAttempts), storage.WithBackoff(retryBackoff()))
	s.client, s.bucket = client, client.Bucket(cfg.Bucket)
	if creds != nil {
		iam := cfg.iamEndpoint
		if iam == "" {
			iam = DefaultIAMEndpoint
		}
		sg, err := newSigner(ctx, creds, s.hc, iam)
		if err != nil {
			slog.Info("gcs store: the credentials cannot sign URLs; presigned downloads and multipart uploads are off", "reason", err.Error())
		}
		s.signer = sg
	}
	return s, nil
}

// retryAttempts and retryBackoff bound every retried GCS call: the
// library's and the streamed upload's session start (stream.go).
const retryAttempts = 4

func retryBackoff() gax.Backoff {
	return gax.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2}
}

// newTransport is the HTTP transport under every request: pooled
// connections for parallel transfers, and the response timeout of
// MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT.
func newTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: timeout,
		// Large socket writes for uploads, as net/http's 4 KiB default
		// costs a system call per 4 KiB.
		WriteBufferSize: 256 << 10,
		ReadBufferSize:  64 << 10,
	}
}

// DriverName implements stores.Driver.
func (s *Store) DriverName() string { return "gcs" }

// SetLogger sets the logger (stores.Opener calls it).
func (s *Store) SetLogger(l *slog.Logger) {
	s.logMu.Lock()
	s.log = l
	s.logMu.Unlock()
}

func (s *Store) logger() *slog.Logger {
	s.logMu.RLock()
	defer s.logMu.RUnlock()
	return s.log
}

// Close releases the client's connections.
func (s *Store) Close() error { return s.client.Close() }

// objectName is the GCS object name of key ("" = the prefix itself).
func (s *Store) objectName(key string) string {
	switch {
	case s.cfg.Prefix == "":
		return key
	case key == "":
		return s.cfg.Prefix
	}
	return s.cfg.Prefix + "/" + key
}

// dirPrefix is the name prefix of everything under key.
func (s *Store) dirPrefix(key string) string {
	if key == "" && s.cfg.Prefix == "" {
		return ""
	}
	return s.objectName(key) + "/"
}

func (s *Store) fail(op, key string, err error) error {
	return fmt.Errorf("gcs %s gs://%s/%s: %w", op, s.cfg.Bucket, s.objectName(key), classify(err))
}

// Stat implements stores.Store.
func (s *Store) Stat(ctx context.Context, key string) (stores.Entry, error) {
	if key == "" {
		return stores.Entry{IsDir: true}, nil
	}
	a, err := s.bucket.Object(s.objectName(key)).Attrs(ctx)
	if err == nil {
		return stores.Entry{Key: key, Size: a.Size, ModTime: a.Updated}, nil
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

// hasChildren reports whether any object lies under key/.
func (s *Store) hasChildren(ctx context.Context, key string) (bool, error) {
	q := &storage.Query{Prefix: s.dirPrefix(key)}
	_ = q.SetAttrSelection([]string{"Name"})
	it := s.bucket.Objects(ctx, q)
	it.PageInfo().MaxSize = 1
	_, err := it.Next()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, iterator.Done):
		return false, nil
	}
	return false, s.fail("list", key, err)
}

// List implements stores.Store. GCS lists names in byte order, with a
// directory as "name/"; keys sort without the slash, so "dir" comes
// before "dir-x" although "dir/" comes after it. The listing therefore
// reads on past a full page until no later name can still sort before
// the page's last key (stores.ListBound).
func (s *Store) List(ctx context.Context, dir string, page stores.ListPage) (stores.Listing, error) {
	limit := page.Limit
	if limit <= 0 || limit > defaultPageSize {
		limit = defaultPageSize
	}
	prefix := s.dirPrefix(dir)
	q := &storage.Query{Prefix: prefix, Delimiter: "/"}
	if page.After != "" {
		name := strings.TrimPrefix(page.After, dir)
		name = strings.TrimPrefix(name, "/")
		q.StartOffset = prefix + name
	}
	_ = q.SetAttrSelection([]string{"Name", "Size", "Updated"})
	it := s.bucket.Objects(ctx, q)
	it.PageInfo().MaxSize = defaultPageSize
	var got []stores.Entry
	bound := ""   // GCS name past which nothing can join the page
	pageMax := "" // the greatest name of the GCS page being read
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return stores.Listing{}, s.fail("list", dir, err)
		}
		full := a.Name
		e := stores.Entry{Size: a.Size, ModTime: a.Updated}
		if a.Prefix != "" {
			full, e = a.Prefix, stores.Entry{IsDir: true}
		}
		pageMax = max(pageMax, full)
		name, _ := strings.CutSuffix(strings.TrimPrefix(full, prefix), "/")
		switch {
		case bound != "" && full > bound:
		case name == "" || name == "." || name == ".." || strings.Contains(name, "/") || !strings.HasPrefix(full, prefix):
			// a "dir/" placeholder object, or a name no clean key can have
		default:
			e.Key = stores.JoinKey(dir, name)
			if page.After != "" && e.Key <= page.After {
				break
			}
			got = append(got, e)
			if len(got) > limit {
				sort.Slice(got, func(i, j int) bool { return got[i].Key < got[j].Key })
				got = got[:limit+1]
				bound = stores.ListBound(s.objectName(got[limit].Key), prefix)
			}
		}
		// A GCS page holds its objects first, then its prefixes (each
		// group sorted), and pages follow in name order: stop at the end
		// of a page that went past the bound.
		if it.PageInfo().Remaining() == 0 {
			if bound != "" && pageMax > bound {
				break
			}
			pageMax = ""
		}
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Key < got[j].Key })
	out := stores.Listing{Entries: got}
	if len(got) > limit {
		out.Entries = got[:limit]
		out.NextAfter = got[limit-1].Key
	}
	return out, nil
}

// Open implements stores.Store.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, stores.Entry, error) {
	if rc, e, done, err := stores.OpenWithoutRead(ctx, s.Stat, key, offset, length); done {
		return rc, e, err
	}
	obj := s.bucket.Object(s.objectName(key))
	r, err := obj.NewRangeReader(ctx, offset, length)
	if err != nil && offset == 0 && length > 0 && errors.Is(classify(err), stores.ErrInvalidRange) {
		// "bytes=0-n" of an empty object: GCS refuses, the store
		// contract gives the (empty) object.
		r, err = obj.NewRangeReader(ctx, 0, -1)
	}
	if err != nil {
		err = s.fail("get", key, err)
		if errors.Is(err, stores.ErrNotFound) {
			if isDir, derr := s.hasChildren(ctx, key); derr == nil && isDir {
				return nil, stores.Entry{Key: key, IsDir: true}, fmt.Errorf("open %s: %w", key, stores.ErrIsDir)
			}
		}
		return nil, stores.Entry{}, err
	}
	e := stores.Entry{Key: key, Size: r.Attrs.Size, ModTime: r.Attrs.LastModified}
	return &body{r: r, s: s, key: key}, e, nil
}

// contentType is the type an object is stored with: guessed from the
// key's extension, as the Python library guesses it from the file name.
func contentType(key string) string {
	if t := mime.TypeByExtension(path.Ext(key)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// chunkFor is the Writer's chunk for an upload of size bytes (< 0:
// unknown): the configured chunk, or for a smaller known size just enough
// to hold it whole (the Writer allocates a whole chunk; an object that
// fits one goes up in a single request once complete).
//
// Never 0 (the Writer's unbuffered single request): that request streams
// the body as it arrives, and an emulator (fake-gcs-server) stores the
// part received so far when it is cut off, where a resumable upload is
// only ever finalised whole.
func chunkFor(configured int, size int64) int {
	if size >= 0 && size < int64(configured) {
		return int((size + ChunkAlign) / ChunkAlign * ChunkAlign) // > size: no empty last chunk
	}
	return configured
}

// Put implements stores.Store. GCS makes an object visible only when its
// upload is finalised; a Put whose body fails, ends early or is cancelled
// cancels the upload's context before that, so nothing is stored.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if key == "" {
		return fmt.Errorf("put: %w: an object needs a name", stores.ErrInvalidKey)
	}
	src := &sourceReader{ctx: ctx, r: r, remaining: size}
	if s.streams(size) {
		return s.streamPut(ctx, key, src, size)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := s.bucket.Object(s.objectName(key)).NewWriter(wctx)
	w.ContentType = contentType(key)
	w.ChunkSize = chunkFor(s.cfg.UploadChunkSize, size)
	bufp := copyBuffers.Get().(*[]byte)
	_, err := io.CopyBuffer(writerOnly{w}, src, *bufp)
	copyBuffers.Put(bufp)
	if err == nil && src.err != nil {
		err = src.err
	}
	if err != nil {
		// Abort the upload before it can be finalised; Close then waits
		// for the Writer's goroutine and reports the cancellation.
		cancel()
		werr := w.Close()
		switch {
		case src.short:
			return fmt.Errorf("put %s: got %d of %d bytes: %w", key, src.read, size, stores.ErrIncomplete)
		case src.err != nil:
			return fmt.Errorf("put %s: reading the upload: %w", key, src.err)
		case werr != nil && !errors.Is(werr, context.Canceled):
			return s.fail("put", key, werr)
		}
		return s.fail("put", key, err)
	}
	if err := w.Close(); err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

// sourceReader reads an upload body: exactly remaining bytes when that is
// known (>= 0), noting a body that ends early (short) or fails (err), and
// failing once ctx ends. A short body is an error, never an EOF, so the
// upload is never finalised with a prefix.
type sourceReader struct {
	ctx       context.Context
	r         io.Reader
	remaining int64 // < 0: unknown
	read      int64
	short     bool
	err       error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if s.remaining == 0 {
		return 0, io.EOF
	}
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	if s.remaining > 0 && int64(len(p)) > s.remaining {
		p = p[:s.remaining]
	}
	n, err := s.r.Read(p)
	s.read += int64(n)
	if s.remaining > 0 {
		s.remaining -= int64(n)
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

// Delete implements stores.Store: the object at key and every object
// under key/ (not, unlike upstream's prefix delete, "keyX" siblings).
// Deleting the root empties the prefix (or the bucket).
func (s *Store) Delete(ctx context.Context, key string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	names := make(chan string)
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	setErr := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel()
		}
		mu.Unlock()
	}
	for range deleteWorkers {
		wg.Go(func() {
			for n := range names {
				err := s.bucket.Object(n).Delete(ctx)
				if err != nil && !errors.Is(classify(err), stores.ErrNotFound) {
					setErr(fmt.Errorf("gcs delete gs://%s/%s: %w", s.cfg.Bucket, n, classify(err)))
				}
			}
		})
	}
	send := func(n string) bool {
		select {
		case names <- n:
			return true
		case <-ctx.Done():
			return false
		}
	}
	func() {
		defer close(names)
		if key != "" && !send(s.objectName(key)) {
			return
		}
		q := &storage.Query{Prefix: s.dirPrefix(key)}
		_ = q.SetAttrSelection([]string{"Name"})
		it := s.bucket.Objects(ctx, q)
		for {
			a, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return
			}
			if err != nil {
				setErr(s.fail("list for delete", key, err))
				return
			}
			if !send(a.Name) {
				return
			}
		}
	}()
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		// The caller's context ended (cancel above only follows an error).
		first = ctx.Err()
	}
	return first
}

// copyBufferSize is the chunk uploads are copied in: large enough that
// each write reaches the socket in few system calls.
const copyBufferSize = 256 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// body is a GCS object reader whose errors are classified and whose
// WriteTo copies in large chunks.
type body struct {
	r   *storage.Reader
	s   *Store
	key string
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = b.s.fail("read", b.key, err)
	}
	return n, err
}

func (b *body) Close() error { return b.r.Close() }

// WriteTo implements io.WriterTo with stores.CopyDownload: a socket read
// of the object's body returns about 240 KiB here, and each write to the
// client is a syscall, so it gathers up to 1 MiB per write.
func (b *body) WriteTo(w io.Writer) (int64, error) { return stores.CopyDownload(w, b) }

// writerOnly hides a writer's ReadFrom so io.CopyBuffer uses our buffer.
type writerOnly struct{ io.Writer }

// PutBuffer implements stores.PutBufferer: a streamed upload holds
// nothing; otherwise the Writer holds one resumable chunk (chunkFor: the
// configured chunk, or a smaller object whole).
func (s *Store) PutBuffer(size int64) int64 {
	if s.streams(size) {
		return 0
	}
	return int64(chunkFor(s.cfg.UploadChunkSize, size))
}
