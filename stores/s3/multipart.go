package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferryml/ferry/stores"
)

// ownerOptions are empty PutObjectOptions but for the owner (see
// withHeaders).
func (s *Store) ownerOptions() minio.PutObjectOptions {
	var o minio.PutObjectOptions
	if s.owner != nil {
		o.ServerSideEncryption = withHeaders{h: s.owner}
	}
	return o
}

// presignHeaders are the headers a presigned URL is signed with, and so
// the headers its user must send: the expected owner when configured.
func (s *Store) presignHeaders() http.Header {
	if s.owner == nil {
		return nil
	}
	return s.owner.Clone()
}

// presigned wraps a presigned URL with the headers it was signed with.
// The header names are lower case, as they go over the wire in MLflow's
// credential "headers" map.
func (s *Store) presigned(u *url.URL) stores.PresignedRequest {
	r := stores.PresignedRequest{URL: u.String()}
	if s.owner != nil {
		r.Headers = http.Header{}
		for k, v := range s.owner {
			r.Headers[k] = append([]string(nil), v...)
		}
	}
	return r
}

// PresignGet implements stores.Presigner: a GET URL for key, valid for
// ttl, signed with the expected owner when one is configured, naming
// FERRY_S3_PRESIGN_ENDPOINT_URL when set (presign.go).
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (stores.PresignedRequest, error) {
	pc, err := s.presignClient(ctx)
	if err != nil {
		return stores.PresignedRequest{}, s.fail("presign get", key, err)
	}
	u, err := pc.PresignHeader(ctx, http.MethodGet, s.cfg.Bucket, s.objectKey(key), ttl, nil, s.presignHeaders())
	if err != nil {
		return stores.PresignedRequest{}, s.fail("presign get", key, err)
	}
	return s.presigned(u), nil
}

// CreateMultipart implements stores.Multiparter: it opens the multipart
// upload on S3 and presigns one UploadPart URL per part, numbered from 1,
// valid for Config.PartURLTTL, naming FERRY_S3_PRESIGN_ENDPOINT_URL when
// set. As upstream, MLFLOW_S3_UPLOAD_EXTRA_ARGS is not applied to these
// uploads.
func (s *Store) CreateMultipart(ctx context.Context, key string, numParts int) (stores.MultipartUpload, error) {
	if numParts > MaxParts {
		return stores.MultipartUpload{}, fmt.Errorf("create multipart upload %s: %d parts, S3 allows %d: %w", key, numParts, MaxParts, stores.ErrTooLarge)
	}
	// The signing client first: when it cannot be had (the region lookup
	// failed), no upload is opened.
	pc, err := s.presignClient(ctx)
	if err != nil {
		return stores.MultipartUpload{}, s.fail("presign upload part", key, err)
	}
	obj := s.objectKey(key)
	id, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, obj, s.ownerOptions())
	if err != nil {
		return stores.MultipartUpload{}, s.fail("create multipart upload", key, err)
	}
	up := stores.MultipartUpload{UploadID: id}
	for i := 1; i <= numParts; i++ {
		q := url.Values{"partNumber": {strconv.Itoa(i)}, "uploadId": {id}}
		u, err := pc.PresignHeader(ctx, http.MethodPut, s.cfg.Bucket, obj, s.cfg.PartURLTTL, q, s.presignHeaders())
		if err != nil {
			s.abortQuietly(ctx, obj, id)
			return stores.MultipartUpload{}, s.fail("presign upload part", key, err)
		}
		up.Parts = append(up.Parts, stores.PresignedPart{PartNumber: i, Request: s.presigned(u)})
	}
	return up, nil
}

// CompleteMultipart implements stores.Multiparter: the client's part
// numbers and ETags go to S3 verbatim, in the order given.
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []stores.CompletedPart) error {
	cp := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		cp[i] = minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag}
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, s.objectKey(key), uploadID, cp, s.ownerOptions()); err != nil {
		if s.alreadyCompleted(ctx, key, parts, err) {
			return nil
		}
		return s.fail("complete multipart upload", key, err)
	}
	return nil
}

// alreadyCompleted reports whether a complete that S3 refused because the
// upload is gone (NoSuchUpload; MinIO answers InvalidPart) was in fact
// done before: a client retrying mpu/complete after the replica that sent
// the first one died, or after the answer was lost, must not get an error
// for an upload that succeeded. It is, when the object at key carries the
// multipart ETag of exactly these parts (the MD5 of their MD5s, "-N"),
// which no other upload produces. Stores whose ETags are not MD5s (SSE-KMS)
// keep the error.
func (s *Store) alreadyCompleted(ctx context.Context, key string, parts []stores.CompletedPart, err error) bool {
	if code := minio.ToErrorResponse(err).Code; code != "NoSuchUpload" && code != "InvalidPart" {
		return false
	}
	want, ok := multipartETag(parts)
	if !ok {
		return false
	}
	info, serr := s.client.StatObject(ctx, s.cfg.Bucket, s.objectKey(key), s.getOptions())
	return serr == nil && strings.Trim(info.ETag, `"`) == want
}

// multipartETag is the ETag S3 gives the object a multipart upload of
// parts (in the order given, which the complete request requires to be
// ascending) makes: hex MD5 of the concatenated binary part MD5s, "-",
// the part count. ok is false when a part's ETag is not a hex MD5.
func multipartETag(parts []stores.CompletedPart) (etag string, ok bool) {
	if len(parts) == 0 {
		return "", false
	}
	h := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(sum) != md5.Size {
			return "", false
		}
		h.Write(sum)
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts)), true
}

// AbortMultipart implements stores.Multiparter.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	if err := s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, s.objectKey(key), uploadID); err != nil {
		return s.fail("abort multipart upload", key, err)
	}
	return nil
}
