// Package azure is the Azure Blob Storage store driver for
// wasbs://container@account.blob.core.windows.net/prefix destinations,
// and for ADLS Gen2 abfss://filesystem@account.dfs.core.windows.net/path
// ones through the same account's blob endpoint, on the azblob SDK.
//
// Configuration is upstream MLflow's environment (see ConfigFromEnv).
// Uploads stream: a body that fits one block goes up as one Put Blob, a
// longer one as blocks of DefaultBlockSize (or MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE) staged from
// off-heap buffers, blocksInFlight at a time, and committed as a block
// list only once the whole body has arrived; a body that ends early or
// fails commits nothing (Azure drops uncommitted blocks itself).
// Downloads stream with ranges; listing and deleting paginate.
//
// Where the credential can sign (an account key, or a token credential
// through a user-delegation key) the store also presigns downloads as
// read SAS URLs and multipart uploads as block-SAS PUT URLs (presign.go);
// New then returns a *SigningStore, which has those capabilities, else a
// *Store, which has none, so the proxy answers 501 and MLflow clients
// fall back to proxied transfers.
package azure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/ferryml/ferry/stores"
)

func init() {
	for _, scheme := range []string{"wasbs", "abfss"} {
		stores.Register(scheme, func(ctx context.Context, u *url.URL) (stores.Store, error) {
			cfg, err := ConfigFromEnv(u, os.Getenv)
			if err != nil {
				return nil, err
			}
			return New(ctx, cfg)
		})
	}
}

// defaultPageSize is the listing page size when the caller sets none.
const defaultPageSize = 1000

// blocksInFlight bounds the block buffers of one Put: one block is read
// from the client while up to two earlier ones are staged (as the S3
// driver does with its parts), at three blocks of memory.
const blocksInFlight = 3

// deleteWorkers is how many blobs a Delete removes at once.
const deleteWorkers = 8

// folderMetadata is the metadata key ADLS Gen2 (hierarchical namespace)
// sets on the blob that stands for a directory.
const folderMetadata = "hdi_isfolder"

// Store is an Azure Blob container (and name prefix) used as an artifact
// store. It has no presign or multipart capability; SigningStore adds
// them.
type Store struct {
	cfg  Config
	cont *container.Client
	// svc is the service client of a token credential (user-delegation
	// keys); nil otherwise.
	svc *service.Client
	// markers speeds up listing pages after the first (List).
	markers markerMemo
	// log receives the sweep's reports (nil: slog.Default).
	log atomic.Pointer[slog.Logger]
}

// SigningStore is a Store whose credential can sign SAS URLs: it
// implements stores.Presigner and stores.Multiparter (presign.go).
type SigningStore struct {
	*Store
	sign signer
}

var (
	_ stores.Store       = (*Store)(nil)
	_ stores.Driver      = (*Store)(nil)
	_ stores.Presigner   = (*SigningStore)(nil)
	_ stores.Multiparter = (*SigningStore)(nil)
)

// New builds a store from cfg: a *SigningStore when the credential can
// sign SAS URLs (account key, connection string with a key, token
// credential on wasbs), else a *Store. It makes no request.
func New(_ context.Context, cfg Config) (stores.Store, error) {
	return newStore(cfg, nil)
}

