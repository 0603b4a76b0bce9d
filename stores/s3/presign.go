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
//     client resolves (GetBucketLocation, one request per store, cached by
//     minio-go), so it is created on first use then.
//   - credentials that need fetching (IAM, web identity) are fetched with
//     the client's HTTP client. The presign client's credentials are the
//     main client's Credentials, always fetched with the main client's
//     HTTP client (viaClient).
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
// HTTP client. It never caches (IsExpired is always true), so the presign
// client always signs with the value the shared Credentials hold now,
// never one the main client has already replaced.
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

// presigner holds the presign client, made once the region is known.
type presigner struct {
	newClient func(region string) (*minio.Client, error)
	mu        sync.Mutex
	client    *minio.Client // nil until the region is known
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
		p.client = c
	}
	return p, nil
}

// presignClient is the client that signs presigned URLs: the main one, or
// with FERRY_S3_PRESIGN_ENDPOINT_URL the presign client, made on first use
// with the bucket's region when none is configured (the main client looks
// it up).
func (s *Store) presignClient(ctx context.Context) (*minio.Client, error) {
	p := s.presign
	if p == nil {
		return s.client, nil
	}
	p.mu.Lock()
	c := p.client
	p.mu.Unlock()
	if c != nil {
		return c, nil
	}
	region, err := s.client.GetBucketLocation(ctx, s.cfg.Bucket)
	if err != nil {
		return nil, err
	}
	if region == "" {
		return nil, errors.New("s3 store: the bucket's region is unknown; set AWS_REGION")
	}
	if c, err = p.newClient(region); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		p.client = c
	}
	return p.client, nil
}
