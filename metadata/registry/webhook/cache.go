package webhook

import (
	"context"
	"sync"
	"time"
)

// Cache keeps the webhooks subscribed to each event for a TTL
// (MLFLOW_WEBHOOK_CACHE_TTL), so a registry call's event costs no query
// while the TTL runs. Loads of one event are serialised so a burst of
// events makes one query. Its size is bounded by the number of events.
type Cache[T any] struct {
	ttl     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	entries map[Event]cacheEntry[T]
	loading sync.Mutex
}

type cacheEntry[T any] struct {
	items   []T
	expires time.Time
}

// NewCache returns a cache with ttl (0: every Get loads).
func NewCache[T any](ttl time.Duration) *Cache[T] {
	return &Cache[T]{ttl: ttl, now: time.Now, entries: map[Event]cacheEntry[T]{}}
}

func (c *Cache[T]) lookup(ev Event) ([]T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[ev]
	if !ok || !c.now().Before(e.expires) {
		return nil, false
	}
	return e.items, true
}

// Get returns ev's webhooks, from the cache or from load.
func (c *Cache[T]) Get(ctx context.Context, ev Event, load func(context.Context) ([]T, error)) ([]T, error) {
	if c.ttl <= 0 {
		return load(ctx)
	}
	if items, ok := c.lookup(ev); ok {
		return items, nil
	}
	c.loading.Lock()
	defer c.loading.Unlock()
	if items, ok := c.lookup(ev); ok {
		return items, nil
	}
	items, err := load(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.entries[ev] = cacheEntry[T]{items, c.now().Add(c.ttl)}
	c.mu.Unlock()
	return items, nil
}

// Invalidate forgets every entry (after a webhook is created, changed or
// deleted in this process).
func (c *Cache[T]) Invalidate() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
