package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"syscall"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/ferryml/ferry/stores"
)

// classify converts an SFTP, SSH or network error into one wrapping a
// stores sentinel, keeping the original text. It is the one place the
// driver interprets library errors. None of them carries the password:
// the URI is never part of an error here.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{stores.ErrNotFound, stores.ErrPermission, stores.ErrInvalidRange,
		stores.ErrTooLarge, stores.ErrIncomplete, stores.ErrUnavailable, stores.ErrIsDir,
		stores.ErrInvalidKey, stores.ErrExists, stores.ErrUnsupported,
		context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			return err
		}
	}
	var se *sftp.StatusError
	if errors.As(err, &se) {
		switch se.FxCode() {
		case sftp.ErrSSHFxNoSuchFile:
			return join(stores.ErrNotFound, err)
		case sftp.ErrSSHFxPermissionDenied:
			return join(stores.ErrPermission, err)
		case sftp.ErrSSHFxNoConnection, sftp.ErrSSHFxConnectionLost:
			return join(stores.ErrUnavailable, err)
		case sftp.ErrSSHFxOpUnsupported:
			return join(stores.ErrUnsupported, err)
		}
		return err
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return join(stores.ErrNotFound, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, errAuth),
		errors.Is(err, errUnknownHost), errors.Is(err, errHostKeyMismatch):
		return join(stores.ErrPermission, err)
	case errors.Is(err, fs.ErrExist):
		return join(stores.ErrExists, err)
	case connectionLost(err):
		return join(stores.ErrUnavailable, err)
	}
	return err
}

// connectionLost reports an error that means the connection (or the
// server) is gone, after which the connection must not be reused.
func connectionLost(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var oerr *ssh.OpenChannelError
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, sftp.ErrSSHFxNoConnection) ||
		errors.As(err, &oe) || errors.As(err, &ne) || errors.As(err, &oerr) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.ErrClosedPipe) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// sentinelError carries a sentinel beside the library error so that both
// errors.Is(err, sentinel) and the library's own text survive.
type sentinelError struct {
	sentinel, err error
}

func (e *sentinelError) Error() string   { return fmt.Sprintf("%v: %v", e.sentinel, e.err) }
func (e *sentinelError) Unwrap() []error { return []error{e.sentinel, e.err} }

func join(sentinel, err error) error { return &sentinelError{sentinel: sentinel, err: err} }
