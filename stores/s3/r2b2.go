package s3

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/ferryml/ferry/stores"
)

// Cloudflare R2 (r2://bucket@ACCOUNT.r2.cloudflarestorage.com/path) and
// Backblaze B2 (b2://bucket@s3.REGION.backblazeb2.com/path) are S3 behind
// an endpoint named by the URI (spec stores.md §3, §3a). Upstream builds
// both on its "optimized" S3 repository, which offers neither presigned
// multipart uploads nor presigned URLs: the stores here hide those
// capabilities, so the proxy answers 501 and clients fall back to proxied
// transfers, as with upstream.

func init() {
	for _, scheme := range []string{"r2", "b2"} {
		stores.Register(scheme, func(ctx context.Context, u *url.URL) (stores.Store, error) {
			cfg, err := ConfigFromEndpointURI(u, os.Getenv)
			if err != nil {
				return nil, err
			}
			s, err := New(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return &EndpointStore{s: s, scheme: u.Scheme}, nil
		})
	}
}

// b2Host is a B2 S3 endpoint host; upstream takes the region from it and
// refuses any other host.
var b2Host = regexp.MustCompile(`^s3\.([a-z0-9-]+)\.backblazeb2\.com$`)

// ConfigFromEndpointURI builds the configuration for an r2:// or b2://
// URI: bucket from the user part, endpoint https://HOST from the host,
// the rest (credentials, timeouts, part sizes) from the S3 variables.
// R2 uses virtual-host addressing and looks the region up (or takes
// AWS_DEFAULT_REGION); B2 uses path-style addressing and the region in its
// host name.
func ConfigFromEndpointURI(u *url.URL, getenv func(string) string) (Config, error) {
	scheme := strings.ToLower(u.Scheme)
	want := map[string]string{"r2": "r2://bucket@ACCOUNT_ID.r2.cloudflarestorage.com/path", "b2": "b2://bucket@s3.REGION.backblazeb2.com/path"}[scheme]
	if want == "" {
		return Config{}, fmt.Errorf("%s store: not an r2:// or b2:// URI", scheme)
	}
	bucket := ""
	if u.User != nil {
		bucket = u.User.Username()
		if _, hasPass := u.User.Password(); hasPass {
			return Config{}, fmt.Errorf("%s store: the URI carries no credentials (want %s); use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", scheme, want)
		}
	}
	host := u.Hostname()
	if bucket == "" || host == "" || u.Port() != "" {
		return Config{}, fmt.Errorf("%s store: %q: want %s", scheme, u.Redacted(), want)
	}
	cfg, err := ConfigFromEnv(&url.URL{Scheme: "s3", Host: bucket, Path: u.Path}, getenv)
	if err != nil {
		return Config{}, fmt.Errorf("%s store: %w", scheme, err)
	}
	cfg.Endpoint = "https://" + host
	cfg.PresignEndpoint = ""
	switch scheme {
	case "r2":
		cfg.AddressingStyle = "virtual"
	case "b2":
		m := b2Host.FindStringSubmatch(host)
		if m == nil {
			return Config{}, fmt.Errorf("b2 store: cannot take the region from host %q: want s3.REGION.backblazeb2.com", host)
		}
		cfg.AddressingStyle, cfg.Region = "path", m[1]
	}
	if _, _, err := parseEndpoint(cfg.Endpoint, true); err != nil {
		return Config{}, fmt.Errorf("%s store: endpoint %q: %v", scheme, cfg.Endpoint, err)
	}
	return cfg, nil
}

// EndpointStore is the store behind r2:// and b2://: the S3 driver
// without its presign and multipart capabilities (see above).
type EndpointStore struct {
	s      *Store
	scheme string
}

// Stat implements stores.Store.
func (e *EndpointStore) Stat(ctx context.Context, key string) (stores.Entry, error) {
	return e.s.Stat(ctx, key)
}

// List implements stores.Store.
func (e *EndpointStore) List(ctx context.Context, dir string, page stores.ListPage) (stores.Listing, error) {
	return e.s.List(ctx, dir, page)
}

// Open implements stores.Store.
func (e *EndpointStore) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, stores.Entry, error) {
	return e.s.Open(ctx, key, offset, length)
}

// Put implements stores.Store.
func (e *EndpointStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return e.s.Put(ctx, key, r, size)
}

// Delete implements stores.Store.
func (e *EndpointStore) Delete(ctx context.Context, key string) error { return e.s.Delete(ctx, key) }

// PutBuffer implements stores.PutBufferer: the S3 driver's part buffers.
func (e *EndpointStore) PutBuffer(size int64) int64 { return e.s.PutBuffer(size) }

// DriverName implements stores.Driver: "r2" or "b2".
func (e *EndpointStore) DriverName() string { return e.scheme }

// SetLogger sets the logger (stores.Opener calls it).
func (e *EndpointStore) SetLogger(l *slog.Logger) { e.s.SetLogger(l) }

// Close stops the driver's background work.
func (e *EndpointStore) Close() error { return e.s.Close() }
