// Package serve sends stored artifacts as HTTP downloads, for every route
// that answers with a file's bytes: mlflow-artifacts downloads (package
// proxy), /get-artifact (metadata/tracking) and
// /model-versions/get-artifact (metadata/registry). It holds the one copy
// of upstream's content-type guess, the Content-Disposition forms, single
// byte-range handling, the streaming of a store's reader to fasthttp, and
// the mapping of an artifact root URI to the store that holds it (the
// proxied artifacts destination or a store opened for the request).
//
// Nothing here buffers an object: bodies are stores' readers handed to
// fasthttp with their size.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// Disposition selects how Content-Disposition names the file.
type Disposition uint8

const (
	// RawName is "attachment; filename=<basename>" with the name as it is,
	// as upstream's mlflow-artifacts download sends it (spec
	// artifacts-api.md §8).
	RawName Disposition = iota
	// Framework is werkzeug's send_file(as_attachment=True) form that
	// /get-artifact and /model-versions/get-artifact send: the name quoted
	// when it is not a token, and an RFC 5987 filename* for non-ASCII names
	// (see Attachment).
	Framework
)

func (d Disposition) header(name string) string {
	if d == Framework {
		return Attachment(name)
	}
	return "attachment; filename=" + name
}

// File answers a GET or HEAD with the object at key of s: Content-Type by
// GuessMimeType (bare, no charset), Content-Disposition as d, Accept-Ranges,
// one byte range honoured (206; 416 for a range outside the object; other
// Range headers are ignored and the whole object is sent, as RFC 9110
// allows), and the body streamed with its size.
//
// release, when not nil, is called exactly once when the store and the
// body are no longer used: after fasthttp has sent (or given up on) a
// streamed body, or before File returns when nothing is streamed.
//
// A non-nil result is a *wire.Error for the caller to send (a missing key
// is RESOURCE_DOES_NOT_EXIST naming key, a directory INVALID_PARAMETER_VALUE).
func File(c *fiber.Ctx, s stores.Store, key string, d Disposition, release func()) (err error) {
	if release == nil {
		release = func() {}
	}
	streaming := false
	defer func() {
		if !streaming {
			release()
		}
		if err != nil { // an error body is not the file
			c.Response().Header.Del(fiber.HeaderContentDisposition)
			c.Response().Header.Del(fiber.HeaderAcceptRanges)
		}
	}()
	send := func(rc io.ReadCloser, size int64) error {
		streaming = true
		return Stream(c, &releaseOnClose{ReadCloser: rc, release: release}, int(size))
	}
	ctx := c.UserContext()
	c.Set(fiber.HeaderContentType, GuessMimeType(key))
	c.Set(fiber.HeaderContentDisposition, d.header(stores.BaseName(key)))
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set("X-Content-Type-Options", "nosniff")

	rangeHeader := c.Get(fiber.HeaderRange)
	head := c.Method() == fiber.MethodHead
	if rangeHeader == "" && !head {
		rc, e, err := s.Open(ctx, key, 0, -1)
		if err != nil {
			return wire.FromStoreKey(err, key)
		}
		c.Status(fiber.StatusOK)
		return send(rc, e.Size)
	}
	if start, end, ok := parseOpenRange(rangeHeader); ok && !head {
		return openRange(c, s, key, rangeHeader, start, end, send)
	}

	e, err := s.Stat(ctx, key)
	if err != nil {
		return wire.FromStoreKey(err, key)
	}
	if e.IsDir {
		return wire.FromStore(stores.ErrIsDir)
	}
	offset, length, status := int64(0), e.Size, fiber.StatusOK
	if rangeHeader != "" {
		start, n, ok, satisfiable := parseRange(rangeHeader, e.Size)
		switch {
		case !satisfiable:
			return notSatisfiable(c, rangeHeader, e.Size)
		case ok:
			offset, length, status = start, n, fiber.StatusPartialContent
			c.Set(fiber.HeaderContentRange, fmt.Sprintf("bytes %d-%d/%d", start, start+n-1, e.Size))
		}
	}
	c.Status(status)
	if head {
		c.Response().SkipBody = true
		c.Response().Header.SetContentLength(int(length))
		return nil
	}
	if length == 0 {
		return c.Send(nil)
	}
	rc, _, err := s.Open(ctx, key, offset, length)
	if err != nil {
		return wire.FromStore(err)
	}
	return send(rc, length)
}