// newStore is New with an optional wrapper around the HTTP transport
// (tests use it to watch or break requests).
func newStore(cfg Config, wrap func(http.RoundTripper) http.RoundTripper) (stores.Store, error) {
	if cfg.Container == "" || cfg.Endpoint == "" {
		return nil, errors.New("azure store: no container or endpoint")
	}
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.PartURLTTL <= 0 {
		cfg.PartURLTTL = DefaultPartURLTTL
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 32
	switch {
	case cfg.InsecureTLS:
		tr.TLSClientConfig.InsecureSkipVerify = true
	case cfg.CABundle != "":
		pem, err := os.ReadFile(cfg.CABundle)
		if err != nil {
			return nil, fmt.Errorf("azure store: MLFLOW_TRACKING_SERVER_CERT_PATH: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("azure store: MLFLOW_TRACKING_SERVER_CERT_PATH %s holds no PEM certificate", cfg.CABundle)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	if cfg.dial != nil {
		tr.DialContext = cfg.dial
	}
	if cfg.Timeout > 0 {
		tr.ResponseHeaderTimeout = cfg.Timeout
	}
	var rt http.RoundTripper = tr
	if wrap != nil {
		rt = wrap(rt)
	}
	hc := &http.Client{Transport: rt}
	copts := azcore.ClientOptions{
		Transport: hc,
		// A few quick retries; a store that is down should give the
		// client a prompt 503, not minutes of back-off.
		Retry: policy.RetryOptions{MaxRetries: 3, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 2 * time.Second},
		// Ferry reports its own telemetry.
		Telemetry: policy.TelemetryOptions{Disabled: true},
	}
	opts := &container.ClientOptions{ClientOptions: copts}
	contURL := cfg.Endpoint + "/" + url.PathEscape(cfg.Container)

	s := &Store{cfg: cfg}
	var sign signer
	var err error
	switch cfg.Cred {
	case CredConnectionString:
		s.cont, err = container.NewClientFromConnectionString(cfg.ConnectionString, cfg.Container, opts)
		if err != nil {
			// The SDK's message does not echo the secret; keep it short anyway.
			return nil, errors.New("azure store: AZURE_STORAGE_CONNECTION_STRING is not a valid connection string")
		}
		sign = keySigner{}
	case CredAccountKey:
		cred, cerr := container.NewSharedKeyCredential(cfg.Account, cfg.AccountKey)
		if cerr != nil {
			return nil, errors.New("azure store: AZURE_STORAGE_ACCESS_KEY is not a base64 account key")
		}
		s.cont, err = container.NewClientWithSharedKeyCredential(contURL, cred, opts)
		sign = keySigner{}
	case CredSAS:
		s.cont, err = container.NewClientWithNoCredential(contURL+"?"+cfg.SASToken, opts)
	default:
		dopts := &azidentity.DefaultAzureCredentialOptions{ClientOptions: copts}
		cred, cerr := azidentity.NewDefaultAzureCredential(dopts)
		if cerr != nil {
			return nil, fmt.Errorf("azure store: DefaultAzureCredential: %w", cerr)
		}
		tc := tokenCredential{cred}
		if s.cont, err = container.NewClient(contURL, tc, opts); err != nil {
			break
		}
		if s.svc, err = service.NewClient(cfg.Endpoint+"/", tc, &service.ClientOptions{ClientOptions: copts}); err != nil {
			break
		}
		sign = &delegationSigner{svc: s.svc}
	}
	if err != nil {
		return nil, fmt.Errorf("azure store: %w", err)
	}
	if sign == nil || cfg.Scheme == "abfss" {
		// abfss has no presigned transfers upstream (501), nor here.
		return s, nil
	}
	return &SigningStore{Store: s, sign: sign}, nil
}

// tokenCredential marks every failure to get a token (errToken) so that
// classify reports it as a permission problem, not as an outage.
type tokenCredential struct{ c azcore.TokenCredential }

// GetToken implements azcore.TokenCredential.
func (t tokenCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := t.c.GetToken(ctx, o)
	if err != nil && ctx.Err() == nil {
		return tok, fmt.Errorf("%w: %w", errToken, err)
	}
	return tok, err
}

// DriverName implements stores.Driver: "azure" for wasbs, "adls" for
// abfss.
func (s *Store) DriverName() string {
	if s.cfg.Scheme == "abfss" {
		return "adls"
	}
	return "azure"
}

// Container is the container behind the store.
func (s *Store) Container() string { return s.cfg.Container }

// Prefix is the name prefix behind the store ("" for the whole container).
func (s *Store) Prefix() string { return s.cfg.Prefix }

// blobName is the blob name of a store key.
func (s *Store) blobName(key string) string { return stores.JoinKey(s.cfg.Prefix, key) }

// dirPrefix is the name prefix under which dir's children live.
func (s *Store) dirPrefix(dir string) string {
	if k := s.blobName(dir); k != "" {
		return k + "/"
	}
	return ""
}

func (s *Store) fail(op, key string, err error) error {
	return fmt.Errorf("azure %s %s://%s@%s/%s: %w", op, s.cfg.Scheme, s.cfg.Container, s.cfg.Host, s.blobName(key), classify(err))
}

// isFolder reports whether blob metadata marks an ADLS directory.
func isFolder(md map[string]*string) bool {
	for k, v := range md {
		if strings.EqualFold(k, folderMetadata) && v != nil && strings.EqualFold(*v, "true") {
			return true
		}
	}
	return false
}

// Stat implements stores.Store. A key with blobs under it (or an ADLS
// directory) is a directory; the root always is one.
func (s *Store) Stat(ctx context.Context, key string) (stores.Entry, error) {
	if key == "" {
		return stores.Entry{IsDir: true}, nil
	}
	p, err := s.cont.NewBlobClient(s.blobName(key)).GetProperties(ctx, nil)
	if err == nil {
		if isFolder(p.Metadata) {
			return stores.Entry{Key: key, IsDir: true}, nil
		}
		e := stores.Entry{Key: key, Size: deref(p.ContentLength)}
		if p.LastModified != nil {
			e.ModTime = *p.LastModified
		}
		return e, nil
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

// hasChildren reports whether any blob lives under key/.
func (s *Store) hasChildren(ctx context.Context, key string) (bool, error) {
	prefix := s.dirPrefix(key)
	pager := s.cont.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix, MaxResults: ptr(int32(1))})
	if !pager.More() {
		return false, nil
	}
	page, err := pager.NextPage(ctx)
	if err != nil {
		return false, s.fail("list", key, err)
	}
	return len(page.Segment.BlobItems) > 0, nil
}

// List implements stores.Store.
//
// Azure lists in byte order of the full names with directories as
// "name/", while the store orders by key, where a directory "a" sorts
// before "a.txt" although "a/" sorts after it. So a page reads on past its
// last entry just far enough to be sure that no directory whose key
// belongs in the page is still to come (stores.ListBound), as the S3 driver does.
//
// Every wanted entry of a page after key K has an Azure name at or after
// prefix+K. A later page therefore starts at the continuation marker of
// the batch in which the previous page found K (markers, remembered per
// page), or else at StartFrom = prefix+K; entries up to K are skipped
// here, so a service that ignores StartFrom (Azurite) gives the same
// pages, only slower.
func (s *Store) List(ctx context.Context, dir string, page stores.ListPage) (stores.Listing, error) {
	limit := page.Limit
	if limit <= 0 || limit > defaultPageSize {
		limit = defaultPageSize
	}
	prefix := s.dirPrefix(dir)
	opts := &container.ListBlobsHierarchyOptions{
		Include:    container.ListBlobsInclude{Metadata: s.cfg.Scheme == "abfss"},
		MaxResults: ptr(int32(min(2*limit+16, 5000))),
	}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	if page.After != "" {
		if m, ok := s.markers.get(dir, page.After); ok {
			opts.Marker = &m
		} else {
			opts.StartFrom = ptr(s.blobName(page.After))
		}
	}
	type item struct {
		name  string // the Azure name: blob name, or prefix ending in "/"
		entry stores.Entry
	}
	type batch struct{ marker, first string }
	var (
		got     []stores.Entry
		batches []batch
		seen    = map[string]bool{}
		bound   string
		marker  = deref(opts.Marker)
	)
	pager := s.cont.NewListBlobsHierarchyPager("/", opts)
	for done := false; !done && pager.More(); {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return stores.Listing{}, s.fail("list", dir, err)
		}
		items := make([]item, 0, len(resp.Segment.BlobItems)+len(resp.Segment.BlobPrefixes))
		for _, b := range resp.Segment.BlobItems {
			if b.Name == nil {
				continue
			}
			if isFolder(b.Metadata) {
				items = append(items, item{*b.Name + "/", stores.Entry{IsDir: true}})
				continue
			}
			e := stores.Entry{}
			if b.Properties != nil {
				e.Size = deref(b.Properties.ContentLength)
				if b.Properties.LastModified != nil {
					e.ModTime = *b.Properties.LastModified
				}
			}
			items = append(items, item{*b.Name, e})
		}
		for _, p := range resp.Segment.BlobPrefixes {
			if p.Name != nil {
				items = append(items, item{*p.Name, stores.Entry{IsDir: true}})
			}
		}
		sort.Slice(items, func(i, j int) bool { return items[i].name < items[j].name })
		if len(items) > 0 {
			batches = append(batches, batch{marker, items[0].name})
		}
		marker = deref(resp.NextMarker)
		for _, it := range items {
			if bound != "" && it.name > bound {
				done = true
				break
			}
			name, _ := strings.CutSuffix(strings.TrimPrefix(it.name, prefix), "/")
			if name == "" || name == "." || name == ".." || strings.Contains(name, "/") || !strings.HasPrefix(it.name, prefix) {
				continue // a "dir/" marker blob, or a name no clean key can have
			}
			e := it.entry
			e.Key = stores.JoinKey(dir, name)
			if (page.After != "" && e.Key <= page.After) || seen[e.Key] {
				continue // an ADLS directory comes as a prefix and a folder blob
			}
			seen[e.Key] = true
			got = append(got, e)
			if len(got) > limit {
				sort.Slice(got, func(i, j int) bool { return got[i].Key < got[j].Key })
				got = got[:limit+1]
				bound = stores.ListBound(s.blobName(got[limit].Key), prefix)
			}
		}
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Key < got[j].Key })
	out := stores.Listing{Entries: got}
	if len(got) > limit {
		out.Entries = got[:limit]
		out.NextAfter = got[limit-1].Key
		// The last batch that starts at or before the next page's first
		// possible name; "" (from the start) when none was seen.
		from := s.blobName(out.NextAfter)
		for i := len(batches) - 1; i >= 0; i-- {
			if batches[i].first <= from {
				if batches[i].marker != "" {
					s.markers.put(dir, out.NextAfter, batches[i].marker)
				}
				break
			}
		}
	}
	return out, nil
}

// markerMemo remembers, for the last pages handed out, the continuation
// marker from which the next page can be listed (see List). It is
// bounded: when full it forgets everything and starts again, which only
// costs later pages a longer listing.
type markerMemo struct {
	mu sync.Mutex
	m  map[string]string
}

// maxMarkers bounds markerMemo.
const maxMarkers = 4096

func (mm *markerMemo) get(dir, after string) (string, bool) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	v, ok := mm.m[dir+"\x00"+after]
	return v, ok
}

