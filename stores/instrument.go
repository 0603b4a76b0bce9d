package stores

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the Prometheus collectors shared by every instrumented
// store; the "store" label tells stores apart.
type Metrics struct {
	operations *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	bytes      *prometheus.CounterVec
	inFlight   *prometheus.GaugeVec
}

// Outcome label values of ferry_store_operations_total.
const (
	OutcomeSuccess     = "success"
	OutcomeNotFound    = "not_found"    // expected in normal use; not a failure
	OutcomeClientError = "client_error" // bad key, bad range, incomplete upload
	OutcomeCanceled    = "canceled"     // the client went away
	OutcomeError       = "error"        // the backend failed
)

// NewMetrics creates the store collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_store_operations_total",
			Help: "Store operations by store, operation and outcome (success, not_found, client_error, canceled, error).",
		}, []string{"store", "op", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_store_operation_duration_seconds",
			Help:    "Duration of store operations; for get and put the whole transfer.",
			Buckets: []float64{.001, .005, .02, .1, .5, 1, 5, 20, 60, 300, 1200},
		}, []string{"store", "op", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_store_transferred_bytes_total",
			Help: "Bytes moved through Ferry to (op=put) or from (op=get) a store, counted as they flow.",
		}, []string{"store", "op"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_store_in_flight_operations",
			Help: "Store operations currently running, transfers included.",
		}, []string{"store", "op"}),
	}
	reg.MustRegister(m.operations, m.duration, m.bytes, m.inFlight)
	return m
}

// Instrumented wraps a driver with key validation, metrics and logging. It
// is the only way the rest of Ferry touches a store.
type Instrumented struct {
	inner   Store
	name    string
	metrics *Metrics
	log     *slog.Logger
}

var _ Store = (*Instrumented)(nil)

// Instrument wraps s. name is the store label (usually the driver name).
func Instrument(s Store, name string, m *Metrics, log *slog.Logger) *Instrumented {
	return &Instrumented{inner: s, name: name, metrics: m, log: log.With("store", name)}
}

// Unwrap returns the driver.
func (s *Instrumented) Unwrap() Store { return s.inner }

// Name is the store label used in metrics and logs.
func (s *Instrumented) Name() string { return s.name }

// op tracks one operation from start to finish.
type op struct {
	s     *Instrumented
	name  string
	key   string
	start time.Time
}

func (s *Instrumented) begin(name, key string) *op {
	s.metrics.inFlight.WithLabelValues(s.name, name).Inc()
	return &op{s: s, name: name, key: key, start: time.Now()}
}

func (o *op) end(ctx context.Context, err error) error {
	outcome := Classify(ctx, err)
	o.s.metrics.inFlight.WithLabelValues(o.s.name, o.name).Dec()
	o.s.metrics.operations.WithLabelValues(o.s.name, o.name, outcome).Inc()
	o.s.metrics.duration.WithLabelValues(o.s.name, o.name, outcome).Observe(time.Since(o.start).Seconds())
	switch outcome {
	case OutcomeSuccess, OutcomeNotFound:
	case OutcomeError:
		o.s.log.ErrorContext(ctx, "store operation failed", "op", o.name, "key", o.key, "err", err)
	default:
		o.s.log.WarnContext(ctx, "store operation refused or cut off", "op", o.name, "key", o.key, "outcome", outcome, "err", err)
	}
	return err
}

// Classify names the outcome of an operation for metrics and logs.
func Classify(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return OutcomeSuccess
	case errors.Is(err, ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, context.Canceled) || (ctx != nil && ctx.Err() != nil):
		return OutcomeCanceled
	case errors.Is(err, ErrInvalidKey), errors.Is(err, ErrInvalidRange), errors.Is(err, ErrIsDir),
		errors.Is(err, ErrIncomplete), errors.Is(err, ErrTooLarge), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, ErrExists), errors.Is(err, ErrUnsupported):
		return OutcomeClientError
	default:
		return OutcomeError
	}
}

// Stat implements Store.
func (s *Instrumented) Stat(ctx context.Context, key string) (Entry, error) {
	o := s.begin("stat", key)
	key, err := CleanKey(key)
	if err != nil {
		return Entry{}, o.end(ctx, err)
	}
	e, err := s.inner.Stat(ctx, key)
	return e, o.end(ctx, err)
}

// List implements Store.
func (s *Instrumented) List(ctx context.Context, dir string, page ListPage) (Listing, error) {
	o := s.begin("list", dir)
	dir, err := CleanKey(dir)
	if err != nil {
		return Listing{}, o.end(ctx, err)
	}
	l, err := s.inner.List(ctx, dir, page)
	return l, o.end(ctx, err)
}

// Delete implements Store.
func (s *Instrumented) Delete(ctx context.Context, key string) error {
	o := s.begin("delete", key)
	key, err := CleanKey(key)
	if err != nil {
		return o.end(ctx, err)
	}
	return o.end(ctx, s.inner.Delete(ctx, key))
}