// openRange answers a GET with a "bytes=start-end" or "bytes=start-"
// range (end < 0) with one ranged Open: the store reports the object's
// size with the stream, so on S3 this is one request instead of a HEAD
// and a GET. Only a range that starts past the end needs a Stat, for the
// size that the 416 answer names.
func openRange(c *fiber.Ctx, s stores.Store, key, rangeHeader string, start, end int64, send func(io.ReadCloser, int64) error) error {
	ctx := c.UserContext()
	length := int64(-1)
	if end >= 0 {
		length = end - start + 1
	}
	rc, e, err := s.Open(ctx, key, start, length)
	if errors.Is(err, stores.ErrInvalidRange) {
		st, serr := s.Stat(ctx, key)
		if serr != nil {
			return wire.FromStoreKey(serr, key)
		}
		return notSatisfiable(c, rangeHeader, st.Size)
	}
	if err != nil {
		return wire.FromStoreKey(err, key)
	}
	if start >= e.Size { // an empty object: no byte to start at
		rc.Close()
		return notSatisfiable(c, rangeHeader, e.Size)
	}
	n := e.Size - start
	if length >= 0 && length < n {
		n = length
	}
	c.Set(fiber.HeaderContentRange, fmt.Sprintf("bytes %d-%d/%d", start, start+n-1, e.Size))
	c.Status(fiber.StatusPartialContent)
	return send(rc, n)
}

// notSatisfiable is the 416 answer for a range outside an object of size
// bytes: an error body, not the file, so no attachment header.
func notSatisfiable(c *fiber.Ctx, rangeHeader string, size int64) error {
	c.Response().Header.Del(fiber.HeaderContentDisposition)
	c.Set(fiber.HeaderContentRange, fmt.Sprintf("bytes */%d", size))
	c.Status(fiber.StatusRequestedRangeNotSatisfiable)
	return c.JSON(wire.BodyOf(wire.Errorf(wire.InvalidParameterValue,
		"Range %q is not satisfiable for an object of %d bytes", rangeHeader, size)))
}

// releaseOnClose calls release after the store's reader is closed.
type releaseOnClose struct {
	io.ReadCloser
	release func()
}

// WriteTo keeps the store reader's own WriteTo (sendfile for local files).
func (r *releaseOnClose) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, r.ReadCloser) }

func (r *releaseOnClose) Close() error {
	err := r.ReadCloser.Close()
	r.release()
	return err
}

// cancelKey is the Locals key of the request's *streamCancel.
type cancelKey struct{}

// streamCancel owns the cancel function of a request context.
type streamCancel struct {
	cancel   context.CancelFunc
	detached bool
}

// Guard makes cancel the end of the request's context: the release it
// returns (which the middleware defers) cancels it, unless a handler has
// handed a streamed body to fasthttp with Stream, which outlives the
// handler; the context then ends when that body is closed.
func Guard(c *fiber.Ctx, cancel context.CancelFunc) (release func()) {
	sc := &streamCancel{cancel: cancel}
	c.Locals(cancelKey{}, sc)
	return func() {
		if !sc.detached {
			sc.cancel()
		}
	}
}

// Stream sends rc as the response body with its size. fasthttp reads it
// after the handler has returned, so under Guard the request context lives
// on until rc is closed, or until moving it fails (the client went away),
// and the store operation is then classified as canceled.
func Stream(c *fiber.Ctx, rc io.ReadCloser, size int) error {
	if sc, ok := c.Locals(cancelKey{}).(*streamCancel); ok && !sc.detached {
		sc.detached = true
		rc = &cancelOnClose{rc: rc, cancel: sc.cancel}
	}
	return c.SendStream(rc, size)
}

// cancelOnClose ends the request context when the body is closed, or as
// soon as moving it fails.
type cancelOnClose struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
}

func (s *cancelOnClose) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if err != nil && err != io.EOF {
		s.cancel()
	}
	return n, err
}

// WriteTo keeps the store reader's own WriteTo (sendfile for local files).
func (s *cancelOnClose) WriteTo(w io.Writer) (int64, error) {
	n, err := io.Copy(w, s.rc)
	if err != nil {
		s.cancel()
	}
	return n, err
}

func (s *cancelOnClose) Close() error {
	err := s.rc.Close()
	s.cancel()
	return err
}
