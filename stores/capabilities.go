package stores

import (
	"context"
	"net/http"
	"time"

	"github.com/ferryml/ferry/stores/internal/gctune"
)

// PresignedRequest is a URL a client can use directly against the backend,
// with the headers it must send (e.g. x-amz-expected-bucket-owner).
type PresignedRequest struct {
	URL     string
	Headers http.Header
}

// Presigner is the optional capability of handing out time-limited URLs so
// clients move bytes straight to or from the backend.
type Presigner interface {
	// PresignGet returns a URL for downloading key, valid for ttl.
	PresignGet(ctx context.Context, key string, ttl time.Duration) (PresignedRequest, error)
}

// CompletedPart identifies one uploaded part by number and the ETag the
// backend returned for it (verbatim, quotes included).
type CompletedPart struct {
	PartNumber int
	ETag       string
	// URL is the presigned URL the part was uploaded to (Azure needs it to
	// recover the block id; others ignore it).
	URL string
}

// MultipartUpload is the answer to CreateMultipart: the backend's upload id
// (empty where the backend has none) and one presigned URL per part, in
// part-number order starting at 1.
type MultipartUpload struct {
	UploadID string
	Parts    []PresignedPart
}

// PresignedPart is the URL (and headers) for uploading one part.
type PresignedPart struct {
	PartNumber int
	Request    PresignedRequest
}

// Multiparter is the optional capability behind MLflow's mpu/* routes:
// clients upload parts straight to the backend through presigned URLs.
type Multiparter interface {
	CreateMultipart(ctx context.Context, key string, numParts int) (MultipartUpload, error)
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []CompletedPart) error
	AbortMultipart(ctx context.Context, key, uploadID string) error
}

// Unwrapper is implemented by wrappers (such as Instrumented) so capability
// checks can reach the driver underneath.
type Unwrapper interface {
	Unwrap() Store
}

// As finds capability C on s or on any store s wraps.
func As[C any](s Store) (C, bool) {
	for s != nil {
		if c, ok := s.(C); ok {
			return c, true
		}
		u, ok := s.(Unwrapper)
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	var zero C
	return zero, false
}

// StaleUploadSweeper is the optional capability of removing what uploads
// cut off long ago left in the backend: multipart uploads never completed
// nor aborted (S3, GCS), blocks staged and never committed (Azure),
// temporary files of uploads a crash interrupted (local filesystem, SFTP,
// FTP). Only leftovers under the store's own root (prefix) whose
// upload started, or was last written, more than olderThan ago are
// removed; younger ones may belong to uploads still in progress on any
// replica, so olderThan must exceed the longest upload. It is idempotent:
// several processes may sweep the same store at once, a leftover another
// one removed first is not an error. It returns how many it removed; on
// error, the count of those removed before it.
//
// `ferry gc` runs it on the artifacts destination; drivers opt in (found
// with As) where the backend can list such leftovers cheaply.
type StaleUploadSweeper interface {
	SweepStaleUploads(ctx context.Context, olderThan time.Duration) (removed int, err error)
}

// GCAdvisor is implemented by drivers whose client libraries allocate a
// fresh buffer for every packet they move (x/crypto/ssh and pkg/sftp copy
// each received packet twice; colinmarc/hdfs allocates each 64 KiB write
// packet twice), so that at full speed the garbage between
// two collections, not the data in flight, sets the process's peak memory
// and the collector's share of the CPU. GCAdvice is the collector policy
// that kept the driver's benchmark under Ferry's memory target at the
// least collector work; see ApplyGCAdvice.
type GCAdvisor interface {
	GCAdvice() GCAdvice
}

// GCAdvice is a collector policy: while the live heap is small, collect
// when the heap reaches HeapTarget bytes (GOGC recomputed after each
// collection, at most MaxPercent); as the live heap grows GOGC slides
// down, to MinPercent once the live heap leaves no room for HeapTarget.
// MaxPercent is also capped where the runtime's minimum heap goal
// (4 MiB × GOGC/100) would exceed HeapTarget.
type GCAdvice struct {
	HeapTarget             int64
	MinPercent, MaxPercent int
}

// PerPacketGarbageAdvice is the policy of drivers whose client library
// allocates a fresh buffer per network packet (pkg/sftp, colinmarc/hdfs),
// so a transfer makes garbage at its own rate while holding little live:
// collect at a 16 MiB heap, and at GOGC=50 once the live heap leaves no
// room for that (400 is where the runtime's 4 MiB minimum goal would pass
// 16 MiB). Measured in stores/sftp/NOTES.md and README § HDFS.
var PerPacketGarbageAdvice = GCAdvice{HeapTarget: 16 << 20, MinPercent: 50, MaxPercent: 400}

// ApplyGCAdvice starts the collector policy the artifacts destination s
// advises (GCAdvisor), unless the operator chose a collector policy with
// the GOGC or GOMEMLIMIT environment variables (getenv is os.Getenv
// outside tests) or s gives no usable advice. It returns the advice, a
// function that stops the policy and restores the previous GOGC, and
// whether it started one. Only the destination's advice is taken: it
// carries the bulk of the transfers; stores opened per request for other
// roots do not change a process-wide setting.
func ApplyGCAdvice(s Store, getenv func(string) string) (advice GCAdvice, stop func(), applied bool) {
	a, ok := As[GCAdvisor](s)
	if !ok || getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return GCAdvice{}, func() {}, false
	}
	advice = a.GCAdvice()
	if advice.HeapTarget <= 0 || advice.MinPercent <= 0 || advice.MaxPercent < advice.MinPercent {
		return GCAdvice{}, func() {}, false
	}
	t := gctune.Start(gctune.Policy{Target: uint64(advice.HeapTarget), MinPercent: advice.MinPercent, MaxPercent: advice.MaxPercent})
	if t == nil { // a policy already runs in this process
		return GCAdvice{}, func() {}, false
	}
	return advice, t.Stop, true
}

// PutBufferer is implemented by drivers whose Put holds part of the body
// in memory while it uploads (S3 multipart parts, Azure blocks, GCS
// resumable chunks). PutBuffer is the most a Put of size bytes (-1:
// unknown) holds at once, sized as Put sizes its buffers; 0 when it
// streams. It must be cheap and do no I/O: the proxy calls it per upload
// and reserves that much of the server's transfer memory
// (--max-transfer-memory) before the Put, so that many concurrent uploads
// wait instead of exhausting memory.
type PutBufferer interface {
	PutBuffer(size int64) int64
}

// PutBuffer is what a Put of size bytes to s holds in memory (PutBufferer;
// 0 for drivers that stream).
func PutBuffer(s Store, size int64) int64 {
	if b, ok := As[PutBufferer](s); ok {
		return max(b.PutBuffer(size), 0)
	}
	return 0
}