func (mm *markerMemo) put(dir, after, marker string) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if mm.m == nil || len(mm.m) >= maxMarkers {
		mm.m = map[string]string{}
	}
	mm.m[dir+"\x00"+after] = marker
}

// Open implements stores.Store.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, stores.Entry, error) {
	if rc, e, done, err := stores.OpenWithoutRead(ctx, s.Stat, key, offset, length); done {
		return rc, e, err
	}
	rng := blob.HTTPRange{Offset: offset}
	if length > 0 {
		rng.Count = length
	}
	rc, e, err := s.get(ctx, key, rng)
	if err != nil && offset == 0 && rng.Count > 0 && errors.Is(err, stores.ErrInvalidRange) {
		// "bytes=0-n" of an empty blob: Azure refuses, the store
		// contract gives the (empty) object.
		rc, e, err = s.get(ctx, key, blob.HTTPRange{})
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

func (s *Store) get(ctx context.Context, key string, rng blob.HTTPRange) (io.ReadCloser, stores.Entry, error) {
	resp, err := s.cont.NewBlobClient(s.blobName(key)).DownloadStream(ctx, &blob.DownloadStreamOptions{Range: rng})
	if err != nil {
		return nil, stores.Entry{}, s.fail("get", key, err)
	}
	if isFolder(resp.Metadata) {
		resp.Body.Close()
		return nil, stores.Entry{Key: key, IsDir: true}, fmt.Errorf("open %s: %w", key, stores.ErrIsDir)
	}
	e := stores.Entry{Key: key, Size: deref(resp.ContentLength)}
	if resp.LastModified != nil {
		e.ModTime = *resp.LastModified
	}
	ranged := rng.Offset > 0 || rng.Count > 0
	if cr := deref(resp.ContentRange); cr != "" {
		// "bytes a-b/total"
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			var total int64
			if _, err := fmt.Sscan(cr[i+1:], &total); err == nil {
				e.Size = total
			}
		}
	} else if ranged && rng.Offset > 0 {
		// A range was asked and none came back: the offset cannot be
		// served.
		resp.Body.Close()
		return nil, e, fmt.Errorf("open %s at %d of %d: %w", key, rng.Offset, e.Size, stores.ErrInvalidRange)
	}
	if rng.Offset > 0 && rng.Offset >= e.Size {
		// An offset at the end: Azurite answers 206 with no bytes, Azure
		// 416; the store contract says invalid range either way.
		resp.Body.Close()
		return nil, e, fmt.Errorf("open %s at %d of %d: %w", key, rng.Offset, e.Size, stores.ErrInvalidRange)
	}
	// A connection that drops mid-body is resumed from where it broke,
	// for the same version of the blob (the SDK pins the ETag).
	rr := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3})
	return &body{rc: rr}, e, nil
}

