// Package gctune steers the Go collector towards a fixed heap size while
// the live heap is small, and to a minimum GOGC once it is not.
//
// Why: a driver whose libraries allocate a fresh buffer per packet (SFTP,
// HDFS)
// makes garbage at the transfer rate while holding little live data. A
// fixed GOGC then either collects very often (a low GOGC against a few MiB
// of live heap) or lets the heap grow with the live data (GOGC=100 with
// eight transfers at once); a process-wide GOMEMLIMIT at the target makes
// the collector run constantly when a large request really holds that much.
// Recomputing GOGC after every collection gives the heap a fixed runway up
// to Target while the live heap is small, and GOGC=MinPercent (never a
// thrashing limit) once the live heap is large.
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Policy is what Start keeps GOGC at.
type Policy struct {
	// Target is the heap goal in bytes while the live heap leaves room for
	// it at a GOGC of at least MinPercent.
	Target uint64
	// MinPercent and MaxPercent bound the GOGC set. MaxPercent keeps an
	// almost empty heap from getting a goal of many times its size, and a
	// sudden jump of the live heap from getting a goal of MaxPercent times
	// the new size before the tuner has run (see Tuner).
	MinPercent, MaxPercent int
}

// runtimeMinHeap is the Go runtime's least heap goal at GOGC=100; it
// scales with GOGC (4 MiB × GOGC/100, mgcpacer.go), so a GOGC above
// Target·100/runtimeMinHeap would make the goal that minimum, above
// Target.
const runtimeMinHeap = 4 << 20

// Percent is the GOGC that makes the next heap goal p.Target, given the
// live heap and the other roots the Go pacer counts (stacks and globals),
// clamped to [MinPercent, MaxPercent] and to the GOGC whose runtime
// minimum heap is Target. The pacer's goal is
// live + (live+roots)·GOGC/100.
func (p Policy) Percent(live, roots uint64) int {
	hi := min(uint64(p.MaxPercent), max(p.Target*100/runtimeMinHeap, uint64(p.MinPercent)))
	base := live + roots
	if base == 0 {
		return int(hi)
	}
	if live >= p.Target {
		return p.MinPercent
	}
	pct := (p.Target - live) * 100 / base
	return int(min(max(pct, uint64(p.MinPercent)), hi))
}

// Tuner re-applies its Policy after garbage collections. One per process
// (Start refuses a second while one runs): GOGC is process-wide, and Stop
// restores the value found at Start, overwriting any change made since.
//
// The runtime fixes the next heap goal when a collection ends, with the
// GOGC in force then; the tuner runs shortly after (once the finalizer
// goroutine gets to it), so a live heap that jumps between two
// collections keeps, for one cycle, a goal of up to MaxPercent times its
// new size. That is why MaxPercent is capped (Percent) rather than left
// at whatever would reach Target.
type Tuner struct {
	policy  Policy
	stopped atomic.Bool
	mu      sync.Mutex // serialises adjust with Stop's restore
	samples []metrics.Sample
	applied atomic.Int64 // number of adjustments made, for tests
	orig    int
}

// sentinel is an object whose finalizer runs after a collection: it is
// unreachable after each re-arm, so the next cycle finds it and queues the
// finalizer, which arms it again. At most once per collection: cycles
// that end while the finalizer is queued or running do not queue it
// again. It holds a pointer so that it is not a tiny allocation (whose
// finalizers may never run).
type sentinel struct{ t *Tuner }

// running is set while a Tuner runs.
var running atomic.Bool

// Start sets GOGC for the current heap and keeps adjusting it after
// collections (at most once each) until Stop. It returns nil, and changes
// nothing, while another Tuner runs: two would fight over GOGC.
func Start(p Policy) *Tuner {
	if !running.CompareAndSwap(false, true) {
		return nil
	}
	t := &Tuner{policy: p, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}}
	t.orig = CurrentPercent()
	t.adjust()
	runtime.SetFinalizer(&sentinel{t: t}, onCollection)
	return t
}

func onCollection(s *sentinel) {
	if s.t.stopped.Load() {
		return
	}
	s.t.adjust()
	runtime.SetFinalizer(s, onCollection)
}

// adjust sets GOGC for the live heap the last collection measured.
func (t *Tuner) adjust() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Load() {
		return
	}
	metrics.Read(t.samples)
	var v [3]uint64
	for i, s := range t.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	// Set every time, not only when it changes, so that a GOGC changed
	// behind the tuner's back is corrected at the next collection. It is
	// cheap: the heap lock and a goal recomputation, no collection.
	debug.SetGCPercent(t.policy.Percent(v[0], v[1]+v[2]))
	t.applied.Add(1)
}

// CurrentPercent is the runtime's GOGC now (read without changing it, as
// debug.SetGCPercent cannot).
func CurrentPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 100
	}
	return int(s[0].Value.Uint64())
}

// Adjustments is how many times the tuner has run (once at Start, then
// at most once per collection).
func (t *Tuner) Adjustments() int64 { return t.applied.Load() }

// Stop ends the adjustments and restores the GOGC that was in force at
// Start.
func (t *Tuner) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(t.orig)
	running.Store(false)
}
