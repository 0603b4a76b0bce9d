package wire

import (
	"context"
	"testing"
	"time"
)

// TestReserve: reservations wait for room and give it back once; a
// request larger than the budget takes the whole of it (so it runs,
// alone); the wait ends in a 503 error, counted, as does a cancelled
// request; a nil budget or nothing to reserve is free.
func TestReserve(t *testing.T) {
	b := NewBudget(100, 100*time.Millisecond)
	ctx := context.Background()

	r1, werr := b.Reserve(ctx, 60)
	if werr != nil || b.Held() != 60 {
		t.Fatalf("first reservation: %v, held %d", werr, b.Held())
	}
	start := time.Now()
	if _, werr := b.Reserve(ctx, 60); werr == nil || werr.Code != TemporarilyUnavailable {
		t.Fatalf("over the budget: %v; want TEMPORARILY_UNAVAILABLE", werr)
	}
	if time.Since(start) < 90*time.Millisecond {
		t.Error("refused before the wait ran out")
	}
	if b.Refused() != 1 || b.Held() != 60 {
		t.Errorf("after a refusal: refused %d, held %d", b.Refused(), b.Held())
	}

	r1()
	r1() // a second call gives nothing back twice
	if b.Held() != 0 {
		t.Fatalf("held %d after the release", b.Held())
	}

	// A waiter gets in as soon as the holder gives back (a budget with a
	// long wait, so a loaded machine cannot turn the wait into a refusal).
	lb := NewBudget(100, time.Minute)
	lr, _ := lb.Reserve(ctx, 60)
	got := make(chan *Error, 1)
	go func() {
		r, werr := lb.Reserve(ctx, 60)
		if werr == nil {
			defer r()
		}
		got <- werr
	}()
	select {
	case werr := <-got:
		t.Fatalf("the waiter got through a full budget: %v", werr)
	case <-time.After(20 * time.Millisecond):
	}
	lr()
	if werr := <-got; werr != nil {
		t.Fatalf("waiter after release: %v", werr)
	}

	// Larger than the budget: takes all of it.
	big, werr := b.Reserve(ctx, 1<<40)
	if werr != nil || b.Held() != 100 {
		t.Fatalf("oversize: %v, held %d; want the whole 100", werr, b.Held())
	}
	big()
	if b.Held() != 0 {
		t.Fatalf("held %d after every release", b.Held())
	}

	// Cancelled while waiting.
	hold, _ := b.Reserve(ctx, 100)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, werr := b.Reserve(cctx, 1); werr == nil {
		t.Error("a cancelled request got a reservation from a full budget")
	}
	hold()
	if b.Refused() != 2 {
		t.Errorf("refused %d; want 2 (the timeout and the cancellation)", b.Refused())
	}

	var none *Budget
	if r, werr := none.Reserve(ctx, 1<<30); werr != nil {
		t.Errorf("nil budget: %v", werr)
	} else {
		r()
	}
	if r, werr := b.Reserve(ctx, 0); werr != nil || b.Held() != 0 {
		t.Errorf("nothing to reserve: %v, held %d", werr, b.Held())
	} else {
		r()
	}
}
