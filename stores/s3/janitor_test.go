package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferryml/ferry/test/backends/s3srv"
	"github.com/ferryml/ferry/test/ferrytest"
)

var (
	errUnavailable = minio.ErrorResponse{Code: "ServiceUnavailable", StatusCode: 503, Message: "down"}
	errRefused     = &url.Error{Op: "Delete", URL: "http://127.0.0.1:9/b/k?uploadId=x", Err: syscall.ECONNREFUSED}
	errDenied      = minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403, Message: "Access Denied."}
	errNoUpload    = minio.ErrorResponse{Code: "NoSuchUpload", StatusCode: 404, Message: "gone"}
)

func TestAbortOutcome(t *testing.T) {
	tests := []struct {
		err  error
		want abortOutcome
	}{
		{nil, abortDone},
		{errNoUpload, abortDone},
		{fmt.Errorf("wrapped: %w", errNoUpload), abortDone},
		{errUnavailable, abortRetry},
		{minio.ErrorResponse{Code: "Weird", StatusCode: 502}, abortRetry},
		{minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}, abortRetry},
		{errRefused, abortRetry},
		{context.DeadlineExceeded, abortRetry},
		{context.Canceled, abortRetry},
		{errDenied, abortGiveUp},
		{minio.ErrorResponse{Code: "InvalidArgument", StatusCode: 400}, abortGiveUp},
		{errors.New("s3: refusing to send a request without the owner"), abortGiveUp},
	}
	for _, tt := range tests {
		if got := abortOutcomeOf(tt.err); got != tt.want {
			t.Errorf("abortOutcomeOf(%v) = %d; want %d", tt.err, got, tt.want)
		}
	}
}

func TestNextBackoff(t *testing.T) {
	var got []time.Duration
	for d := janitorMinBackoff; len(got) < 12; d = nextBackoff(d, janitorMaxBackoff) {
		got = append(got, d)
	}
	s := time.Second
	want := []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 64 * s, 128 * s, 256 * s, 300 * s, 300 * s, 300 * s}
	if !slices.Equal(got, want) {
		t.Fatalf("backoff sequence %v; want %v", got, want)
	}
}

// fakeAborts is an abort function whose results are scripted per upload
// id: the next len(fails[id]) attempts fail with those errors, then it
// succeeds. It records every call.
type fakeAborts struct {
	mu    sync.Mutex
	fails map[string][]error
	calls []string
}

func (f *fakeAborts) abort(ctx context.Context, obj, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, id)
	if errs := f.fails[id]; len(errs) > 0 {
		f.fails[id] = errs[1:]
		return errs[0]
	}
	return nil
}

func (f *fakeAborts) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// testJanitor is a janitor over f, logging into a buffer, whose waits
// are recorded and return at once, but not before gate is closed.
func testJanitor(f *fakeAborts) (j *janitor, logs *ferrytest.LogBuffer, gate chan struct{}, waits func() []time.Duration) {
	j = newJanitor("bucket", f.abort)
	logs = &ferrytest.LogBuffer{}
	j.log.Store(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	gate = make(chan struct{})
	var mu sync.Mutex
	var got []time.Duration
	j.after = func(d time.Duration) <-chan time.Time {
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
		<-gate
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	return j, logs, gate, func() []time.Duration { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }
}

// TestJanitorBackoff drives the retry loop without a server: the wait
// doubles after a round without progress and starts over after one with
// progress; a round stops at the first failure that may pass; the
// goroutine ends once the queue is empty.
func TestJanitorBackoff(t *testing.T) {
	s := time.Second
	tests := []struct {
		name      string
		fails     map[string]int // failed retries before success, per upload
		wantWaits []time.Duration
		wantCalls []string
	}{
		{"one upload", map[string]int{"a": 2}, []time.Duration{s, 2 * s, 4 * s}, []string{"a", "a", "a"}},
		{"progress resets the backoff", map[string]int{"a": 1, "b": 2},
			[]time.Duration{s, 2 * s, s, 2 * s}, []string{"a", "a", "b", "b", "b"}},
		{"capped", map[string]int{"a": 11},
			[]time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 64 * s, 128 * s, 256 * s, 300 * s, 300 * s, 300 * s},
			slices.Repeat([]string{"a"}, 12)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAborts{fails: map[string][]error{}}
			for id, n := range tt.fails {
				for i := range n {
					f.fails[id] = append(f.fails[id], []error{errUnavailable, errRefused, context.DeadlineExceeded}[i%3])
				}
			}
			j, logs, gate, waits := testJanitor(f)
			for _, id := range []string{"a", "b"} {
				if _, ok := tt.fails[id]; ok {
					j.failed("obj/"+id, id, errRefused)
				}
			}
			close(gate)
			waitFor(t, "the queue to empty", func() bool { return j.queued() == 0 })
			j.wg.Wait()
			if got := waits(); !slices.Equal(got, tt.wantWaits) {
				t.Errorf("waits %v; want %v", got, tt.wantWaits)
			}
			if got := f.called(); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("abort calls %v; want %v", got, tt.wantCalls)
			}
			j.mu.Lock()
			running := j.running
			j.mu.Unlock()
			if running {
				t.Error("the retry goroutine still runs with an empty queue")
			}
			if !strings.Contains(logs.String(), "aborted a failed multipart upload on retry") {
				t.Errorf("no success logged:\n%s", logs)
			}
			j.close()
		})
	}
}

