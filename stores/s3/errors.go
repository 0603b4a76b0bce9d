package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"

	"github.com/minio/minio-go/v7"

	"github.com/ferryml/ferry/stores"
)

// errorCodes maps S3 error codes onto the stores sentinels. Codes not
// listed stay unclassified (MLflow answers INTERNAL_ERROR for them, as
// upstream does for every boto ClientError it does not map).
var errorCodes = map[string]error{
	minio.NoSuchKey:              stores.ErrNotFound,
	minio.NoSuchBucket:           stores.ErrNotFound,
	"NoSuchUpload":               stores.ErrNotFound,
	"NotFound":                   stores.ErrNotFound,
	minio.AccessDenied:           stores.ErrPermission,
	"InvalidAccessKeyId":         stores.ErrPermission,
	"SignatureDoesNotMatch":      stores.ErrPermission,
	"AllAccessDisabled":          stores.ErrPermission,
	"AccountProblem":             stores.ErrPermission,
	"ExpiredToken":               stores.ErrPermission,
	"InvalidToken":               stores.ErrPermission,
	"RequestTimeTooSkewed":       stores.ErrPermission,
	"Forbidden":                  stores.ErrPermission,
	"InvalidRange":               stores.ErrInvalidRange,
	"EntityTooLarge":             stores.ErrTooLarge,
	"MaxMessageLengthExceeded":   stores.ErrTooLarge,
	"IncompleteBody":             stores.ErrIncomplete,
	"InternalError":              stores.ErrUnavailable,
	"ServiceUnavailable":         stores.ErrUnavailable,
	"SlowDown":                   stores.ErrUnavailable,
	"RequestTimeout":             stores.ErrUnavailable,
	"XMinioServerNotInitialized": stores.ErrUnavailable,
	"XMinioStorageFull":          stores.ErrTooLarge,
}

// classify converts a minio-go (or network) error into one wrapping a
// stores sentinel, keeping the original text and chain. It is the one
// place the driver interprets SDK errors.
func classify(err error) error {
	if err == nil {
		return nil
	}
	// The presign client tried to send a request (presign.go), or
	// ownerTransport refused one it could not sign the owner into
	// (owner.go): a bug or a configuration fault, not S3 being down
	// (no 503, no janitor retry), though both come wrapped in *url.Error.
	if errors.Is(err, errPresignSend) || errors.Is(err, errOwnerRefused) {
		return err
	}
	// Already classified (e.g. our own ErrIncomplete), or a cancellation:
	// keep as is.
	for _, s := range []error{stores.ErrNotFound, stores.ErrPermission, stores.ErrInvalidRange,
		stores.ErrTooLarge, stores.ErrIncomplete, stores.ErrUnavailable, stores.ErrIsDir,
		stores.ErrInvalidKey, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			return err
		}
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		if s, ok := errorCodes[resp.Code]; ok {
			return join(s, err)
		}
		if resp.StatusCode >= 500 {
			return join(stores.ErrUnavailable, err)
		}
		return err
	}
	var ue *url.Error
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &oe), errors.As(err, &ne), errors.As(err, &ue),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return join(stores.ErrUnavailable, err)
	}
	return err
}

// sentinelError carries a sentinel beside the SDK error so that both
// errors.Is(err, sentinel) and the SDK's own error text survive.
type sentinelError struct {
	sentinel, err error
}

func (e *sentinelError) Error() string   { return fmt.Sprintf("%v: %v", e.sentinel, e.err) }
func (e *sentinelError) Unwrap() []error { return []error{e.sentinel, e.err} }

func join(sentinel, err error) error { return &sentinelError{sentinel: sentinel, err: err} }
