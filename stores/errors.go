package stores

import "errors"

// Sentinel errors shared by every driver. Each driver converts its SDK's
// errors into these in exactly one function, so callers never compare error
// strings; wire maps them onto MLflow error codes.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: the key already exists where that is not allowed.
	ErrExists = errors.New("already exists")
	// ErrPermission: the backend refused the credentials or the operation.
	ErrPermission = errors.New("permission denied")
	// ErrInvalidKey: the key is unsafe or unusable (outside the root, ..).
	ErrInvalidKey = errors.New("invalid key")
	// ErrOutsideRoot: the key resolves (e.g. through a symlink) outside the
	// store root. It also matches ErrInvalidKey.
	ErrOutsideRoot = &wrappedSentinel{msg: "resolved path is outside the artifact directory", parent: ErrInvalidKey}
	// ErrIsDir: an object operation named a directory.
	ErrIsDir = errors.New("is a directory")
	// ErrInvalidRange: a read started past the end of the object.
	ErrInvalidRange = errors.New("invalid range")
	// ErrUnsupported: the store cannot do this (no presign, no multipart).
	ErrUnsupported = errors.New("not supported by this store")
	// ErrTooLarge: the object or request exceeds a backend limit.
	ErrTooLarge = errors.New("too large")
	// ErrIncomplete: an upload ended before its announced size.
	ErrIncomplete = errors.New("upload incomplete")
	// ErrUnavailable: the backend could not be reached (network, 5xx).
	ErrUnavailable = errors.New("store unavailable")
)

// wrappedSentinel is a sentinel that also matches a more general one.
type wrappedSentinel struct {
	msg    string
	parent error
}

func (e *wrappedSentinel) Error() string { return e.msg }
func (e *wrappedSentinel) Unwrap() error { return e.parent }
