package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/semaphore"

	"github.com/ferryml/ferry/stores"
)

// Limits are the server-wide bounds on reading request bodies. The proxy
// attaches them to every request with SetLimits; RequestBody and ReadBody apply
// them.
type Limits struct {
	// StallTimeout ends a body read when the client sends no byte for this
	// long (0: never). Time the server spends not reading does not count.
	StallTimeout time.Duration
	// MinRate ends a body read when, over a StallTimeout of time spent
	// waiting for the client, fewer than MinRate bytes per second arrived
	// (0, or no StallTimeout: never). Time not spent in a read (the server
	// busy with a slow backend) does not count.
	MinRate int64
	// JSON bounds the memory of buffered JSON bodies; nil: unbounded.
	JSON *Budget
	// Transfer bounds the memory artifact uploads hold in part buffers
	// (stores.PutBuffer); nil: unbounded.
	Transfer *Budget
}

type limitsKey struct{}

// SetLimits attaches l to the request; l must outlive it.
func SetLimits(c *fiber.Ctx, l *Limits) { c.Locals(limitsKey{}, l) }

func limitsOf(c *fiber.Ctx) *Limits {
	l, _ := c.Locals(limitsKey{}).(*Limits)
	return l
}

// BodyError is a failure to read a request body from the client: a
// malformed chunked encoding, a connection cut, or no byte within the
// stall timeout. It is the client's doing, so it matches
// stores.ErrIncomplete (a store that fails on it has received an
// incomplete upload) and maps to 400.
type BodyError struct {
	Err error
	// Stalled is set when the stall timeout ended the read.
	Stalled bool
	// After is the stall timeout that expired, or the waiting over which
	// a slow body was measured.
	After time.Duration
	// Slow is set when the body arrived below MinRate: Got bytes in After
	// of waiting.
	Slow         bool
	Got, MinRate int64
}

func (e *BodyError) Error() string {
	switch {
	case e.Stalled:
		return fmt.Sprintf("request body stalled: no data for %s", e.After)
	case e.Slow:
		return fmt.Sprintf("request body too slow: %d bytes in %s of waiting, below %d bytes/s", e.Got, e.After.Round(time.Millisecond), e.MinRate)
	}
	return "reading the request body: " + e.Err.Error()
}

// Unwrap lets errors.Is find both the cause and stores.ErrIncomplete.
func (e *BodyError) Unwrap() []error { return []error{e.Err, stores.ErrIncomplete} }

// RequestBody returns the request body as a stream that applies the stall
// timeout and turns read failures into *BodyError. Handlers read request
// bodies only through it (or ReadBody).
func RequestBody(c *fiber.Ctx) io.Reader {
	req := c.Request()
	if !req.IsBodyStream() {
		return bytes.NewReader(req.Body())
	}
	r := &bodyReader{r: req.BodyStream(), c: c}
	if l := limitsOf(c); l != nil {
		r.timeout, r.minRate = l.StallTimeout, l.MinRate
	}
	return r
}

// bodyReader pushes the connection's read deadline forward before a read
// when a quarter of the timeout has passed since it last did, so a read
// always has at least 3/4 of it. With a minimum rate it also adds up the
// time spent inside reads and the bytes they returned, and judges them
// each time that time reaches the timeout: two clock reads per Read.
// After a failure every Read repeats it: a stalled body is not waited for
// twice.
type bodyReader struct {
	r       io.Reader
	c       *fiber.Ctx
	timeout time.Duration
	armed   time.Time
	minRate int64
	waited  time.Duration // in reads since the last judgement
	got     int64         // bytes those reads returned
	err     error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	var start time.Time
	if b.timeout > 0 {
		start = time.Now()
		if start.Sub(b.armed) > b.timeout/4 {
			if err := b.c.Context().SetReadDeadline(start.Add(b.timeout)); err == nil {
				b.armed = start
			}
		}
	}
	n, err := b.r.Read(p)
	if n == 0 && b.timeout > 0 && isTimeout(err) && b.c.Request().Header.ContentLength() >= 0 {
		n, err = b.recheck(p)
	}
	if err == nil && b.minRate > 0 && b.timeout > 0 {
		b.waited += time.Since(start)
		b.got += int64(n)
		if b.waited >= b.timeout {
			if float64(b.got) < float64(b.minRate)*b.waited.Seconds() {
				b.err = &BodyError{Err: errTooSlow, Slow: true, After: b.waited, Got: b.got, MinRate: b.minRate}
				// fasthttp did not see the read fail, so it would keep
				// the connection and read on after the answer.
				b.c.Context().SetConnectionClose()
				return n, b.err
			}
			b.waited, b.got = 0, 0
		}
	}
	if err != nil && err != io.EOF {
		be := &BodyError{Err: err}
		if isTimeout(err) {
			be.Stalled, be.After = true, b.timeout
		}
		b.err = be
		err = be
	}
	return n, err
}

