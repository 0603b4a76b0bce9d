package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Constructor builds a store for a parsed destination URI. Plain local
// paths arrive as a "file" URI whose Path holds the path as given (relative
// paths are resolved by the driver against the working directory).
type Constructor func(ctx context.Context, u *url.URL) (Store, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Constructor{}
)

// Register makes a driver available for a URI scheme (lower case). Drivers
// call it from init; registering a scheme twice panics, since that is a
// wiring bug.
func Register(scheme string, ctor Constructor) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[scheme]; dup {
		panic("stores: scheme registered twice: " + scheme)
	}
	registry[scheme] = ctor
}

// Schemes lists the registered schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(registry))
	for s := range registry {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Open builds the store for a destination URI such as "./mlartifacts",
// "/srv/artifacts", "file:///srv/artifacts" or "s3://bucket/prefix".
func Open(ctx context.Context, uri string) (Store, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	registryMu.RLock()
	ctor, ok := registry[u.Scheme]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("could not find a registered artifact repository for %q; registered schemes are %v: %w",
			RedactURI(uri), Schemes(), ErrUnsupported)
	}
	return ctor(ctx, u)
}

// ParseURI parses a destination URI. A string without a scheme (or with a
// one-letter Windows drive "scheme") is a local path and comes back as a
// "file" URL with the path verbatim in Path. "file://host/..." is refused
// unless host is empty or "localhost", as upstream refuses remote file URIs.
func ParseURI(uri string) (*url.URL, error) {
	if uri == "" {
		return nil, fmt.Errorf("empty artifact URI: %w", ErrInvalidKey)
	}
	scheme, _, hasScheme := strings.Cut(uri, ":")
	if !hasScheme || len(scheme) < 2 || strings.ContainsAny(scheme, "/\\") {
		return &url.URL{Scheme: "file", Path: uri}, nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		// Not err: a *url.Error repeats the URI, password included.
		return nil, fmt.Errorf("invalid artifact URI %q: %w", RedactURI(uri), ErrInvalidKey)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("%q is not a valid remote uri (file URIs must not name a host): %w", RedactURI(uri), ErrInvalidKey)
		}
		if u.Fragment != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("file URI %q must not carry a query or fragment: %w", RedactURI(uri), ErrInvalidKey)
		}
		u.Host = ""
		if u.Path == "" {
			u.Path = u.Opaque
			u.Opaque = ""
		}
	}
	return u, nil
}

// Scoper is implemented by drivers whose stores can serve a directory
// below their root while sharing their clients and connections (an S3
// store for s3://bucket serves s3://bucket/a/b as Scope("a/b")). The
// scoped store is cheap to make and owns nothing: closing it, if it is an
// io.Closer at all, must not close the parent. dir is the URI path without
// its leading and trailing slashes, as the driver would take it from a
// full URI.
type Scoper interface {
	Scope(dir string) (Store, error)
}

// maxSharedStores bounds how many per-authority stores (one S3 client per
// bucket, ...) an Opener keeps for Acquire; the least recently used one
// beyond it is closed once no request uses it.
const maxSharedStores = 64

// Opener opens stores by URI, instrumented, in two ways:
//
//   - Open keeps one store per URI until Close: for the few long-lived
//     stores the server is configured with (the artifacts destination).
//   - Acquire gives a store for one request, with a release function: for
//     the artifact roots of runs and models, whose number has no bound.
//     A URI with an authority (s3://bucket/...) is served by a Scoper
//     view of one shared store per authority, kept in a bounded LRU; any
//     other URI (local paths) by a store opened for the request and closed
//     on release. So no per-run store outlives its request, and listing
//     10,000 runs holds no more descriptors or clients than listing one.
type Opener struct {
	metrics *Metrics
	log     *slog.Logger
	mu      sync.Mutex
	open    map[string]*Instrumented
	shared  *simplelru.LRU[string, *sharedStore]
	// noScope holds the schemes whose driver turned out not to be a
	// Scoper: Acquire opens their stores per request.
	noScope map[string]bool
	closing sync.WaitGroup // closes of evicted shared stores in progress
	closed  bool
}

// sharedStore is one per-authority store and how many requests use it.
type sharedStore struct {
	store   Store
	name    string
	refs    int  // under Opener.mu
	evicted bool // under Opener.mu: out of the LRU; close at refs 0
	closed  bool // under Opener.mu: closeShared ran
}

// NewOpener returns an Opener whose stores report to m and log to log.
func NewOpener(m *Metrics, log *slog.Logger) *Opener {
	o := &Opener{metrics: m, log: log, open: map[string]*Instrumented{}, noScope: map[string]bool{}}
	// The callback runs under o.mu (every LRU call does).
	o.shared, _ = simplelru.NewLRU(maxSharedStores, func(_ string, e *sharedStore) {
		e.evicted = true
		if e.refs == 0 {
			o.closeShared(e)
		}
	})
	return o
}

