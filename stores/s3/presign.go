package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// A separate presign endpoint (FERRY_S3_PRESIGN_ENDPOINT_URL)
//
// A presigned URL names the host it was signed for, and SigV4 signs that
// Host: the URL cannot be rewritten afterwards. When Ferry reaches S3 by a
// name its clients cannot resolve (docker compose: http://minio:9000), the
// URLs it hands out must be signed for the public name instead. So a second
// minio-go client, with the public endpoint and the same credentials,
// addressing style and region, signs them, while every request Ferry sends
// still goes through the main client to MLFLOW_S3_ENDPOINT_URL.
//
// That second client must never send anything: the public endpoint may
// not be reachable from Ferry at all. minio-go sends a request from a
// presign call in two cases, and both are closed here:
//
//   - the bucket's region: Presign asks the bucket's location (GET
//     ?location) unless the client has a region. The presign client is
//     always built with one: Config.Region, or else the region the main
//     client holds for the bucket (GetBucketLocation: one request, then
//     minio-go's cache), asked again at every presign because minio-go
//     may correct it later (see presigner).
//   - credentials that need fetching (IAM, web identity) are fetched with
//     the client's HTTP client. The presign client's credentials are the
//     main client's Credentials, always fetched as the main client
//     fetches them (viaClient; the provider chain newStore builds then
//     uses its own plain HTTP client, credsFetcher).
//
// Its transport (noRequests) refuses every request, so a path missed here
// (a future minio-go version, S3 Express sessions) fails loudly instead of
// sending anything to the public endpoint.

// errPresignSend is what noRequests answers.
var errPresignSend = errors.New("s3 store: bug: the presign client (FERRY_S3_PRESIGN_ENDPOINT_URL) tried to send a request; it only signs URLs")

// noRequests is the presign client's transport: it sends nothing.
type noRequests struct{}

// RoundTrip implements http.RoundTripper.
func (noRequests) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return nil, errPresignSend // net/http adds the method and URL
}

// viaClient is the presign client's credentials provider: the main
// client's Credentials, fetched when they must be with the main client's
// CredContext (whose HTTP client the provider chain of newStore replaces
// with its own: credsFetcher), never the presign client's. It never
// caches (IsExpired is always true), so the presign client always signs
// with the value the shared Credentials hold now, never one the main
// client has already replaced.
type viaClient struct {
	creds *credentials.Credentials
	main  *minio.Client
}

// RetrieveWithCredContext implements credentials.Provider.
func (p viaClient) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	mc := p.main.CredContext()
	if cc != nil {
		mc.Context = cc.Context
	}
	return p.creds.GetWithContext(mc)
}

// Retrieve implements credentials.Provider.
func (p viaClient) Retrieve() (credentials.Value, error) { return p.RetrieveWithCredContext(nil) }

// IsExpired implements credentials.Provider.
func (viaClient) IsExpired() bool { return true }

// presigner holds the presign client for the bucket's current region.
//
// Without a configured region the region is the one the main client
// holds for the bucket, and that can change: minio-go takes a refused
// ?location lookup (AccessDenied, AuthorizationHeaderMalformed,
// InvalidRegion without a region in the answer) as "us-east-1", and
// corrects its cache later when a request fails with a region error that
// names the real one. So every presign asks the main client for the
// region (a cache hit after the first lookup) and uses a presign client
// for exactly that region, made anew when it changed.
type presigner struct {
	newClient func(region string) (*minio.Client, error)
	mu        sync.Mutex
	region    string        // the region client signs for
	client    *minio.Client // nil until a region is known
}

// newPresigner checks cfg.PresignEndpoint and prepares the presign client
// (made now when cfg.Region is set, else on first use).
func newPresigner(cfg Config, lookup minio.BucketLookupType, creds *credentials.Credentials, main *minio.Client) (*presigner, error) {
	host, secure, err := parseEndpoint(cfg.PresignEndpoint, true)
	if err != nil {
		return nil, fmt.Errorf("s3 store: FERRY_S3_PRESIGN_ENDPOINT_URL=%q: %v", cfg.PresignEndpoint, err)
	}
	pcreds := credentials.New(viaClient{creds: creds, main: main})
	p := &presigner{newClient: func(region string) (*minio.Client, error) {
		c, err := minio.New(host, &minio.Options{
			Creds:        pcreds,
			Secure:       secure,
			Transport:    noRequests{},
			Region:       region,
			BucketLookup: lookup,
		})
		if err != nil {
			return nil, fmt.Errorf("s3 store: FERRY_S3_PRESIGN_ENDPOINT_URL=%q: %w", cfg.PresignEndpoint, err)
		}
		return c, nil
	}}
	// Made now even without a region: a host minio-go refuses is a
	// start-up error, not one of the first presign.
	c, err := p.newClient(cfg.Region)
	if err != nil {
		return nil, err
	}
	if cfg.Region != "" {
		p.region, p.client = cfg.Region, c
	}
	return p, nil
}

// forRegion returns the presign client for region, made when the last
// one was for another region (or there was none yet).
func (p *presigner) forRegion(region string) (*minio.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil && p.region == region {
		return p.client, nil
	}
	c, err := p.newClient(region) // no request: cheap
	if err != nil {
		return nil, err
	}
	p.region, p.client = region, c
	return c, nil
}

// presignClient is the client that signs presigned URLs: the main one, or
// with FERRY_S3_PRESIGN_ENDPOINT_URL the presign client for the region the
// main client holds for the bucket now (Config.Region, or looked up and
// cached by minio-go, which corrects it on a region error).
func (s *Store) presignClient(ctx context.Context) (*minio.Client, error) {
	p := s.presign
	if p == nil {
		return s.client, nil
	}
	region, err := s.client.GetBucketLocation(ctx, s.cfg.Bucket)
	if err != nil {
		return nil, err
	}
	if region == "" {
		return nil, errors.New("s3 store: the bucket's region is unknown; set AWS_REGION")
	}
	return p.forRegion(region)
}
