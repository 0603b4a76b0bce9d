package s3

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/internal/leftovers"
)

var _ stores.StaleUploadSweeper = (*Store)(nil)

// sweepPageSize is how many uploads one ListMultipartUploads page asks
// for (S3's maximum); a variable so tests can page with fewer.
var sweepPageSize = 1000

// SweepStaleUploads implements stores.StaleUploadSweeper: it aborts every
// multipart upload under the store's prefix initiated more than olderThan
// ago — what a crash left of a proxied upload (the abort janitor's queue
// is memory only), or a presigned upload whose client never completed nor
// aborted it. Uploads outside the prefix, or younger, are never touched.
//
// The bucket's uploads are listed whole (paginated) and filtered here:
// MinIO takes a non-empty ListMultipartUploads prefix as one exact key
// and would list nothing (see NOTES.md). The time compared is S3's
// Initiated, S3's clock, against this process's: keep olderThan well
// above any clock skew. An upload already gone (another sweep, the
// janitor, its client) is not an error. The sweep stops at the first
// failure that means S3 is unavailable; other failures (a refusal of one
// abort) are skipped and the first is returned with the count.
func (s *Store) SweepStaleUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	stale, err := s.staleUploads(ctx, time.Now().Add(-olderThan))
	if err != nil {
		return 0, err
	}
	return leftovers.AbortAll(ctx, stale, func(u minio.ObjectMultipartInfo) error {
		if err := classify(s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, u.Key, u.UploadID)); err != nil {
			return fmt.Errorf("s3 abort multipart upload s3://%s/%s (upload id %s): %w", s.cfg.Bucket, u.Key, u.UploadID, err)
		}
		return nil
	}, func(u minio.ObjectMultipartInfo) {
		s.janitor.logger().Info("s3: aborted a stale multipart upload", "bucket", s.cfg.Bucket,
			"key", u.Key, "upload_id", u.UploadID, "initiated", u.Initiated.UTC().Format(time.RFC3339))
	})
}

// maxSweepBatch bounds the uploads one sweep collects (memory); the rest
// wait for the next sweep.
const maxSweepBatch = 100_000

// staleUploads lists the bucket's uploads under the prefix initiated
// before cutoff. The whole listing is read before anything is aborted:
// versitygw refuses a page marker naming an upload aborted meanwhile
// ("Invalid uploadId marker").
func (s *Store) staleUploads(ctx context.Context, cutoff time.Time) ([]minio.ObjectMultipartInfo, error) {
	prefix := s.dirPrefix("")
	keyMarker, idMarker := "", ""
	var stale []minio.ObjectMultipartInfo
	for len(stale) < maxSweepBatch {
		res, err := s.core.ListMultipartUploads(ctx, s.cfg.Bucket, "", keyMarker, idMarker, "", sweepPageSize)
		if err != nil {
			return nil, fmt.Errorf("s3 list multipart uploads s3://%s: %w", s.cfg.Bucket, classify(err))
		}
		for _, u := range res.Uploads {
			if strings.HasPrefix(u.Key, prefix) && !u.Initiated.IsZero() && u.Initiated.Before(cutoff) {
				stale = append(stale, u)
			}
		}
		if !res.IsTruncated {
			break
		}
		if res.NextKeyMarker == keyMarker && res.NextUploadIDMarker == idMarker {
			return nil, fmt.Errorf("s3 list multipart uploads s3://%s: truncated page without a new marker", s.cfg.Bucket)
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
	return stale, nil
}
