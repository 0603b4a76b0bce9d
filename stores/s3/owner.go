package s3

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// How ExpectedBucketOwner reaches every request
//
// S3 checks x-amz-expected-bucket-owner only if it is part of the SigV4
// signature; a header added to a request after signing (the obvious
// http.RoundTripper) is rejected by AWS ("headers present in the request
// which were not signed") or, worse, ignored. minio-go has a per-call
// header slot before signing for only some operations:
//
//	GetObject, StatObject      GetObjectOptions.Set
//	ListObjects                ListObjectsOptions.Set
//	PutObjectPart              PutObjectPartOptions.CustomHeader
//	presigned GET / UploadPart PresignHeader(extraHeaders): the header is
//	                           signed into the URL and handed to the client
//	                           in the credential's headers map
//
// and none for PutObject, NewMultipartUpload, CompleteMultipartUpload,
// AbortMultipartUpload, RemoveObject(s) and the bucket-location lookup.
// The driver uses the slots where they exist, and ownerTransport signs the
// header into everything else: a request that lacks it (or carries it
// unsigned) gets it added and is signed again with SigV4, the same
// signer minio-go used, for the region in the original signature. That
// is sound only when the signature does not chain into the body. The
// chunk-signed STREAMING-AWS4-HMAC-SHA256-PAYLOAD mode does (the driver
// uses it for single PUTs over http, where the owner is signed in before
// the seed signature through withHeaders); buffered parts carry their
// SHA-256 or UNSIGNED-PAYLOAD, which re-signing keeps. The transport
// refuses a chunk-signed request that lacks the owner rather than send it
// without the owner check.

// ownerTransport makes sure every request carries a signed
// x-amz-expected-bucket-owner (see above). Only S3 requests come here:
// credential fetches (instance metadata, STS, ...) go through the
// provider chain's own HTTP client (credsFetcher in s3.go), since this
// transport refuses what is not SigV4-signed.
type ownerTransport struct {
	base  http.RoundTripper
	owner string
	creds *credentials.Credentials
	// resigned counts requests that needed the header signed in (tests).
	resigned func()
}

// errOwnerRefused marks a request ownerTransport refused to send because it
// could not carry a signed expected-owner header: a fault in Ferry or its
// configuration, not S3 being unreachable, though net/http wraps it in a
// *url.Error like a network failure.
var errOwnerRefused = errors.New("refused before sending")

// RoundTrip implements http.RoundTripper.
func (t *ownerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get(OwnerHeader) == t.owner && headerSigned(req, OwnerHeader) {
		return t.base.RoundTrip(req)
	}
	fail := func(format string, a ...any) (*http.Response, error) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("s3: cannot add %s to %s %s: %s (%w)", OwnerHeader, req.Method, req.URL.Path, fmt.Sprintf(format, a...), errOwnerRefused)
	}
	auth := req.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
		return fail("request is not SigV4-signed")
	}
	if p := req.Header.Get("X-Amz-Content-Sha256"); strings.HasPrefix(p, "STREAMING-") {
		return fail("payload mode %s chains its signature into the body", p)
	}
	region := scopeRegion(auth)
	if region == "" {
		return fail("no region in the signature's credential scope")
	}
	v, err := t.creds.GetWithContext(nil)
	if err != nil {
		return fail("credentials: %v", err)
	}
	r := req.Clone(req.Context())
	r.Header.Set(OwnerHeader, t.owner)
	r.Header.Del("Authorization")
	r.Header.Del("X-Amz-Date")
	r.Header.Del("X-Amz-Security-Token")
	signed := signer.SignV4(*r, v.AccessKeyID, v.SecretAccessKey, v.SessionToken, region)
	if t.resigned != nil {
		t.resigned()
	}
	return t.base.RoundTrip(signed)
}

// headerSigned reports whether name is in the SignedHeaders of req's SigV4
// Authorization header.
func headerSigned(req *http.Request, name string) bool {
	auth := req.Header.Get("Authorization")
	_, rest, ok := strings.Cut(auth, "SignedHeaders=")
	if !ok {
		return false
	}
	list, _, _ := strings.Cut(rest, ",")
	for _, h := range strings.Split(list, ";") {
		if strings.EqualFold(strings.TrimSpace(h), name) {
			return true
		}
	}
	return false
}

// scopeRegion extracts the region from "Credential=AK/date/region/s3/aws4_request".
func scopeRegion(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ := strings.Cut(rest, ",")
	parts := strings.Split(cred, "/")
	if len(parts) < 5 {
		return ""
	}
	return parts[len(parts)-3]
}

// withHeaders is an encrypt.ServerSide that also sets h: minio-go calls
// PutObjectOptions.ServerSideEncryption.Marshal while it builds the
// request headers, before signing, which makes it the only pre-signing
// header slot PutObject, NewMultipartUpload and CompleteMultipartUpload
// have. inner, when set, is the configured encryption.
type withHeaders struct {
	inner encrypt.ServerSide
	h     http.Header
}

// Type implements encrypt.ServerSide.
func (w withHeaders) Type() encrypt.Type {
	if w.inner != nil {
		return w.inner.Type()
	}
	return encrypt.Type("")
}

// Marshal implements encrypt.ServerSide.
func (w withHeaders) Marshal(h http.Header) {
	if w.inner != nil {
		w.inner.Marshal(h)
	}
	for k, v := range w.h {
		h[k] = append([]string(nil), v...)
	}
}