// TestJanitorRealTimer runs the loop on real (short) timers.
func TestJanitorRealTimer(t *testing.T) {
	f := &fakeAborts{fails: map[string][]error{"a": {errUnavailable, errUnavailable}}}
	j := newJanitor("bucket", f.abort)
	j.log.Store(slog.New(slog.DiscardHandler))
	j.minBackoff, j.maxBackoff = time.Millisecond, 4*time.Millisecond
	j.failed("obj", "a", errRefused)
	waitFor(t, "the queue to empty", func() bool { return j.queued() == 0 })
	if got := f.called(); len(got) != 3 {
		t.Fatalf("abort calls %v; want 3", got)
	}
	j.close()
}

// TestJanitorQueue checks what is queued and the bound: transient
// failures only, no duplicates, the oldest dropped when full.
func TestJanitorQueue(t *testing.T) {
	f := &fakeAborts{fails: map[string][]error{}}
	j, logs, _, _ := testJanitor(f)
	j.after = func(time.Duration) <-chan time.Time { return nil } // no retry rounds
	j.capacity = 3

	j.failed("obj/x", "done", errNoUpload)
	j.failed("obj/x", "denied", errDenied)
	if n := j.queued(); n != 0 {
		t.Fatalf("%d queued after a NoSuchUpload and an AccessDenied; want 0", n)
	}
	if !strings.Contains(logs.String(), "upload_id=denied") || strings.Contains(logs.String(), "upload_id=done") {
		t.Errorf("want the refusal logged, the gone upload not:\n%s", logs)
	}
	for i := 1; i <= 5; i++ {
		j.failed("obj/x", fmt.Sprint(i), errUnavailable)
		j.failed("obj/x", fmt.Sprint(i), errUnavailable) // a duplicate
	}
	j.mu.Lock()
	var ids []string
	for _, p := range j.queue {
		ids = append(ids, p.id)
	}
	j.mu.Unlock()
	if !slices.Equal(ids, []string{"3", "4", "5"}) {
		t.Fatalf("queue %v; want the newest three [3 4 5]", ids)
	}
	if l := logs.String(); !strings.Contains(l, "queue full") || !strings.Contains(l, "upload_id=1") || !strings.Contains(l, "upload_id=2") {
		t.Errorf("drops not logged:\n%s", l)
	}
	// Close makes one last attempt for each.
	j.close()
	if got := f.called(); !slices.Equal(got, []string{"3", "4", "5"}) {
		t.Fatalf("abort calls at close %v; want [3 4 5]", got)
	}
	if n := j.queued(); n != 0 {
		t.Fatalf("%d queued after close", n)
	}
	j.close() // idempotent
}