// Open returns the instrumented store for uri, building it on first use
// and keeping it until Close. Failures are not cached, so a backend that
// was down is retried.
func (o *Opener) Open(ctx context.Context, uri string) (*Instrumented, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, errOpenerClosed
	}
	if s, ok := o.open[uri]; ok {
		return s, nil
	}
	s, name, err := o.build(ctx, uri)
	if err != nil {
		return nil, err
	}
	in := Instrument(s, name, o.metrics, o.log)
	o.open[uri] = in
	return in, nil
}

var errOpenerClosed = errors.New("stores: opener closed")

// Acquire returns the instrumented store for uri for the duration of one
// request. Call release (exactly once; later calls do nothing) when done
// with the store and everything read from it.
func (o *Opener) Acquire(ctx context.Context, uri string) (s *Instrumented, release func(), err error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, nil, err
	}
	if u.Host != "" {
		base := (&url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, RawQuery: u.RawQuery}).String()
		e, err := o.acquireShared(ctx, u.Scheme, base)
		if err != nil {
			return nil, nil, err
		}
		if e != nil {
			var once sync.Once
			release := func() { once.Do(func() { o.releaseShared(e) }) }
			scoped, err := e.store.(Scoper).Scope(strings.Trim(u.Path, "/"))
			if err != nil {
				release()
				return nil, nil, err
			}
			return Instrument(scoped, e.name, o.metrics, o.log), release, nil
		}
	}
	st, name, err := o.build(ctx, uri)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if c, ok := st.(io.Closer); ok {
				if err := c.Close(); err != nil {
					o.log.Warn("closing a per-request store", "store", name, "err", err)
				}
			}
		})
	}
	return Instrument(st, name, o.metrics, o.log), release, nil
}

// acquireShared returns the shared store for the authority base, counted
// as in use, or nil when the scheme's driver is not a Scoper.
func (o *Opener) acquireShared(ctx context.Context, scheme, base string) (*sharedStore, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, errOpenerClosed
	}
	if o.noScope[scheme] {
		return nil, nil
	}
	e, ok := o.shared.Get(base)
	if !ok {
		// Drivers with an authority build their clients without a request
		// (stores/s3: New makes none), so this holds the lock briefly.
		s, name, err := o.build(ctx, base)
		if err != nil {
			return nil, err
		}
		if _, ok := s.(Scoper); !ok {
			o.noScope[scheme] = true
			o.closeLater(s)
			return nil, nil
		}
		e = &sharedStore{store: s, name: name}
		o.shared.Add(base, e)
	}
	e.refs++
	return e, nil
}

func (o *Opener) releaseShared(e *sharedStore) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e.refs--; e.refs == 0 && e.evicted {
		o.closeShared(e)
	}
}

// closeShared closes a shared store once (o.mu held).
func (o *Opener) closeShared(e *sharedStore) {
	if !e.closed {
		e.closed = true
		o.closeLater(e.store)
	}
}

// closeLater closes s in the background (an S3 store's Close may make a
// last attempt at aborts, which must not hold o.mu). Close waits for it.
func (o *Opener) closeLater(s Store) {
	c, ok := s.(io.Closer)
	if !ok {
		return
	}
	o.closing.Add(1)
	go func() {
		defer o.closing.Done()
		if err := c.Close(); err != nil {
			o.log.Warn("closing an unused store", "err", err)
		}
	}()
}

// build opens the driver for uri and names it, with its logger set.
func (o *Opener) build(ctx context.Context, uri string) (Store, string, error) {
	s, err := Open(ctx, uri)
	if err != nil {
		return nil, "", err
	}
	name := "store"
	if d, ok := s.(Driver); ok {
		name = d.DriverName()
	}
	if l, ok := s.(interface{ SetLogger(*slog.Logger) }); ok {
		l.SetLogger(o.log.With("store", name))
	}
	return s, name, nil
}

// Close closes every store opened with Open, and every shared store of
// Acquire, whose driver is an io.Closer (the S3 driver stops its
// background retries of failed aborts). Call it once the server has
// stopped: a store still acquired is closed all the same.
func (o *Opener) Close() error {
	o.mu.Lock()
	var errs []error
	for uri, s := range o.open {
		if c, ok := s.Unwrap().(io.Closer); ok {
			errs = append(errs, c.Close())
		}
		delete(o.open, uri)
	}
	busy := o.shared.Values()
	o.shared.Purge() // closes the unused ones (the eviction callback)
	for _, e := range busy {
		o.closeShared(e) // and those still acquired; a no-op for the rest
	}
	o.closed = true
	o.mu.Unlock()
	o.closing.Wait()
	return errors.Join(errs...)
}
