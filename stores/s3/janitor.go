package s3

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/stores"
)

// The abort janitor
//
// A proxied multipart Put that fails is aborted at once (abortQuietly).
// When that abort fails too, typically because S3 is what failed, the
// incomplete upload would stay in the bucket, invisible, costing storage
// until a lifecycle rule removes it. So an abort that fails for a reason
// that may pass (network, 5xx, a timeout) is queued here and retried by
// one background goroutine with exponential backoff until S3 aborts it or
// answers that the upload is gone. A refusal (403, other 4xx) is logged
// and dropped: retrying would not help.
//
// The queue is bounded (janitorQueueCap; when full the oldest entry is
// dropped, logged) and lives in memory only: a restart forgets it, which
// is what the lifecycle rule is for. The goroutine runs only while the
// queue holds something. Close stops it and makes one last, short attempt
// for what is left, logging each upload it could not abort.

const (
	janitorQueueCap     = 1024
	janitorMinBackoff   = time.Second
	janitorMaxBackoff   = 5 * time.Minute
	janitorCloseTimeout = 5 * time.Second
)

// pendingAbort is an upload whose abort failed and is to be retried.
type pendingAbort struct {
	obj, id  string
	attempts int // failed attempts so far, the first one included
	since    time.Time
}

// abortOutcome is what one abort attempt means for its queue entry.
type abortOutcome int

const (
	abortDone   abortOutcome = iota // aborted, or already gone
	abortRetry                      // may pass: keep it
	abortGiveUp                     // refused: drop it
)

// abortOutcomeOf classifies the result of an abort.
func abortOutcomeOf(err error) abortOutcome {
	err = classify(err)
	switch {
	case err == nil, errors.Is(err, stores.ErrNotFound): // NoSuchUpload: already aborted or completed
		return abortDone
	case errors.Is(err, stores.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return abortRetry
	default:
		return abortGiveUp
	}
}

// nextBackoff doubles d, capped at max.
func nextBackoff(d, max time.Duration) time.Duration {
	if d >= max/2 {
		return max
	}
	return 2 * d
}

// janitor retries failed aborts of one store's multipart uploads.
type janitor struct {
	bucket string
	abort  func(ctx context.Context, obj, id string) error
	log    atomic.Pointer[slog.Logger]

	// Set before first use (tests shorten them).
	capacity       int
	minBackoff     time.Duration
	maxBackoff     time.Duration
	attemptTimeout time.Duration
	closeTimeout   time.Duration
	after          func(time.Duration) <-chan time.Time

	ctx    context.Context // cancelled by close: ends an attempt in flight
	cancel context.CancelFunc
	stop   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	queue    []pendingAbort // oldest first
	running  bool           // the retry goroutine runs
	closed   bool
	inflight int // first aborts running in abortNow; close waits for them
}

func newJanitor(bucket string, abort func(ctx context.Context, obj, id string) error) *janitor {
	j := &janitor{
		bucket:         bucket,
		abort:          abort,
		capacity:       janitorQueueCap,
		minBackoff:     janitorMinBackoff,
		maxBackoff:     janitorMaxBackoff,
		attemptTimeout: abortTimeout,
		closeTimeout:   janitorCloseTimeout,
		after:          time.After,
		stop:           make(chan struct{}),
	}
	j.ctx, j.cancel = context.WithCancel(context.Background())
	j.log.Store(slog.Default())
	return j
}

func (j *janitor) logger() *slog.Logger { return j.log.Load() }

// queued is the number of uploads waiting for a retry.
func (j *janitor) queued() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.queue)
}

// abortNow is the first abort of a failed upload (Store.abortQuietly):
// one attempt within attemptTimeout, and on failure failed. close waits
// (within closeTimeout) for the attempts in progress, so an abort started
// by a Put that shutdown cancelled is queued and tried once more instead
// of being cut off when the process exits.
func (j *janitor) abortNow(ctx context.Context, obj, id string) {
	j.mu.Lock()
	j.inflight++
	j.mu.Unlock()
	defer func() {
		j.mu.Lock()
		j.inflight--
		j.mu.Unlock()
	}()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.attemptTimeout)
	defer cancel()
	if err := j.abort(actx, obj, id); err != nil {
		j.failed(obj, id, err)
	}
}

