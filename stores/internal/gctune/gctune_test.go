package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	p := Policy{Target: 24 << 20, MinPercent: 50, MaxPercent: 800}
	for _, tc := range []struct {
		live, roots uint64
		want        int
	}{
		{0, 0, 800},              // nothing measured yet
		{1 << 20, 0, 800},        // 2300 % clamped
		{8 << 20, 0, 200},        // 8 + 16 = 24
		{6 << 20, 2 << 20, 225},  // roots count in the pacer's base
		{14 << 20, 0, 71},        // 14 + 10 = 24
		{20 << 20, 0, 50},        // 20 % clamped up
		{24 << 20, 0, 50},        // at the target
		{100 << 20, 1 << 20, 50}, // far above: never a thrashing goal
	} {
		if got := p.Percent(tc.live, tc.roots); got != tc.want {
			t.Errorf("Percent(%d MiB, %d MiB) = %d; want %d", tc.live>>20, tc.roots>>20, got, tc.want)
		}
	}
}

// waitAdjusted runs collections until the tuner has run after one more.
func waitAdjusted(t *testing.T, tu *Tuner) {
	t.Helper()
	n := tu.Adjustments()
	deadline := time.Now().Add(10 * time.Second)
	for tu.Adjustments() < n+2 {
		if time.Now().After(deadline) {
			t.Fatal("the tuner did not run after a collection")
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

var retained [][]byte

// TestTunerFollowsLiveHeap: a small live heap gets a high GOGC, a live
// heap above the target MinPercent, and Stop restores the GOGC from
// before.
func TestTunerFollowsLiveHeap(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	tu := Start(Policy{Target: 32 << 20, MinPercent: 50, MaxPercent: 800})
	waitAdjusted(t, tu)
	if p := tu.Percent(); p < 300 {
		t.Fatalf("GOGC %d with a small live heap against a 32 MiB target; want ≥ 300", p)
	}
	for range 48 {
		retained = append(retained, make([]byte, 1<<20))
	}
	waitAdjusted(t, tu)
	if p := tu.Percent(); p != 50 {
		t.Fatalf("GOGC %d with 48 MiB live against a 32 MiB target; want 50", p)
	}
	retained = nil
	waitAdjusted(t, tu)
	if p := tu.Percent(); p < 300 {
		t.Fatalf("GOGC %d after the live heap shrank; want ≥ 300 again", p)
	}
	tu.Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC %d after Stop; want 100", got)
	}
	n := tu.Adjustments()
	for range 3 {
		runtime.GC()
	}
	time.Sleep(10 * time.Millisecond)
	if tu.Adjustments() != n {
		t.Fatal("the tuner ran after Stop")
	}
}

var sink []byte

// collections allocates 512 MiB of short-lived 32 KiB buffers (as the SFTP
// libraries do per packet) next to 4 MiB of live data and returns how
// many collections that took.
func collections() uint32 {
	live := make([][]byte, 4)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	before := m.NumGC
	for range 512 << 20 / (32 << 10) {
		sink = make([]byte, 32<<10)
	}
	runtime.ReadMemStats(&m)
	runtime.KeepAlive(live)
	return m.NumGC - before
}

// TestFewerCollections: against a small live heap the tuner collects far
// less often than the flat GOGC=50 it replaced, which is its point.
func TestFewerCollections(t *testing.T) {
	orig := debug.SetGCPercent(50)
	defer debug.SetGCPercent(orig)
	flat := collections()
	tu := Start(Policy{Target: 24 << 20, MinPercent: 50, MaxPercent: 800})
	waitAdjusted(t, tu)
	tuned := collections()
	tu.Stop()
	t.Logf("collections for 512 MiB of garbage: GOGC=50 %d, tuned %d", flat, tuned)
	if tuned*2 > flat {
		t.Fatalf("tuned %d collections, GOGC=50 %d: want at most half", tuned, flat)
	}
}
