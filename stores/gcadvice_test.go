package stores

import (
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/ferryml/ferry/stores/internal/gctune"
)

// advisingStore is a driver advising a collector policy.
type advisingStore struct {
	Store
	advice GCAdvice
}

func (a advisingStore) GCAdvice() GCAdvice { return a.advice }

// TestApplyGCAdvice: the destination's advice is applied through wrappers
// and stopping it restores GOGC; GOGC or GOMEMLIMIT in the environment
// wins, a store without advice (or a nonsensical one) changes nothing.
func TestApplyGCAdvice(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	noEnv := func(string) string { return "" }
	good := GCAdvice{HeapTarget: 1 << 40, MinPercent: 37, MaxPercent: 137}

	wrapped := Instrument(advisingStore{advice: good}, "fake", nil, slog.New(slog.DiscardHandler))
	a, stop, ok := ApplyGCAdvice(wrapped, noEnv)
	if !ok || a != good {
		t.Fatalf("ApplyGCAdvice = %+v, %v; want %+v, true", a, ok, good)
	}
	// A tiny live heap against a 1 TiB target: the tuner sets MaxPercent.
	if got := gctune.CurrentPercent(); got != 137 {
		t.Errorf("GOGC is %d under the advice; want 137", got)
	}
	stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC is %d after stop; want the 100 from before", got)
	}

	for name, tc := range map[string]struct {
		s      Store
		getenv func(string) string
	}{
		"GOGC set by the operator": {advisingStore{advice: good}, func(k string) string {
			if k == "GOGC" {
				return "200"
			}
			return ""
		}},
		"GOMEMLIMIT set by the operator": {advisingStore{advice: good}, func(k string) string {
			if k == "GOMEMLIMIT" {
				return "28MiB"
			}
			return ""
		}},
		"no advice":      {&fakeStore{}, noEnv},
		"zero advice":    {advisingStore{}, noEnv},
		"max below min":  {advisingStore{advice: GCAdvice{HeapTarget: 1 << 20, MinPercent: 50, MaxPercent: 40}}, noEnv},
		"no heap target": {advisingStore{advice: GCAdvice{MinPercent: 50, MaxPercent: 400}}, noEnv},
	} {
		if a, stop, ok := ApplyGCAdvice(tc.s, tc.getenv); ok {
			stop()
			t.Errorf("%s: applied %+v", name, a)
		}
		if got := debug.SetGCPercent(100); got != 100 {
			t.Errorf("%s: GOGC changed to %d", name, got)
		}
	}
}