// waitInflight waits until no abortNow runs, or until the deadline.
func (j *janitor) waitInflight(deadline time.Time) {
	for {
		j.mu.Lock()
		n := j.inflight
		j.mu.Unlock()
		if n == 0 || !time.Now().Before(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// failed takes an abort that just failed with err: it queues the upload
// for a retry when err may pass, and logs it otherwise.
func (j *janitor) failed(obj, id string, err error) {
	log := j.logger().With("bucket", j.bucket, "key", obj, "upload_id", id)
	switch abortOutcomeOf(err) {
	case abortDone:
		return
	case abortGiveUp:
		log.Error("s3: could not abort a failed multipart upload; it stays until a lifecycle rule removes it", "err", err)
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		log.Error("s3: could not abort a failed multipart upload and the store is closed; it stays until a lifecycle rule removes it", "err", err)
		return
	}
	for _, p := range j.queue {
		if p.id == id && p.obj == obj {
			return
		}
	}
	if len(j.queue) >= j.capacity {
		old := j.queue[0]
		j.queue = j.queue[1:]
		j.logger().Error("s3: abort retry queue full; dropping the oldest upload, it stays until a lifecycle rule removes it",
			"bucket", j.bucket, "key", old.obj, "upload_id", old.id, "attempts", old.attempts, "capacity", j.capacity)
	}
	j.queue = append(j.queue, pendingAbort{obj: obj, id: id, attempts: 1, since: time.Now()})
	log.Warn("s3: could not abort a failed multipart upload; retrying in the background", "err", err, "queued", len(j.queue))
	if !j.running {
		j.running = true
		j.wg.Add(1)
		go j.run()
	}
}

// run retries the queued aborts until the queue is empty or the janitor
// closes: a round tries the queue oldest first and ends at the first
// failure that may pass (S3 is likely still down). The wait before the
// next round doubles after a round without progress, up to maxBackoff,
// and starts over at minBackoff after one with progress.
func (j *janitor) run() {
	defer j.wg.Done()
	backoff := j.minBackoff
	for {
		select {
		case <-j.stop:
			return
		case <-j.after(backoff):
		}
		progress := j.round(j.ctx)
		j.mu.Lock()
		if len(j.queue) == 0 || j.closed {
			j.running = false
			j.mu.Unlock()
			return
		}
		j.mu.Unlock()
		if progress {
			backoff = j.minBackoff
		} else {
			backoff = nextBackoff(backoff, j.maxBackoff)
		}
	}
}

// round tries each upload queued at its start, oldest first, and stops at
// the first failure that may pass. It reports whether any entry left the
// queue.
func (j *janitor) round(ctx context.Context) (progress bool) {
	j.mu.Lock()
	batch := append([]pendingAbort(nil), j.queue...)
	j.mu.Unlock()
	for _, p := range batch {
		if ctx.Err() != nil {
			return progress
		}
		actx, cancel := context.WithTimeout(ctx, j.attemptTimeout)
		err := j.abort(actx, p.obj, p.id)
		cancel()
		log := j.logger().With("bucket", j.bucket, "key", p.obj, "upload_id", p.id)
		switch abortOutcomeOf(err) {
		case abortDone:
			if j.remove(p) {
				progress = true
				log.Info("s3: aborted a failed multipart upload on retry", "attempts", p.attempts+1, "after", time.Since(p.since).Round(time.Millisecond).String())
			}
		case abortGiveUp:
			if j.remove(p) {
				progress = true
				log.Error("s3: abort retry refused; the upload stays until a lifecycle rule removes it", "attempts", p.attempts+1, "err", err)
			}
		default:
			n := j.noteFailure(p)
			log.Debug("s3: abort retry failed; will try again", "attempts", n, "err", err)
			return progress
		}
	}
	return progress
}

// remove takes p out of the queue, reporting whether it was still there
// (a full queue may have dropped it meanwhile).
func (j *janitor) remove(p pendingAbort) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, q := range j.queue {
		if q.id == p.id && q.obj == p.obj {
			j.queue = append(j.queue[:i], j.queue[i+1:]...)
			return true
		}
	}
	return false
}

// noteFailure counts a failed retry of p and returns its attempts so far.
func (j *janitor) noteFailure(p pendingAbort) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := range j.queue {
		if j.queue[i].id == p.id && j.queue[i].obj == p.obj {
			j.queue[i].attempts++
			return j.queue[i].attempts
		}
	}
	return p.attempts + 1
}

// close waits (within closeTimeout) for first aborts still running in
// abortNow, stops the retry goroutine (cancelling an attempt in flight),
// then tries what is queued once more within closeTimeout and logs each
// upload still left. It is idempotent.
func (j *janitor) close() {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return
	}
	j.mu.Unlock()
	// First aborts still running get their chance to finish or be queued.
	j.waitInflight(time.Now().Add(j.closeTimeout))
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return
	}
	j.closed = true
	j.mu.Unlock()
	close(j.stop)
	j.cancel()
	j.wg.Wait()

	if j.queued() == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), j.closeTimeout)
	defer cancel()
	j.round(ctx)
	j.mu.Lock()
	left := j.queue
	j.queue = nil
	j.mu.Unlock()
	for _, p := range left {
		j.logger().Error("s3: store closing with a failed multipart upload not aborted; it stays until a lifecycle rule removes it",
			"bucket", j.bucket, "key", p.obj, "upload_id", p.id, "attempts", p.attempts, "since", p.since.UTC().Format(time.RFC3339))
	}
}
