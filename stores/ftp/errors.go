package ftp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"syscall"

	"github.com/ferryml/ferry/stores"
)

// classify converts an FTP reply, TLS or network error into one wrapping
// a stores sentinel, keeping the original text. It is the one place the
// driver interprets library errors. No error carries the password: the
// URI is never part of one, and servers do not echo PASS.
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
	var te *textproto.Error
	if errors.As(err, &te) {
		switch {
		case te.Code == 530 || te.Code == 532:
			return join(stores.ErrPermission, err)
		case te.Code == 550 && strings.Contains(strings.ToLower(te.Msg), "permission"):
			return join(stores.ErrPermission, err)
		case te.Code == 550:
			return join(stores.ErrNotFound, err)
		case te.Code == 552 || te.Code == 452:
			return join(stores.ErrTooLarge, err)
		case te.Code == 553:
			return join(stores.ErrInvalidKey, err)
		case te.Code == 421 || te.Code == 425 || te.Code == 426 || te.Code == 450 || te.Code == 451:
			return join(stores.ErrUnavailable, err)
		}
		return err
	}
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce *tls.CertificateVerificationError
	switch {
	case errors.As(err, &ue), errors.As(err, &he), errors.As(err, &ce):
		return join(stores.ErrPermission, err)
	case connectionLost(err):
		return join(stores.ErrUnavailable, err)
	}
	return err
}

// connectionLost reports an error after which the control connection is
// gone or out of step with the server, so it must not be reused.
func connectionLost(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code == 421
	}
	var pe textproto.ProtocolError
	return errors.As(err, &oe) || errors.As(err, &ne) || errors.As(err, &pe) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// sentinelError carries a sentinel beside the library error so that both
// errors.Is(err, sentinel) and the library's own text survive.
type sentinelError struct {
	sentinel, err error
}

func (e *sentinelError) Error() string   { return fmt.Sprintf("%v: %v", e.sentinel, e.err) }
func (e *sentinelError) Unwrap() []error { return []error{e.sentinel, e.err} }

func join(sentinel, err error) error { return &sentinelError{sentinel: sentinel, err: err} }