// Put implements stores.Store. Azure commits a blob only whole (one Put
// Blob, or a block list committed after every block is staged), so a
// failed or short upload leaves nothing behind.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if key == "" {
		return fmt.Errorf("put: %w: an object needs a name", stores.ErrInvalidKey)
	}
	sr := &sizedReader{ctx: ctx, r: r, remaining: size, known: size >= 0}
	bs := blockSizeFor(s.cfg.BlockSize, size)
	_, err := s.cont.NewBlockBlobClient(s.blobName(key)).UploadStream(ctx, sr, &blockblob.UploadStreamOptions{
		BlockSize:   bs,
		Concurrency: blocksInFlight,
	})
	switch {
	case sr.short:
		return fmt.Errorf("put %s: got %d of %d bytes: %w", key, size-sr.remaining, size, stores.ErrIncomplete)
	case sr.err != nil:
		return fmt.Errorf("put %s: reading the upload: %w", key, sr.err)
	case err != nil:
		return s.fail("put", key, err)
	}
	return nil
}

// Delete implements stores.Store: the blob at key and every blob under
// key/ (not, unlike upstream's prefix delete, "keyX" siblings), ADLS
// directories last and deepest first (a directory must be empty to go).
// Deleting the root empties the prefix (or the container). Deleting a
// missing key succeeds (upstream's Azure repository fails there; every
// other Ferry store succeeds).
func (s *Store) Delete(ctx context.Context, key string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	names := make(chan string)
	var (
		mu      sync.Mutex
		first   error
		folders []string
		wg      sync.WaitGroup
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range names {
				if err := s.deleteBlob(ctx, n); err != nil {
					setErr(err)
				}
			}
		}()
	}
	prefix := s.dirPrefix(key)
	opts := &container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{Metadata: s.cfg.Scheme == "abfss"}, MaxResults: ptr(int32(5000))}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	pager := s.cont.NewListBlobsFlatPager(opts)
