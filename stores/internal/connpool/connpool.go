// Package connpool is the bounded connection pool behind the SFTP and FTP
// drivers: at most Max connections exist at once, each used by one
// operation at a time (an FTP control connection carries one transfer; an
// SFTP session is checked out for a whole upload or download so that one
// slow client cannot starve the others of a connection's window).
//
// Connections are dialled lazily and kept idle for reuse. A caller that
// sees its connection break (the server restarted, the network dropped)
// discards it instead of releasing it, so the next operation dials anew:
// that is how the drivers reconnect without a restart of Ferry.
package connpool

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("connection pool closed")

// Pool hands out connections of type C.
type Pool[C any] struct {
	dial    func(context.Context) (C, error)
	close   func(C)
	maxIdle time.Duration
	slots   chan struct{}

	// ping and every are the keep-alive (SetKeepAlive); ping nil: none.
	ping  func(C) error
	every time.Duration

	mu     sync.Mutex
	idle   []idleConn[C] // most recently used last
	closed bool
	// reaping is set while a timer is due to close stale idle
	// connections (and to ping the others): a store nobody uses (an
	// experiment's root that was listed once) must not keep its
	// connections open for ever.
	reaping bool
}

type idleConn[C any] struct {
	c     C
	since time.Time // when it was released: maxIdle counts from here
	alive time.Time // since, or the last successful keep-alive ping
}

// New returns a pool of at most max connections made by dial and closed by
// closeFn. Connections idle longer than maxIdle are closed instead of
// reused (servers drop idle sessions: vsftpd after 300 s by default).
func New[C any](max int, maxIdle time.Duration, dial func(context.Context) (C, error), closeFn func(C)) *Pool[C] {
	if max < 1 {
		max = 1
	}
	return &Pool[C]{dial: dial, close: closeFn, maxIdle: maxIdle, slots: make(chan struct{}, max)}
}

// SetKeepAlive makes the pool ping each idle connection that has been
// quiet for every, so that a server's idle timeout shorter than maxIdle
// (vsftpd's idle_session_timeout, a NAT's) does not leave stale
// connections in the pool. A connection whose ping fails is closed.
// Pings stop at maxIdle, which still bounds how long a connection idles,
// and a ping takes a slot like a Get, so pinging never exceeds the bound
// (when every slot is taken nothing is idle for long anyway). The check
// runs every every/2, so the server sees a command at least every
// 1.5×every. Call it before the pool is used; every <= 0 or a nil ping
// disables it, and so does maxIdle 0 (no reaper runs).
func (p *Pool[C]) SetKeepAlive(every time.Duration, ping func(C) error) {
	if every <= 0 || ping == nil {
		p.ping, p.every = nil, 0
		return
	}
	p.ping, p.every = ping, every
}

// tick is the period of the reaper timer.
func (p *Pool[C]) tick() time.Duration {
	if p.ping != nil && p.every/2 < p.maxIdle {
		return max(p.every/2, time.Millisecond)
	}
	return p.maxIdle
}

// Conn is one checked-out connection. Exactly one of Release or Discard
// must be called on it.
type Conn[C any] struct {
	C C
	// Reused is true when the connection was idle in the pool rather than
	// dialled for this Get: an error on it may only mean the server dropped
	// it meanwhile, so an idempotent operation may retry on a fresh one.
	Reused bool
	p      *Pool[C]
	done   bool
}

