package stores

import (
	"log/slog"
	"runtime/debug"
	"testing"
)

// advisingStore is a driver advising a GOGC value.
type advisingStore struct {
	Store
	percent int
}

func (a advisingStore) GCPercent() int { return a.percent }

// TestApplyGCAdvice: the destination's advice is applied through wrappers,
// GOGC in the environment wins, a store without advice (or a nonsensical
// one) changes nothing.
func TestApplyGCAdvice(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	noEnv := func(string) string { return "" }

	wrapped := Instrument(advisingStore{percent: 37}, "fake", nil, slog.New(slog.DiscardHandler))
	if p, ok := ApplyGCAdvice(wrapped, noEnv); !ok || p != 37 {
		t.Fatalf("ApplyGCAdvice = %d, %v; want 37, true", p, ok)
	}
	if got := debug.SetGCPercent(100); got != 37 {
		t.Fatalf("GOGC is %d after the advice; want 37", got)
	}

	for name, tc := range map[string]struct {
		s      Store
		getenv func(string) string
	}{
		"GOGC set by the operator": {advisingStore{percent: 37}, func(k string) string {
			if k == "GOGC" {
				return "200"
			}
			return ""
		}},
		"GOMEMLIMIT set by the operator": {advisingStore{percent: 37}, func(k string) string {
			if k == "GOMEMLIMIT" {
				return "28MiB"
			}
			return ""
		}},
		"no advice":   {&fakeStore{}, noEnv},
		"zero advice": {advisingStore{percent: 0}, noEnv},
	} {
		if p, ok := ApplyGCAdvice(tc.s, tc.getenv); ok {
			t.Errorf("%s: applied %d", name, p)
		}
		if got := debug.SetGCPercent(100); got != 100 {
			t.Errorf("%s: GOGC changed to %d", name, got)
		}
	}
}
