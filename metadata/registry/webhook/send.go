package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// maxResponseBody bounds what is read of a receiver's answer (kept for
// /test's response_body, discarded otherwise).
const maxResponseBody = 64 << 10

// retryStatuses are urllib3 Retry(status_forcelist=...) in upstream's
// delivery session; retryAfterStatuses honour Retry-After (urllib3's
// RETRY_AFTER_STATUS_CODES).
var (
	retryStatuses      = map[int]bool{429: true, 500: true, 502: true, 503: true, 504: true}
	retryAfterStatuses = map[int]bool{413: true, 429: true, 503: true}
)

// Target is one webhook to deliver to; Secret is the decrypted secret
// ("" sends no signature).
type Target struct {
	URL    string
	Secret string
}

// Result is the outcome of a delivery: the last answer's status and body,
// or the error that ended it.
type Result struct {
	Status int
	Body   string
	Err    error
	// retryAfter is the receiver's Retry-After, for the retry decision.
	retryAfter time.Duration
}

// Sender posts signed deliveries through an HTTP client whose dialer
// enforces the Guard, retrying as upstream's session does.
type Sender struct {
	guard  *Guard
	s      Settings
	client *http.Client
	log    *slog.Logger
	// Attempts counts HTTP attempts (first tries and retries).
	Attempts atomic.Int64
	// now and sleep are replaceable in tests.
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
}

// NewSender builds a sender for s with its own connection pool.
func NewSender(g *Guard, s Settings, log *slog.Logger) *Sender {
	dialer := &net.Dialer{Timeout: s.Timeout, Control: g.DialControl}
	tr := &http.Transport{
		// No proxy from the environment: the dialer must see the
		// receiver's address, not a proxy's.
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: s.Timeout,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	client := &http.Client{
		Transport: tr,
		Timeout:   s.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if !g.schemeAllowed(req.URL.Scheme) {
				return fmt.Errorf("%w: redirect to scheme %q", ErrNotPublic, req.URL.Scheme)
			}
			return nil
		},
	}
	return &Sender{guard: g, s: s, client: client, log: log, now: time.Now, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send delivers data for ev to t: one body, delivery id and timestamp
// for every attempt (as a urllib3 retry resends the same request),
// retried on a connection error or a retry status up to MaxRetries
// times. The URL is checked again first (the scheme list may have
// changed since it was saved).
func (s *Sender) Send(ctx context.Context, t Target, ev Event, data any) Result {
	if err := s.guard.CheckURL(ctx, t.URL); err != nil {
		return Result{Err: err}
	}
	body, err := Body(ev, data, s.now())
	if err != nil {
		return Result{Err: err}
	}
	id := uuid.NewString()
	ts := strconv.FormatInt(s.now().Unix(), 10)
	var sig string
	if t.Secret != "" {
		sig = Sign(t.Secret, id, ts, body)
	}
	var last Result
	for attempt := 0; ; attempt++ {
		last = s.attempt(ctx, t.URL, body, id, ts, sig)
		retry, wait := s.shouldRetry(last, attempt)
		if !retry {
			return last
		}
		if err := s.sleep(ctx, wait); err != nil {
			if last.Err == nil {
				last.Err = err
			}
			return last
		}
	}
}

func (s *Sender) attempt(ctx context.Context, url string, body []byte, id, ts, sig string) Result {
	s.Attempts.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Result{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderDeliveryID, id)
	req.Header.Set(HeaderTimestamp, ts)
	if sig != "" {
		req.Header.Set(HeaderSignature, sig)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return Result{Err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	res := Result{Status: resp.StatusCode, Body: string(b)}
	if retryAfterStatuses[resp.StatusCode] {
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), s.now())
	}
	return res
}

// shouldRetry decides on a retry after attempt (0-based) and the wait:
// SSRF refusals and cancellations never retry.
func (s *Sender) shouldRetry(r Result, attempt int) (bool, time.Duration) {
	if attempt >= s.s.MaxRetries {
		return false, 0
	}
	if r.Err != nil {
		if errors.Is(r.Err, ErrNotPublic) || errors.Is(r.Err, context.Canceled) || strings.Contains(r.Err.Error(), ErrNotPublic.Error()) {
			return false, 0
		}
	} else if !retryStatuses[r.Status] {
		return false, 0
	}
	if r.retryAfter > 0 {
		return true, min(r.retryAfter, s.s.BackoffMax)
	}
	// urllib3: no wait after the first failure, then factor*2^(n-1).
	n := attempt + 1
	if n <= 1 {
		return true, 0
	}
	wait := s.s.Backoff * time.Duration(1<<min(n-1, 20))
	if s.s.Jitter > 0 {
		wait += time.Duration(rand.Int64N(int64(s.s.Jitter)))
	}
	return true, min(wait, s.s.BackoffMax)
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