// Get waits for a free slot (or ctx) and returns an idle connection or a
// newly dialled one. A dial error is returned as is.
func (p *Pool[C]) Get(ctx context.Context) (*Conn[C], error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c, ok := p.takeIdle(); ok {
		return &Conn[C]{C: c, Reused: true, p: p}, nil
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		<-p.slots
		return nil, ErrClosed
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return &Conn[C]{C: c, p: p}, nil
}

// GetFresh is Get without reuse: it closes the oldest idle connection,
// if any, so idle plus checked-out connections stay within the bound, and
// dials.
func (p *Pool[C]) GetFresh(ctx context.Context) (*Conn[C], error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	if len(p.idle) > 0 {
		old := p.idle[0].c
		p.idle = p.idle[1:]
		p.mu.Unlock()
		p.close(old)
	} else {
		p.mu.Unlock()
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return &Conn[C]{C: c, p: p}, nil
}

func (p *Pool[C]) takeIdle() (C, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var stale []C
	defer func() {
		for _, c := range stale {
			p.close(c)
		}
	}()
	for len(p.idle) > 0 {
		ic := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if p.maxIdle > 0 && time.Since(ic.since) > p.maxIdle {
			stale = append(stale, ic.c)
			continue
		}
		return ic.c, true
	}
	var zero C
	return zero, false
}

// Release returns a healthy connection to the pool.
func (c *Conn[C]) Release() {
	if c.done {
		return
	}
	c.done = true
	p := c.p
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.close(c.C)
	} else {
		now := time.Now()
		p.idle = append(p.idle, idleConn[C]{c: c.C, since: now, alive: now})
		if p.maxIdle > 0 && !p.reaping {
			p.reaping = true
			time.AfterFunc(p.tick(), p.reap)
		}
		p.mu.Unlock()
	}
	<-p.slots
}

// reap closes the connections idle longer than maxIdle, pings the quiet
// ones (SetKeepAlive) and comes back while any stay idle.
func (p *Pool[C]) reap() {
	p.mu.Lock()
	var stale []C
	keep := p.idle[:0]
	for _, ic := range p.idle {
		if time.Since(ic.since) >= p.maxIdle {
			stale = append(stale, ic.c)
		} else {
			keep = append(keep, ic)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	for _, c := range stale {
		p.close(c)
	}
	if p.ping != nil {
		p.keepAlive()
	}
	p.mu.Lock()
	if len(p.idle) > 0 && !p.closed {
		time.AfterFunc(p.tick(), p.reap)
	} else {
		p.reaping = false
	}
	p.mu.Unlock()
}

// keepAlive pings, one at a time, the idle connections quiet for every.
// A connection being pinged is out of the idle list (no Get can take it)
// and holds a slot (so a Get meanwhile cannot dial past the bound).
func (p *Pool[C]) keepAlive() {
	start := time.Now()
	for {
		select {
		case p.slots <- struct{}{}:
		default:
			return // every slot in use
		}
		ic, ok := p.takeQuiet(start)
		if !ok {
			<-p.slots
			return
		}
		if err := p.ping(ic.c); err != nil {
			p.close(ic.c)
			<-p.slots
			continue
		}
		ic.alive = time.Now()
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			p.close(ic.c)
			<-p.slots
			return
		}
		// Back in its place by release time, so the most recently used
		// stays last.
		i := len(p.idle)
		for i > 0 && p.idle[i-1].since.After(ic.since) {
			i--
		}
		p.idle = append(p.idle, idleConn[C]{})
		copy(p.idle[i+1:], p.idle[i:])
		p.idle[i] = ic
		p.mu.Unlock()
		<-p.slots
	}
}

// takeQuiet removes from the idle list the first connection that at
// start had been quiet for at least every (and was not yet due to be
// reaped); one pinged since start is not taken again.
func (p *Pool[C]) takeQuiet(start time.Time) (idleConn[C], bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return idleConn[C]{}, false
	}
	for i, ic := range p.idle {
		if start.Sub(ic.alive) >= p.every && start.Sub(ic.since) < p.maxIdle {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			return ic, true
		}
	}
	return idleConn[C]{}, false
}

// Discard closes a connection that broke or is in an unknown state.
func (c *Conn[C]) Discard() {
	if c.done {
		return
	}
	c.done = true
	c.p.close(c.C)
	<-c.p.slots
}

// DropIdle closes every idle connection: after one connection was found
// broken, its idle siblings most likely are too (the server restarted).
func (p *Pool[C]) DropIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, ic := range idle {
		p.close(ic.c)
	}
}

// Close closes the idle connections and makes later Gets fail; connections
// in use are closed when they are released.
func (p *Pool[C]) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.DropIdle()
}
