package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/ferryml/ferry/stores"
)

// errorCodes maps Azure Storage error codes onto the stores sentinels.
// Codes not listed fall back on the HTTP status (errorStatus).
var errorCodes = map[bloberror.Code]error{
	bloberror.BlobNotFound:                      stores.ErrNotFound,
	bloberror.ContainerNotFound:                 stores.ErrNotFound,
	bloberror.ResourceNotFound:                  stores.ErrNotFound,
	bloberror.AuthenticationFailed:              stores.ErrPermission,
	bloberror.AuthorizationFailure:              stores.ErrPermission,
	bloberror.AuthorizationPermissionMismatch:   stores.ErrPermission,
	bloberror.AuthorizationProtocolMismatch:     stores.ErrPermission,
	bloberror.AuthorizationResourceTypeMismatch: stores.ErrPermission,
	bloberror.AuthorizationServiceMismatch:      stores.ErrPermission,
	bloberror.AuthorizationSourceIPMismatch:     stores.ErrPermission,
	bloberror.InvalidAuthenticationInfo:         stores.ErrPermission,
	bloberror.NoAuthenticationInformation:       stores.ErrPermission,
	bloberror.InsufficientAccountPermissions:    stores.ErrPermission,
	bloberror.AccountIsDisabled:                 stores.ErrPermission,
	bloberror.InvalidRange:                      stores.ErrInvalidRange,
	bloberror.RequestBodyTooLarge:               stores.ErrTooLarge,
	bloberror.BlockCountExceedsLimit:            stores.ErrTooLarge,
	bloberror.BlockListTooLong:                  stores.ErrTooLarge,
	// A committed block list that names blocks never staged (or staged
	// for another upload): the client's part list is wrong.
	bloberror.InvalidBlockList:  stores.ErrInvalidKey,
	bloberror.InvalidBlockID:    stores.ErrInvalidKey,
	bloberror.InternalError:     stores.ErrUnavailable,
	bloberror.ServerBusy:        stores.ErrUnavailable,
	bloberror.OperationTimedOut: stores.ErrUnavailable,
}

// classify converts an Azure SDK (or network, or credential) error into
// one wrapping a stores sentinel, keeping the original text and chain. It
// is the one place the driver interprets SDK errors.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{stores.ErrNotFound, stores.ErrPermission, stores.ErrInvalidRange,
		stores.ErrTooLarge, stores.ErrIncomplete, stores.ErrUnavailable, stores.ErrIsDir,
		stores.ErrInvalidKey, stores.ErrUnsupported, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			return err
		}
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		if s, ok := errorCodes[bloberror.Code(re.ErrorCode)]; ok {
			return join(s, err)
		}
		return join(errorStatus(re.StatusCode), err)
	}
	// No token to be had: a credential problem, not the store being down.
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) || errors.Is(err, errToken) {
		return join(stores.ErrPermission, err)
	}
	if errors.Is(err, bloberror.MissingSharedKeyCredential) {
		return join(stores.ErrUnsupported, err)
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

// errorStatus is the sentinel for an HTTP status without a known code
// (HEAD requests carry no body, so no code, only the status).
func errorStatus(status int) error {
	switch {
	case status == 404:
		return stores.ErrNotFound
	case status == 401 || status == 403:
		return stores.ErrPermission
	case status == 416:
		return stores.ErrInvalidRange
	case status == 413:
		return stores.ErrTooLarge
	case status >= 500:
		return stores.ErrUnavailable
	}
	return errUnclassified
}

// errToken marks a failure to get a token from the credential
// (tokenCredential): no credential found, or the identity refused.
var errToken = errors.New("azure credential gave no token")

// errUnclassified marks an Azure answer that fits no sentinel (MLflow
// answers INTERNAL_ERROR for those, as upstream does).
var errUnclassified = errors.New("azure storage error")

// sentinelError carries a sentinel beside the SDK error so that both
// errors.Is(err, sentinel) and the SDK's own error text survive.
type sentinelError struct {
	sentinel, err error
}

func (e *sentinelError) Error() string   { return fmt.Sprintf("%v: %v", e.sentinel, e.err) }
func (e *sentinelError) Unwrap() []error { return []error{e.sentinel, e.err} }

func join(sentinel, err error) error { return &sentinelError{sentinel: sentinel, err: err} }
