// Package gctune steers the Go collector towards a fixed heap size while
// the live heap is small, and to a minimum GOGC once it is not.
//
// Why: a driver whose libraries allocate a fresh buffer per packet (SFTP)
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
	// MinPercent and MaxPercent bound the GOGC set (MaxPercent keeps an
	// almost empty heap from getting a goal of many times its size when
	// Target is far above it).
	MinPercent, MaxPercent int
}

// Percent is the GOGC that makes the next heap goal p.Target, given the
// live heap and the other roots the Go pacer counts (stacks and globals),
// clamped to [MinPercent, MaxPercent]. The pacer's goal is
// live + (live+roots)·GOGC/100.
func (p Policy) Percent(live, roots uint64) int {
	base := live + roots
	if base == 0 {
		return p.MaxPercent
	}
	if live >= p.Target {
		return p.MinPercent
	}
	pct := (p.Target - live) * 100 / base
	return int(min(max(pct, uint64(p.MinPercent)), uint64(p.MaxPercent)))
}

// Tuner re-applies its Policy after each garbage collection.
type Tuner struct {
	policy  Policy
	stopped atomic.Bool
	mu      sync.Mutex // serialises adjust with Stop's restore
	samples []metrics.Sample
	last    int
	applied atomic.Int64 // number of adjustments made, for tests
	orig    int
}

// sentinel is an object whose finalizer runs once per collection: it is
// unreachable after each re-arm, so the next cycle finds it and queues the
// finalizer, which arms it again. It holds a pointer so that it is not a
// tiny allocation (whose finalizers may never run).
type sentinel struct{ t *Tuner }

// Start sets GOGC for the current heap and keeps adjusting it after every
// collection until Stop.
func Start(p Policy) *Tuner {
	t := &Tuner{policy: p, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}}
	t.orig = debug.SetGCPercent(p.MaxPercent)
	t.last = p.MaxPercent
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
	pct := t.policy.Percent(v[0], v[1]+v[2])
	if pct != t.last {
		debug.SetGCPercent(pct)
		t.last = pct
	}
	t.applied.Add(1)
}

// Percent is the GOGC the tuner last set.
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Adjustments is how many times the tuner has run (once at Start, then
// once per collection).
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
}
