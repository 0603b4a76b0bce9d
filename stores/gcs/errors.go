package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/ferryml/ferry/stores"
)

// xmlError is a refusal from the XML API (multipart uploads), which
// answers with an HTTP status and an <Error><Code> document.
type xmlError struct {
	Op, Code, Message string
	Status            int
}

func (e *xmlError) Error() string {
	return fmt.Sprintf("gcs XML API %s: %d %s: %s", e.Op, e.Status, e.Code, e.Message)
}

// errNoSigner is why a presign fails when the credentials cannot sign
// (no private key and no service-account e-mail for signBlob).
var errNoSigner = fmt.Errorf("gcs store: the credentials cannot sign URLs (need a service-account key or a service account for IAM signBlob): %w", stores.ErrUnsupported)

// statusSentinel maps HTTP statuses (JSON and XML API alike) onto the
// stores sentinels; statuses not listed stay unclassified (MLflow answers
// INTERNAL_ERROR for them, as upstream does).
func statusSentinel(code int) error {
	switch {
	case code == http.StatusNotFound:
		return stores.ErrNotFound
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return stores.ErrPermission
	case code == http.StatusRequestedRangeNotSatisfiable:
		return stores.ErrInvalidRange
	case code == http.StatusRequestEntityTooLarge:
		return stores.ErrTooLarge
	case code == http.StatusTooManyRequests, code == http.StatusRequestTimeout, code >= 500:
		return stores.ErrUnavailable
	}
	return nil
}

// classify converts a storage-library, auth, XML-API or network error into
// one wrapping a stores sentinel, keeping the original text and chain. It
// is the one place the driver interprets SDK errors.
func classify(err error) error {
	if err == nil {
		return nil
	}
	err = redactURL(err)
	for _, s := range []error{stores.ErrNotFound, stores.ErrPermission, stores.ErrInvalidRange,
		stores.ErrTooLarge, stores.ErrIncomplete, stores.ErrUnavailable, stores.ErrIsDir,
		stores.ErrInvalidKey, stores.ErrUnsupported, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			return err
		}
	}
	if errors.Is(err, storage.ErrObjectNotExist) || errors.Is(err, storage.ErrBucketNotExist) {
		return join(stores.ErrNotFound, err)
	}
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		if s := statusSentinel(gerr.Code); s != nil {
			return join(s, err)
		}
		return err
	}
	var xerr *xmlError
	if errors.As(err, &xerr) {
		if s := statusSentinel(xerr.Status); s != nil {
			return join(s, err)
		}
		return err
	}
	// The token endpoint (or metadata server) refused the credentials:
	// 4xx is a credentials problem, 5xx or no answer an outage.
	var aerr *auth.Error
	if errors.As(err, &aerr) {
		if aerr.Response != nil && aerr.Response.StatusCode >= 400 && aerr.Response.StatusCode < 500 {
			return join(stores.ErrPermission, err)
		}
		return join(stores.ErrUnavailable, err)
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

// redactURL hides the query of the request URL in err's text, keeping the
// chain: a resumable session's upload_id lets anyone write its object,
// and a signed URL's query is its signature. It rewrites the text rather
// than ue.URL because a wrapper made with fmt.Errorf has already frozen
// the URL into its own message.
func redactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	i := strings.IndexByte(ue.URL, '?')
	if i < 0 || !strings.Contains(err.Error(), ue.URL) {
		return err
	}
	return &redactedError{text: strings.ReplaceAll(err.Error(), ue.URL, ue.URL[:i]+"?…"), err: err}
}

// redactedError is err with text for its message.
type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// sentinelError carries a sentinel beside the SDK error so that both
// errors.Is(err, sentinel) and the SDK's own error text survive.
type sentinelError struct {
	sentinel, err error
}

func (e *sentinelError) Error() string   { return fmt.Sprintf("%v: %v", e.sentinel, e.err) }
func (e *sentinelError) Unwrap() []error { return []error{e.sentinel, e.err} }

func join(sentinel, err error) error { return &sentinelError{sentinel: sentinel, err: err} }