// TestJanitorGivesUp: a retry refused (403) drops the upload; a retry
// answered NoSuchUpload counts as done.
func TestJanitorGivesUp(t *testing.T) {
	f := &fakeAborts{fails: map[string][]error{"a": {errDenied}, "b": {errNoUpload}}}
	j, logs, gate, _ := testJanitor(f)
	j.failed("obj/a", "a", errUnavailable)
	j.failed("obj/b", "b", errUnavailable)
	close(gate)
	waitFor(t, "the queue to empty", func() bool { return j.queued() == 0 })
	j.close()
	if l := logs.String(); !strings.Contains(l, "abort retry refused") || !strings.Contains(l, "upload_id=a") {
		t.Errorf("refusal not logged:\n%s", l)
	}
	if got := f.called(); len(got) != 2 {
		t.Errorf("abort calls %v; want one each", got)
	}
}

// TestJanitorClose: Close cancels an attempt in flight, tries once more
// within its timeout, logs what is left, and queues nothing afterwards.
func TestJanitorClose(t *testing.T) {
	started := make(chan struct{}, 10)
	hang := func(ctx context.Context, obj, id string) error { // S3 that never answers
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	j := newJanitor("bucket", hang)
	logs := &ferrytest.LogBuffer{}
	j.log.Store(slog.New(slog.NewTextHandler(logs, nil)))
	j.minBackoff = time.Millisecond
	j.closeTimeout = 100 * time.Millisecond
	j.failed("obj/a", "a", errRefused)
	j.failed("obj/b", "b", errRefused)
	<-started // the goroutine's attempt hangs

	begin := time.Now()
	j.close()
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("close took %v", d)
	}
	if len(started) != 1 {
		t.Errorf("%d attempts at close; want 1 (a round stops at the first failure)", len(started))
	}
	if n := j.queued(); n != 0 {
		t.Errorf("%d still queued after close", n)
	}
	l := logs.String()
	for _, id := range []string{"a", "b"} {
		if !strings.Contains(l, "store closing with a failed multipart upload not aborted") || !strings.Contains(l, "upload_id="+id) {
			t.Errorf("leftover %s not logged:\n%s", id, l)
		}
	}
	j.failed("obj/c", "c", errRefused)
	if n := j.queued(); n != 0 {
		t.Errorf("queued after close")
	}
	if !strings.Contains(logs.String(), "store is closed") {
		t.Errorf("failure after close not logged:\n%s", logs)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stopOnRead is an upload body that stops the server on its first read
// and then fails, so the Put fails with S3 down and its abort fails too.
type stopOnRead struct {
	srv  *s3srv.Server
	once sync.Once
}

func (r *stopOnRead) Read([]byte) (int, error) {
	r.once.Do(r.srv.Kill)
	return 0, errBody
}

// TestAbortJanitor runs against MinIO: a multipart Put fails while MinIO
// is down, so its abort fails and is queued; retries fail with the
// backoff doubling while MinIO stays down; once MinIO is back the next
// retry aborts the upload, and the queue empties.
func TestAbortJanitor(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	cfg := config(srv, bucket)
	cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logs := &ferrytest.LogBuffer{}
	s.SetLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	// The test drives the retry rounds: each wait reports its length and
	// ends when the test says so.
	waits, ticks := make(chan time.Duration), make(chan time.Time)
	s.janitor.after = func(d time.Duration) <-chan time.Time {
		select {
		case waits <- d:
		case <-s.janitor.stop:
		}
		return ticks
	}
	nextWait := func() time.Duration {
		t.Helper()
		select {
		case d := <-waits:
			return d
		case <-time.After(60 * time.Second):
			t.Fatal("the retry goroutine does not wait for its next round")
			return 0
		}
	}
	root := s3core(srv.Client(t))
	obj := testPrefix + "/janitor/big"
	// MinIO lists the uploads of exactly one key (the prefix is taken as
	// the key).
	uploads := func() []string {
		t.Helper()
		r, err := root.ListMultipartUploads(t.Context(), bucket, obj, "", "", "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, u := range r.Uploads {
			ids = append(ids, u.Key+" "+u.UploadID)
		}
		return ids
	}

	err = s.Put(t.Context(), "janitor/big", &stopOnRead{srv: srv}, 6<<20)
	if err == nil {
		t.Fatal("Put succeeded with the server down")
	}
	t.Logf("Put: %v", err)
	if n := s.janitor.queued(); n != 1 {
		t.Fatalf("%d aborts queued after a failed abort; want 1\n%s", n, logs)
	}
	s.janitor.mu.Lock()
	pending := s.janitor.queue[0]
	s.janitor.mu.Unlock()
	if pending.obj != obj {
		t.Fatalf("queued %q; want %q", pending.obj, obj)
	}
	if d := nextWait(); d != janitorMinBackoff {
		t.Fatalf("first wait %v; want %v", d, janitorMinBackoff)
	}

	// A retry while MinIO is down fails; the upload stays queued and the
	// next wait doubles.
	ticks <- time.Time{}
	if d := nextWait(); d != 2*janitorMinBackoff {
		t.Fatalf("wait after a failed retry %v; want %v", d, 2*janitorMinBackoff)
	}
	if n := s.janitor.queued(); n != 1 {
		t.Fatalf("%d queued after a failed retry; want 1", n)
	}

	// MinIO back: the upload is still open, until the next retry.
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	want := pending.obj + " " + pending.id
	if got := uploads(); !slices.Equal(got, []string{want}) {
		t.Fatalf("open uploads after the restart %v; want [%s]", got, want)
	}
	ticks <- time.Time{}
	waitFor(t, "the queue to empty", func() bool { return s.janitor.queued() == 0 })
	s.janitor.wg.Wait() // the goroutine ends with the queue empty
	if got := uploads(); len(got) != 0 {
		t.Fatalf("uploads still open after the retry: %v", got)
	}
	if l := logs.String(); !strings.Contains(l, "aborted a failed multipart upload on retry") || !strings.Contains(l, "attempts=3") {
		t.Errorf("success not logged as the third attempt:\n%s", l)
	}
	if strings.Contains(logs.String(), srv.SecretKey) {
		t.Error("the secret key was logged")
	}

	// And the store works again.
	if err := s.Put(t.Context(), "janitor/small", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
}

// TestStoreCloseAbortsQueued: Close's last attempt aborts what is queued
// when S3 is back by then.
func TestStoreCloseAbortsQueued(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	cfg := config(srv, bucket)
	cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLogger(slog.New(slog.DiscardHandler))
	s.janitor.after = func(time.Duration) <-chan time.Time { return nil } // no background rounds
	if err := s.Put(t.Context(), "janitor/big", &stopOnRead{srv: srv}, 6<<20); err == nil {
		t.Fatal("Put succeeded with the server down")
	}
	if n := s.janitor.queued(); n != 1 {
		t.Fatalf("%d queued; want 1", n)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := s3core(srv.Client(t)).ListMultipartUploads(t.Context(), bucket, testPrefix+"/janitor/big", "", "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Uploads) != 0 {
		t.Fatalf("%d uploads open after Close", len(r.Uploads))
	}
}

// TestJanitorCloseWaitsForFirstAbort: a first abort still running when the
// store closes (a Put cancelled by shutdown) is waited for; when it fails
// it is queued and tried once more by close instead of being cut off.
func TestJanitorCloseWaitsForFirstAbort(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	var mu sync.Mutex
	var calls int
	abort := func(ctx context.Context, obj, id string) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			close(started)
			<-release // S3 slow to answer the first abort, then down
			return errRefused
		}
		return nil // the retry at close succeeds
	}
	j := newJanitor("bucket", abort)
	j.log.Store(slog.New(slog.NewTextHandler(&ferrytest.LogBuffer{}, nil)))
	j.closeTimeout = 10 * time.Second
	first := make(chan struct{})
	go func() { j.abortNow(context.Background(), "obj/a", "a"); close(first) }()
	<-started
	closed := make(chan struct{})
	go func() { j.close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("close returned while the first abort was still running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-first
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("close did not return")
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Fatalf("%d abort attempts; want 2 (the first, then close's last try)", calls)
	}
	if n := j.queued(); n != 0 {
		t.Errorf("%d still queued after close", n)
	}
}