// stallRecheck is how long recheck waits for bytes the client may
// already have sent.
const stallRecheck = 50 * time.Millisecond

// recheck reads once more, briefly, after the read deadline fired. A
// deadline is checked before the socket is: a process kept off the CPU
// (a loaded two-core machine) past it reads a timeout although the
// client's bytes are waiting in the socket, and would cut a body that was
// flowing. Bytes now mean no stall; none within stallRecheck confirm it.
// Only for a body of known length: fasthttp's reader of one keeps no
// state across a failed read (its bufio reader hands an error out once),
// while a chunked body's reader may have consumed half a chunk header.
// fasthttp still closes the connection after the answer, having seen a
// read fail: a cost paid only when the process was starved.
func (b *bodyReader) recheck(p []byte) (int, error) {
	b.armed = time.Time{} // the next Read arms the full timeout again
	if err := b.c.Context().SetReadDeadline(time.Now().Add(stallRecheck)); err != nil {
		return 0, os.ErrDeadlineExceeded
	}
	return b.r.Read(p)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// AwaitFirstByte waits for the first byte of body (under the stall
// timeout, as any read of a RequestBody) and returns a reader of the
// whole body, that byte included; an empty body is no error. Handlers
// call it before reserving memory for a body, which fasthttp may hand
// them before any of it arrived (a chunked body).
func AwaitFirstByte(body io.Reader) (io.Reader, error) {
	var first [1]byte
	n, err := body.Read(first[:])
	for n == 0 && err == nil {
		n, err = body.Read(first[:])
	}
	if err != nil && err != io.EOF {
		return body, err
	}
	return io.MultiReader(bytes.NewReader(first[:n]), body), nil
}

// Budget is a weighted semaphore over bytes: the memory that buffered
// JSON bodies, or upload part buffers, may hold at once across all
// requests.
type Budget struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration
	held atomic.Int64
	// refused counts requests that gave up waiting: the wait ran out or
	// the request ended first (a client gone, a shutdown).
	refused atomic.Int64
}

// Size is the budget's capacity in bytes.
func (b *Budget) Size() int64 { return b.size }

// Held is the bytes held now.
func (b *Budget) Held() int64 { return b.held.Load() }

// Refused is how many requests gave up waiting (timed out or
// cancelled).
func (b *Budget) Refused() int64 { return b.refused.Load() }

// Reserve takes n bytes (at most the whole budget, so that a single
// upload needing more still runs, alone) for the caller, waiting up to
// the budget's wait or ctx's end, and returns the function that gives
// them back (call it once). It fails with a 503 the client may retry; a
// nil budget or n ≤ 0 reserves nothing.
func (b *Budget) Reserve(ctx context.Context, n int64) (release func(), werr *Error) {
	if b == nil || n <= 0 {
		return func() {}, nil
	}
	n, werr = b.take(ctx, n, "The server is busy with other uploads; retry later.")
	if werr != nil {
		return nil, werr
	}
	var once sync.Once
	return func() { once.Do(func() { b.give(n) }) }, nil
}

// take waits up to the budget's wait, or ctx's end, for n bytes (at most
// the whole budget) and returns how many it took; the error, a 503 the
// client may retry, carries busy as its message.
func (b *Budget) take(ctx context.Context, n int64, busy string) (int64, *Error) {
	n = min(n, b.size)
	wctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	if err := b.sem.Acquire(wctx, n); err != nil {
		b.refused.Add(1)
		return 0, &Error{Code: TemporarilyUnavailable, Message: busy, Cause: err}
	}
	b.held.Add(n)
	return n, nil
}

// give returns n bytes taken with take.
func (b *Budget) give(n int64) {
	b.held.Add(-n)
	b.sem.Release(n)
}

// NewBudget holds size bytes; a request waits up to wait for its share.
func NewBudget(size int64, wait time.Duration) *Budget {
	return &Budget{sem: semaphore.NewWeighted(size), size: size, wait: wait}
}

// smallBody is the size up to which a JSON body is read without touching
// the budget: such bodies are bounded by the number of connections, and a
// burst of large ones must not delay every log-metric call behind it.
const smallBody = 64 << 10

