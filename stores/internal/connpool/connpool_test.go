package connpool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fake struct {
	id     int
	closed atomic.Bool
}

func newPool(max int, idle time.Duration) (*Pool[*fake], *atomic.Int32, *sync.Map) {
	var dials atomic.Int32
	var all sync.Map
	p := New(max, idle, func(ctx context.Context) (*fake, error) {
		f := &fake{id: int(dials.Add(1))}
		all.Store(f.id, f)
		return f, nil
	}, func(f *fake) { f.closed.Store(true) })
	return p, &dials, &all
}

func TestBoundAndReuse(t *testing.T) {
	p, dials, _ := newPool(2, time.Minute)
	ctx := context.Background()
	a, _ := p.Get(ctx)
	b, _ := p.Get(ctx)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.Get(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third Get with two out = %v; want it to wait", err)
	}
	a.Release()
	c, err := p.Get(ctx)
	if err != nil || c.C != a.C || !c.Reused {
		t.Fatalf("Get after Release = %v, %v; want the released connection back", c, err)
	}
	b.Discard()
	if !b.C.closed.Load() {
		t.Fatal("Discard did not close")
	}
	d, _ := p.GetFresh(ctx)
	if d.Reused || dials.Load() != 3 {
		t.Fatalf("GetFresh reused a connection or did not dial (dials %d)", dials.Load())
	}
	c.Release()
	d.Release()
	// Idle plus checked out never exceed the bound: GetFresh closes an
	// idle one.
	e, _ := p.GetFresh(ctx)
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if idle+1 > 2 {
		t.Fatalf("%d idle + 1 out exceeds the bound of 2", idle)
	}
	e.Release()
	p.Close()
	if _, err := p.Get(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v; want ErrClosed", err)
	}
}

func TestIdleConnectionsAreReaped(t *testing.T) {
	p, _, all := newPool(4, 30*time.Millisecond)
	ctx := context.Background()
	var out []*Conn[*fake]
	for range 3 {
		c, _ := p.Get(ctx)
		out = append(out, c)
	}
	for _, c := range out {
		c.Release()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		all.Range(func(_, v any) bool {
			if !v.(*fake).closed.Load() {
				n++
			}
			return true
		})
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections still open long after the idle timeout", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKeepAlive: idle connections are pinged while quiet, a failing ping
// closes its connection, a checked-out one is not pinged, and pinging
// stops at maxIdle.
func TestKeepAlive(t *testing.T) {
	p, _, all := newPool(2, 400*time.Millisecond)
	var pings sync.Map // id -> *atomic.Int32
	var bad atomic.Int32
	p.SetKeepAlive(20*time.Millisecond, func(f *fake) error {
		n, _ := pings.LoadOrStore(f.id, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		if int32(f.id) == bad.Load() {
			return errors.New("server gone")
		}
		return nil
	})
	ctx := context.Background()
	a, _ := p.Get(ctx)
	b, _ := p.Get(ctx)
	bad.Store(int32(b.C.id))
	a.Release()
	b.Release()
	count := func(id int) int32 {
		n, ok := pings.Load(id)
		if !ok {
			return 0
		}
		return n.(*atomic.Int32).Load()
	}
	time.Sleep(150 * time.Millisecond)
	if n := count(a.C.id); n < 2 {
		t.Fatalf("healthy idle connection pinged %d times in 150 ms with a 20 ms keep-alive", n)
	}
	if count(b.C.id) != 1 || !b.C.closed.Load() {
		t.Fatalf("connection whose ping failed: pinged %d times, closed %v; want once, closed", count(b.C.id), b.C.closed.Load())
	}
	if a.C.closed.Load() {
		t.Fatal("healthy connection closed before maxIdle")
	}
	c, err := p.Get(ctx)
	if err != nil || c.C != a.C {
		t.Fatalf("Get = %v, %v; want the pinged connection", c, err)
	}
	// Checked out: not pinged.
	before := count(a.C.id)
	time.Sleep(80 * time.Millisecond)
	if count(a.C.id) != before {
		t.Fatal("a checked-out connection was pinged")
	}
	c.Release()
	// Pings do not keep it past maxIdle.
	deadline := time.Now().Add(5 * time.Second)
	for !a.C.closed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("a pinged connection outlived maxIdle by far")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n := 0
	all.Range(func(_, v any) bool {
		if !v.(*fake).closed.Load() {
			n++
		}
		return true
	})
	if n != 0 {
		t.Fatalf("%d connections open after maxIdle", n)
	}
}
