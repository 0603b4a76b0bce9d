package sftp

import (
	"testing"

	"github.com/pkg/sftp"
)

// TestInFlightBudget: a transfer alone gets the whole budget, concurrent
// ones split it, none gets less than minShare (or the budget, when that is
// smaller), and ended transfers give their part back.
func TestInFlightBudget(t *testing.T) {
	c := &conn{sftp: &sftp.Client{}}
	b := &inFlightBudget{total: 64}
	var ends []func()
	var shares []int
	for range 10 {
		share, end := b.begin(c)
		shares = append(shares, share)
		ends = append(ends, end)
	}
	want := []int{64, 32, 21, 16, 12, 10, 9, 8, 8, 8}
	for i := range want {
		if shares[i] != want[i] {
			t.Fatalf("shares with 1..10 transfers = %v; want %v", shares, want)
		}
	}
	for _, end := range ends[1:] {
		end()
	}
	if share, end := b.begin(c); share != 32 {
		t.Errorf("with one transfer left, a new one gets %d; want 32", share)
	} else {
		end()
	}
	ends[0]()
	if b.active.Load() != 0 {
		t.Errorf("%d transfers still counted after all ended", b.active.Load())
	}

	small := &inFlightBudget{total: 4}
	s1, e1 := small.begin(c)
	s2, e2 := small.begin(c)
	e1()
	e2()
	if s1 != 4 || s2 != 4 {
		t.Errorf("budget 4: shares %d, %d; want 4, 4 (never more than the budget's own size as the floor)", s1, s2)
	}
}