// Put implements Store; bytes are counted as they are read from r.
func (s *Instrumented) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	o := s.begin("put", key)
	key, err := CleanKey(key)
	if err != nil {
		return o.end(ctx, err)
	}
	if key == "" {
		return o.end(ctx, invalidKey(key, "an object needs a name"))
	}
	cr := &countingReader{r: r, counter: s.metrics.bytes.WithLabelValues(s.name, "put")}
	err = s.inner.Put(ctx, key, cr, size)
	cr.flush()
	return o.end(ctx, err)
}

// Open implements Store. The operation (and its duration) lasts until the
// returned reader is closed; bytes are counted as the caller reads them.
func (s *Instrumented) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Entry, error) {
	o := s.begin("get", key)
	key, err := CleanKey(key)
	if err != nil {
		return nil, Entry{}, o.end(ctx, err)
	}
	rc, e, err := s.inner.Open(ctx, key, offset, length)
	if err != nil {
		return nil, e, o.end(ctx, err)
	}
	return &countingReadCloser{
		countingReader: countingReader{r: rc, counter: s.metrics.bytes.WithLabelValues(s.name, "get")},
		closer:         rc,
		done:           func(err error) { o.end(ctx, err) },
		want:           expectedLength(e.Size, offset, length),
	}, e, nil
}

// Presigner returns the driver's presign capability, instrumented, if it
// has one.
func (s *Instrumented) Presigner() (Presigner, bool) {
	p, ok := As[Presigner](s.inner)
	if !ok {
		return nil, false
	}
	return instrumentedPresigner{s: s, p: p}, true
}

// Multiparter returns the driver's multipart capability, instrumented, if
// it has one.
func (s *Instrumented) Multiparter() (Multiparter, bool) {
	m, ok := As[Multiparter](s.inner)
	if !ok {
		return nil, false
	}
	return instrumentedMultiparter{s: s, m: m}, true
}

type instrumentedPresigner struct {
	s *Instrumented
	p Presigner
}

func (ip instrumentedPresigner) PresignGet(ctx context.Context, key string, ttl time.Duration) (PresignedRequest, error) {
	o := ip.s.begin("presign_get", key)
	key, err := CleanKey(key)
	if err != nil {
		return PresignedRequest{}, o.end(ctx, err)
	}
	r, err := ip.p.PresignGet(ctx, key, ttl)
	return r, o.end(ctx, err)
}

type instrumentedMultiparter struct {
	s *Instrumented
	m Multiparter
}

func (im instrumentedMultiparter) CreateMultipart(ctx context.Context, key string, numParts int) (MultipartUpload, error) {
	o := im.s.begin("mpu_create", key)
	key, err := CleanKey(key)
	if err != nil {
		return MultipartUpload{}, o.end(ctx, err)
	}
	u, err := im.m.CreateMultipart(ctx, key, numParts)
	return u, o.end(ctx, err)
}

func (im instrumentedMultiparter) CompleteMultipart(ctx context.Context, key, uploadID string, parts []CompletedPart) error {
	o := im.s.begin("mpu_complete", key)
	key, err := CleanKey(key)
	if err != nil {
		return o.end(ctx, err)
	}
	return o.end(ctx, im.m.CompleteMultipart(ctx, key, uploadID, parts))
}

func (im instrumentedMultiparter) AbortMultipart(ctx context.Context, key, uploadID string) error {
	o := im.s.begin("mpu_abort", key)
	key, err := CleanKey(key)
	if err != nil {
		return o.end(ctx, err)
	}
	return o.end(ctx, im.m.AbortMultipart(ctx, key, uploadID))
}

// expectedLength is how many bytes a ranged read should deliver.
func expectedLength(size, offset, length int64) int64 {
	rest := size - offset
	if length >= 0 && length < rest {
		return length
	}
	return rest
}

// countFlushEvery batches counter updates so the hot path stays cheap while
// Prometheus still sees large transfers progress.
const countFlushEvery = 4 << 20

type countingReader struct {
	r       io.Reader
	counter prometheus.Counter
	pending int64
	total   int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.add(n)
	return n, err
}

func (c *countingReader) add(n int) {
	c.pending += int64(n)
	c.total += int64(n)
	if c.pending >= countFlushEvery {
		c.flush()
	}
}

func (c *countingReader) flush() {
	if c.pending > 0 {
		c.counter.Add(float64(c.pending))
		c.pending = 0
	}
}

// countingReadCloser ends the "get" operation on Close: a download is a
// success only if the whole requested range was read.
type countingReadCloser struct {
	countingReader
	closer io.Closer
	done   func(error)
	want   int64
	failed error
	closed bool
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.countingReader.Read(p)
	if err != nil && err != io.EOF && c.failed == nil {
		c.failed = err
	}
	return n, err
}

// WriteTo lets io.Copy hand the driver's reader (e.g. an *os.File) to the
// destination's ReadFrom, so the kernel can move the bytes (sendfile)
// without passing them through a user-space buffer.
func (c *countingReadCloser) WriteTo(w io.Writer) (int64, error) {
	n, err := io.Copy(w, c.countingReader.r)
	c.pending += n
	c.total += n
	c.flush()
	if err != nil && c.failed == nil {
		c.failed = err
	}
	return n, err
}

func (c *countingReadCloser) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.flush()
	err := c.closer.Close()
	result := c.failed
	if result == nil && c.total < c.want {
		result = context.Canceled // the reader stopped early: the client went away
	}
	c.done(result)
	return err
}