list:
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			setErr(s.fail("list for delete", key, err)) // kept only if no blob failed first
			break
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil {
				continue
			}
			if isFolder(b.Metadata) {
				folders = append(folders, *b.Name)
				continue
			}
			select {
			case names <- *b.Name:
			case <-ctx.Done():
				break list
			}
		}
	}
	close(names)
	wg.Wait()
	if first != nil {
		return first
	}
	sort.Slice(folders, func(i, j int) bool {
		return strings.Count(folders[i], "/") > strings.Count(folders[j], "/")
	})
	if key != "" {
		folders = append(folders, s.blobName(key))
	}
	for _, n := range folders {
		if err := s.deleteBlob(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// deleteBlob deletes one blob (with its snapshots); a missing one is
// fine.
func (s *Store) deleteBlob(ctx context.Context, name string) error {
	var o *blob.DeleteOptions
	if s.cfg.Scheme != "abfss" {
		o = &blob.DeleteOptions{DeleteSnapshots: ptr(blob.DeleteSnapshotsOptionTypeInclude)}
	}
	_, err := s.cont.NewBlobClient(name).Delete(ctx, o)
	if err == nil {
		return nil
	}
	if err = classify(err); errors.Is(err, stores.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("azure delete %s://%s@%s/%s: %w", s.cfg.Scheme, s.cfg.Container, s.cfg.Host, name, err)
}

// readPiece caps one read from the client, so that a Put whose context
// ends stops within one piece rather than after filling a whole block.
const readPiece = 256 << 10

// sizedReader delivers exactly remaining bytes of r when the size is
// known (else all of r) and notes a body that ends early (short) or fails
// (err), so the upload fails rather than committing a prefix.
type sizedReader struct {
	ctx       context.Context
	r         io.Reader
	remaining int64
	known     bool
	short     bool
	err       error
}

func (s *sizedReader) Read(p []byte) (int, error) {
	if s.known && s.remaining <= 0 {
		return 0, io.EOF
	}
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	if s.known && int64(len(p)) > s.remaining {
		p = p[:s.remaining]
	}
	if len(p) > readPiece {
		p = p[:readPiece]
	}
	n, err := s.r.Read(p)
	s.remaining -= int64(n)
	switch {
	case err == io.EOF && s.known && s.remaining > 0:
		s.short = true
		return n, fmt.Errorf("upload body ended %d bytes early: %w", s.remaining, stores.ErrIncomplete)
	case err == io.EOF:
		return n, io.EOF
	case err != nil:
		s.err = err
	}
	return n, err
}

// body is a download whose WriteTo copies in large chunks (the HTTP
// layer's default copy would use its own small buffer), and whose read
// errors are classified (a store that dies mid-body is unavailable).
type body struct{ rc io.ReadCloser }

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		err = classify(err)
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }

// WriteTo implements io.WriterTo with stores.CopyDownload: a read of the
// response body returns one socket read, and each write to the client is
// a syscall, so it gathers up to 1 MiB per write.
func (b *body) WriteTo(w io.Writer) (int64, error) { return stores.CopyDownload(w, b) }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

// dialer is the type of Config.dial (tests point every host at a local
// emulator with it).
type dialer = func(ctx context.Context, network, addr string) (net.Conn, error)

// PutBuffer implements stores.PutBufferer: UploadStream fills blocks of
// blockSizeFor bytes, at most blocksInFlight at once, allocating them as
// the body needs them. A body smaller than a block touches only its own
// pages of the one it gets (the buffers are mmapped), so it counts its
// size.
func (s *Store) PutBuffer(size int64) int64 {
	bs := blockSizeFor(s.cfg.BlockSize, size)
	if size >= 0 && size < bs {
		return size
	}
	n := int64(blocksInFlight)
	if size >= 0 {
		n = min(n, (size+bs-1)/bs)
	}
	return n * bs
}
