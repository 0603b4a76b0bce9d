package webhook

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs delivery jobs on a fixed number of workers from a bounded
// queue. Submit never blocks: with the queue full the job is dropped and
// counted, and a warning is logged at most once a second (so a flood
// cannot flood the log). Close drains what is queued for a bounded time.
type Pool struct {
	jobs    chan func(context.Context)
	ctx     context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup
	pending atomic.Int64
	closed  atomic.Bool
	log     *slog.Logger

	// Dropped counts jobs refused because the queue was full or the pool
	// closed.
	Dropped     atomic.Int64
	lastDropLog atomic.Int64
	sinceLog    atomic.Int64
}

// NewPool starts workers goroutines reading a queue of size queue.
func NewPool(workers, queue int, log *slog.Logger) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{jobs: make(chan func(context.Context), queue), ctx: ctx, cancel: cancel, log: log}
	for range workers {
		p.workers.Add(1)
		go p.work()
	}
	return p
}

func (p *Pool) work() {
	defer p.workers.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case job := <-p.jobs:
			p.run(job)
		}
	}
}

func (p *Pool) run(job func(context.Context)) {
	defer p.pending.Add(-1)
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("webhook delivery job panicked", "panic", r)
		}
	}()
	job(p.ctx)
}

// Submit queues job; false when it was dropped (queue full or closed).
func (p *Pool) Submit(job func(context.Context)) bool {
	if p.closed.Load() && p.ctx.Err() != nil {
		p.drop("closed")
		return false
	}
	p.pending.Add(1)
	select {
	case p.jobs <- job:
		return true
	default:
		p.pending.Add(-1)
		p.drop("queue full")
		return false
	}
}

func (p *Pool) drop(why string) {
	p.Dropped.Add(1)
	n := p.sinceLog.Add(1)
	now := time.Now().UnixNano()
	last := p.lastDropLog.Load()
	if now-last >= int64(time.Second) && p.lastDropLog.CompareAndSwap(last, now) {
		p.sinceLog.Add(-n)
		p.log.Warn("webhook delivery dropped", "reason", why, "dropped", n, "queue_size", cap(p.jobs))
	}
}

// Close stops the pool: it waits until every queued and running job has
// finished or ctx ends, then cancels what still runs and stops the
// workers. Jobs submitted meanwhile (a running event job queueing its
// deliveries) are still taken until the cancel.
func (p *Pool) Close(ctx context.Context) error {
	p.closed.Store(true)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for p.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		case <-tick.C:
		}
	}
	p.cancel()
	p.workers.Wait()
	if n := p.pending.Load(); n > 0 {
		p.log.Warn("webhook deliveries abandoned at shutdown", "count", n)
	}
	return err
}