// bodyWeight is what a body of n bytes costs the budget: its bytes and,
// about as large, what it decodes into.
func bodyWeight(n int64) int64 { return 2 * n }

// lease is what one request holds of the budget.
type lease struct {
	b    *Budget
	held int64
}

type leaseKey struct{}

// acquire takes n more bytes for the request, waiting up to the budget's
// wait; it fails with a 503 the client may retry.
func (b *Budget) acquire(c *fiber.Ctx, n int64) *Error {
	n, werr := b.take(c.UserContext(), n, "The server is busy with other large requests; retry later.")
	if werr != nil {
		return werr
	}
	if l, ok := c.Locals(leaseKey{}).(*lease); ok {
		l.held += n
	} else {
		c.Locals(leaseKey{}, &lease{b: b, held: n})
	}
	return nil
}

// ReleaseBody returns what the request holds of the JSON budget; the proxy
// calls it once the handler is done with the decoded body.
func ReleaseBody(c *fiber.Ctx) {
	if l, ok := c.Locals(leaseKey{}).(*lease); ok && l.held > 0 {
		l.b.give(l.held)
		l.held = 0
	}
}

// ReadBody reads a whole (JSON) request body, refusing more than limit
// bytes. It reads from the request stream (fiber's StreamRequestBody),
// allocates a body of known length once, grows a chunked one step by step,
// and charges anything above 64 KiB to the JSON budget, waiting for room.
func ReadBody(c *fiber.Ctx, limit int64) ([]byte, *Error) {
	req := c.Request()
	if !req.IsBodyStream() {
		body := req.Body()
		if int64(len(body)) > limit {
			return nil, Errorf(InvalidParameterValue, "Request body too large (limit %d bytes).", limit)
		}
		return body, nil
	}
	var budget *Budget
	if l := limitsOf(c); l != nil {
		budget = l.JSON
	}
	r := RequestBody(c)
	cl := int64(req.Header.ContentLength())
	if cl > limit {
		LingerAfterAnswer(c)
		return nil, Errorf(InvalidParameterValue, "Request body too large: %d bytes (limit %d).", cl, limit)
	}
	if cl >= 0 {
		if budget != nil && cl > smallBody {
			if werr := budget.acquire(c, bodyWeight(cl)); werr != nil {
				LingerAfterAnswer(c) // the 503 must reach a client still sending
				return nil, werr
			}
		}
		data := make([]byte, cl)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, readError(err)
		}
		return data, nil
	}
	// Chunked: grow by doubling, paying for each growth before making it.
	data := make([]byte, 0, 4<<10)
	charged := int64(0)
	for {
		if len(data) == cap(data) {
			if int64(len(data)) > limit {
				LingerAfterAnswer(c)
				return nil, Errorf(InvalidParameterValue, "Request body too large (limit %d bytes).", limit)
			}
			next := min(int64(2*cap(data)), limit+1)
			if budget != nil && next > smallBody {
				// Never ask for more than the whole budget in total.
				want := min(bodyWeight(next), budget.size)
				if werr := budget.acquire(c, want-charged); werr != nil {
					LingerAfterAnswer(c) // the 503 must reach a client still sending
					return nil, werr
				}
				charged = want
			}
			grown := make([]byte, len(data), next)
			copy(grown, data)
			data = grown
		}
		n, err := r.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, readError(err)
		}
	}
	if int64(len(data)) > limit {
		return nil, Errorf(InvalidParameterValue, "Request body too large (limit %d bytes).", limit)
	}
	return data, nil
}

func readError(err error) *Error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Code: BadRequest, Message: "The request body ended before its announced Content-Length.", Cause: err}
	}
	return bodyError(err)
}

// errTooSlow is the cause of a *BodyError for a body below the minimum
// rate.
var errTooSlow = errors.New("request body below the minimum rate")

// bodyError is the answer to a *BodyError.
func bodyError(err error) *Error {
	var be *BodyError
	if errors.As(err, &be) {
		switch {
		case be.Stalled:
			return &Error{Code: BadRequest, Message: fmt.Sprintf("The request body stalled: no data for %s.", be.After), Cause: err}
		case be.Slow:
			return &Error{Code: BadRequest, Message: fmt.Sprintf("The request body arrived too slowly: %d bytes in %s, below the server's minimum of %d bytes per second.",
				be.Got, be.After.Round(time.Millisecond), be.MinRate), Cause: err}
		}
	}
	return &Error{Code: BadRequest, Message: "Could not read the request body: malformed or cut off.", Cause: err}
}
