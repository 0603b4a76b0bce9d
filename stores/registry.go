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

// Opener opens stores by URI, instrumented, and keeps one per URI: a
// cloud client is expensive to build and safe to share. The tracking API
// uses it for experiments whose artifact root is not the proxy's
// destination.
type Opener struct {
	metrics *Metrics
	log     *slog.Logger
	mu      sync.Mutex
	open    map[string]*Instrumented
}

// NewOpener returns an Opener whose stores report to m and log to log.
func NewOpener(m *Metrics, log *slog.Logger) *Opener {
	return &Opener{metrics: m, log: log, open: map[string]*Instrumented{}}
}

// Open returns the instrumented store for uri, building it on first use.
// Failures are not cached, so a backend that was down is retried.
func (o *Opener) Open(ctx context.Context, uri string) (*Instrumented, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.open[uri]; ok {
		return s, nil
	}
	s, err := Open(ctx, uri)
	if err != nil {
		return nil, err
	}
	name := "store"
	if d, ok := s.(Driver); ok {
		name = d.DriverName()
	}
	if l, ok := s.(interface{ SetLogger(*slog.Logger) }); ok {
		l.SetLogger(o.log.With("store", name))
	}
	in := Instrument(s, name, o.metrics, o.log)
	o.open[uri] = in
	return in, nil
}

// Close closes every store opened so far whose driver is an io.Closer
// (the S3 driver stops its background retries of failed aborts). Call it
// once the server has stopped.
func (o *Opener) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	for uri, s := range o.open {
		if c, ok := s.Unwrap().(io.Closer); ok {
			errs = append(errs, c.Close())
		}
		delete(o.open, uri)
	}
	return errors.Join(errs...)
}
