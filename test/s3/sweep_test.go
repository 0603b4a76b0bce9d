package s3e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferryml/ferry/test/backends/s3srv"
)

// A replica's start sweeps the S3 destination in the background: with
// --temp-file-max-age 2s, an upload under the prefix opened 4 s before
// is aborted and logged, one outside the prefix stays.
func TestStartSweepAbortsStaleUploads(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	core := minio.Core{Client: srv.Client(t)}
	open := func(key string) string {
		id, err := core.NewMultipartUpload(t.Context(), bucket, key, minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	stale := open(prefix + "/0/run/artifacts/cut.bin")
	outside := open("elsewhere/cut.bin")
	time.Sleep(4 * time.Second)
	f := startFerry(t, "s3://"+bucket+"/"+prefix, srv.Env(), "--temp-file-max-age", "2s")
	f.WaitStaleUploadSweep(t, 1)
	var left []string
	for u := range core.ListIncompleteUploads(t.Context(), bucket, "", true) {
		left = append(left, u.UploadID)
	}
	if slices.Contains(left, stale) || !slices.Contains(left, outside) {
		t.Errorf("uploads left %v: want %s kept and %s aborted", left, outside, stale)
	}
}
