package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	p := Policy{Target: 24 << 20, MinPercent: 50, MaxPercent: 800}
	for _, tc := range []struct {
		live, roots uint64
		want        int
	}{
		{0, 0, 600},              // nothing measured yet: the cap
		{1 << 20, 0, 600},        // 2300 %, capped where 4 MiB·GOGC/100 = Target
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
	// MaxPercent below the runtime-minimum cap wins; a target under 4 MiB
	// cannot push GOGC under MinPercent.
	if got := (Policy{Target: 64 << 20, MinPercent: 50, MaxPercent: 300}).Percent(1<<20, 0); got != 300 {
		t.Errorf("MaxPercent 300 under a 64 MiB target: %d", got)
	}
	if got := (Policy{Target: 1 << 20, MinPercent: 50, MaxPercent: 300}).Percent(1<<19, 0); got != 50 {
		t.Errorf("1 MiB target: %d; want MinPercent", got)
	}
}

// heapGoal is the runtime's current heap goal.
func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// waitAdjusted runs collections until the tuner has run twice more: a
// finalizer queued by a collection before the caller's change may run
// first, so only the second adjustment surely saw a collection after it.
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
	const target = 32 << 20
	tu := Start(Policy{Target: target, MinPercent: 50, MaxPercent: 800})
	checkSmall := func(when string) {
		t.Helper()
		waitAdjusted(t, tu)
		if p := CurrentPercent(); p < 300 {
			t.Fatalf("%s: runtime GOGC %d; want the tuner's, ≥ 300", when, p)
		}
		if g := heapGoal(); g < target*3/4 || g > target*11/10 {
			t.Fatalf("%s: heap goal %.1f MiB; want about the %d MiB target", when, float64(g)/(1<<20), target>>20)
		}
	}
	checkSmall("small live heap")
	for range 48 {
		retained = append(retained, make([]byte, 1<<20))
	}
	waitAdjusted(t, tu)
	if p := CurrentPercent(); p != 50 {
		t.Fatalf("48 MiB live against a 32 MiB target: runtime GOGC %d; want 50", p)
	}
	if g := heapGoal(); g > 80<<20 {
		t.Fatalf("48 MiB live: heap goal %.1f MiB; want about 1.5× live", float64(g)/(1<<20))
	}
	retained = nil
	checkSmall("after the live heap shrank")
	// A GOGC changed behind the tuner's back is corrected at the next
	// collection.
	debug.SetGCPercent(100)
	checkSmall("after GOGC was changed elsewhere")
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

// TestOneTunerAtATime: a second Start while a Tuner runs changes nothing
// and returns nil; after Stop a new one starts.
func TestOneTunerAtATime(t *testing.T) {
	defer debug.SetGCPercent(CurrentPercent())
	p := Policy{Target: 16 << 20, MinPercent: 50, MaxPercent: 400}
	first := Start(p)
	if first == nil {
		t.Fatal("Start with no tuner running returned nil")
	}
	if second := Start(p); second != nil {
		second.Stop()
		t.Fatal("a second Start while one runs returned a tuner")
	}
	first.Stop()
	again := Start(p)
	if again == nil {
		t.Fatal("Start after Stop returned nil")
	}
	again.Stop()
}
