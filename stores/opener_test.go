package stores

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeStore is a driver that counts its closes; scoped ones record their
// directory and own nothing.
type fakeStore struct {
	Store
	host, dir string
	closes    *atomic.Int32
	opened    *atomic.Int32
}

func (f *fakeStore) DriverName() string { return "fake" }

func (f *fakeStore) Close() error {
	if f.dir != "" {
		panic("a scoped view was closed")
	}
	if f.closes.Add(1) > f.opened.Load() {
		panic("closed more often than opened")
	}
	return nil
}

// scoperStore is a fakeStore that can scope.
type scoperStore struct{ *fakeStore }

func (s scoperStore) Scope(dir string) (Store, error) {
	c := *s.fakeStore
	c.dir = dir
	return &c, nil
}

var (
	fakeOnce                   sync.Once
	scopedOpened, scopedClosed atomic.Int32
	plainOpened, plainClosed   atomic.Int32
	lastPlainPath              atomic.Value
)

func registerFakes() {
	fakeOnce.Do(func() {
		Register("ferrytest-scoped", func(_ context.Context, u *url.URL) (Store, error) {
			if u.Path != "" {
				return nil, fmt.Errorf("shared store built for %q, want the authority only", u)
			}
			scopedOpened.Add(1)
			return scoperStore{&fakeStore{host: u.Host, closes: &scopedClosed, opened: &scopedOpened}}, nil
		})
		Register("ferrytest-plain", func(_ context.Context, u *url.URL) (Store, error) {
			plainOpened.Add(1)
			lastPlainPath.Store(u.Path)
			return &fakeStore{host: u.Host, closes: &plainClosed, opened: &plainOpened}, nil
		})
	})
}

func newTestOpener(t *testing.T) *Opener {
	registerFakes()
	return NewOpener(NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOpenerSharesOneStorePerAuthority: runs' roots under one bucket are
// views of one store, opened once; beyond maxSharedStores authorities the
// least recently used store is closed, but only once no request holds it;
// Close closes the rest, each exactly once.
func TestOpenerSharesOneStorePerAuthority(t *testing.T) {
	ctx := context.Background()
	o := newTestOpener(t)
	opened0, closed0 := scopedOpened.Load(), scopedClosed.Load()

	held, releaseHeld, err := o.Acquire(ctx, "ferrytest-scoped://b0/exp/1/run/artifacts?x=1")
	if err != nil {
		t.Fatal(err)
	}
	if v := held.Unwrap().(*fakeStore); v.host != "b0" || v.dir != "exp/1/run/artifacts" {
		t.Fatalf("scoped view %+v", v)
	}
	for i := 0; i < 100; i++ {
		s, release, err := o.Acquire(ctx, fmt.Sprintf("ferrytest-scoped://b0/exp/1/run%d/artifacts?x=1", i))
		if err != nil {
			t.Fatal(err)
		}
		if d := s.Unwrap().(*fakeStore).dir; d != fmt.Sprintf("exp/1/run%d/artifacts", i) {
			t.Fatalf("dir %q", d)
		}
		release()
		release() // a second call does nothing
	}
	if n := scopedOpened.Load() - opened0; n != 1 {
		t.Fatalf("100 runs of one bucket opened %d stores, want 1", n)
	}

	// More buckets than the cache holds: b0 falls out while held.
	extra := maxSharedStores + 10
	for i := 1; i <= extra; i++ {
		_, release, err := o.Acquire(ctx, fmt.Sprintf("ferrytest-scoped://b%d/p", i))
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	// 11 evicted: b0 (held, stays open) and b1..b10 (closed).
	waitFor(t, "ten evicted stores closed", func() bool { return scopedClosed.Load()-closed0 == 10 })
	time.Sleep(20 * time.Millisecond)
	if n := scopedClosed.Load() - closed0; n != 10 {
		t.Fatalf("%d stores closed, want 10 (the held one must stay open)", n)
	}
	releaseHeld()
	waitFor(t, "the held store closed once released", func() bool { return scopedClosed.Load()-closed0 == 11 })

	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if opened, closed := scopedOpened.Load()-opened0, scopedClosed.Load()-closed0; opened != closed || opened != int32(extra+1) {
		t.Fatalf("opened %d, closed %d, want %d each", opened, closed, extra+1)
	}
	if _, _, err := o.Acquire(ctx, "ferrytest-scoped://b0/p"); err == nil {
		t.Fatal("Acquire after Close succeeded")
	}
}

// TestOpenerNonScoperPerRequest: a driver that cannot scope gets a store
// per request for the full URI, closed on release.
func TestOpenerNonScoperPerRequest(t *testing.T) {
	ctx := context.Background()
	o := newTestOpener(t)
	defer o.Close()
	opened0, closed0 := plainOpened.Load(), plainClosed.Load()
	for i := 0; i < 5; i++ {
		_, release, err := o.Acquire(ctx, fmt.Sprintf("ferrytest-plain://h/p/%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if p := lastPlainPath.Load(); i > 0 && p != fmt.Sprintf("/p/%d", i) {
			t.Fatalf("per-request store built for path %v", p)
		}
		release()
	}
	waitFor(t, "every store closed", func() bool { return plainClosed.Load()-closed0 == plainOpened.Load()-opened0 })
	// 5 per request, plus the probe of the authority that found no Scoper.
	if n := plainOpened.Load() - opened0; n != 6 {
		t.Fatalf("opened %d stores, want 6", n)
	}
}

// TestOpenerConcurrentAcquire runs acquires and releases over more
// authorities than the cache holds from many goroutines (for the race
// detector), then checks every store was closed exactly once.
func TestOpenerConcurrentAcquire(t *testing.T) {
	ctx := context.Background()
	o := newTestOpener(t)
	opened0, closed0 := scopedOpened.Load(), scopedClosed.Load()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				s, release, err := o.Acquire(ctx, fmt.Sprintf("ferrytest-scoped://c%d/r%d", (g*7+i)%(2*maxSharedStores), i))
				if err != nil {
					t.Error(err)
					return
				}
				_ = s.Unwrap().(*fakeStore).host
				release()
			}
		}(g)
	}
	wg.Wait()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if opened, closed := scopedOpened.Load()-opened0, scopedClosed.Load()-closed0; opened != closed {
		t.Fatalf("opened %d, closed %d", opened, closed)
	}
}
