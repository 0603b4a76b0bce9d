package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/proxy"
	"github.com/ferryml/ferry/stores"
)

// bufferingStore declares that a Put of 1 MiB or more holds 40 MiB of
// part buffers (as an S3 multipart upload does) and holds Puts under
// "hold/" until gate closes, so a test can keep a reservation taken.
type bufferingStore struct {
	stores.Store
	gate    chan struct{}
	held    chan struct{} // receives when a held Put has started
	started atomic.Int64  // Puts that reached the store
}

func (b *bufferingStore) PutBuffer(size int64) int64 {
	if size >= 1<<20 || size < 0 { // unknown sizes too, as S3's
		return 40 << 20
	}
	return 0
}

func (b *bufferingStore) Unwrap() stores.Store { return b.Store }

func (b *bufferingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b.started.Add(1)
	if strings.HasPrefix(key, "hold/") {
		b.held <- struct{}{}
		select {
		case <-b.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.Store.Put(ctx, key, r, size)
}

// TestTransferBudget: an upload whose part buffers do not fit in
// --max-transfer-memory waits, then gets 503 TEMPORARILY_UNAVAILABLE
// without reaching the store; uploads that stream are not held up; the
// room comes back when the holder ends; the metrics show all of it.
func TestTransferBudget(t *testing.T) {
	t.Parallel()
	bs := &bufferingStore{gate: make(chan struct{}), held: make(chan struct{}, 1)}
	s := startServer(t, func(st stores.Store) stores.Store { bs.Store = st; return bs }, func(o *proxy.Options) {
		o.Config.TransferMemoryLimit = 64 << 20
		o.TransferQueueWait = 300 * time.Millisecond
	})
	big := randomBytes(t, 2<<20)

	// Connections that announce large bodies, or chunked ones, and send
	// none hold nothing (they stay open through what follows, so A below
	// would find no room if they did): fasthttp calls no handler before a
	// sized body's first bytes arrive, and the handler reserves nothing
	// before a chunked body's first byte.
	for i := range 4 {
		idle, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		framing := fmt.Sprintf("Content-Length: %d", 2<<20)
		if i%2 == 1 {
			framing = "Transfer-Encoding: chunked"
		}
		fmt.Fprintf(idle, "PUT /api/2.0/mlflow-artifacts/artifacts/idle.bin HTTP/1.1\r\nHost: %s\r\n%s\r\n\r\n", s.addr, framing)
	}
	time.Sleep(200 * time.Millisecond)
	if v := metricValue(t, s, "ferry_transfer_memory_reserved_bytes"); v != 0 {
		t.Errorf("reserved by connections that sent no body: %v, want 0", v)
	}

	// A takes 40 of the 64 MiB and stays in its Put.
	aDone := make(chan int, 1)
	go func() {
		st, _, body, err := s.do("PUT", "/artifacts/hold/a.bin", big)
		if err != nil || st != 200 {
			t.Errorf("held upload: %d %s %v", st, body, err)
		}
		aDone <- st
	}()
	select {
	case <-bs.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the held upload never reached the store")
	}
	if v := metricValue(t, s, "ferry_transfer_memory_reserved_bytes"); v != 40<<20 {
		t.Errorf("reserved while A runs: %v, want 40 MiB", v)
	}

	// B needs 40 more: it waits the queue time, then 503, and its Put is
	// never called.
	before := bs.started.Load()
	start := time.Now()
	st, _, body, err := s.do("PUT", "/artifacts/b.bin", big)
	if err != nil || st != 503 || !strings.Contains(string(body), `"error_code":"TEMPORARILY_UNAVAILABLE"`) {
		t.Errorf("upload beyond the budget: %d %s %v; want 503 TEMPORARILY_UNAVAILABLE", st, body, err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("refused after %s, before the queue wait", waited)
	}
	if bs.started.Load() != before {
		t.Error("the refused upload reached the store")
	}
	if v := metricValue(t, s, "ferry_transfer_memory_refusals_total"); v != 1 {
		t.Errorf("refusals: %v, want 1", v)
	}

	// A small upload (the store streams it) is not held up.
	if st, _, body, err := s.do("PUT", "/artifacts/small.txt", []byte("hello")); err != nil || st != 200 {
		t.Errorf("a streaming upload while the budget is taken: %d %s %v", st, body, err)
	}

	close(bs.gate)
	if st := <-aDone; st != 200 {
		return
	}
	if v := metricValue(t, s, "ferry_transfer_memory_reserved_bytes"); v != 0 {
		t.Errorf("reserved after A ended: %v, want 0", v)
	}
	if st, _, body, err := s.do("PUT", "/artifacts/b.bin", big); err != nil || st != 200 {
		t.Errorf("upload after the room came back: %d %s %v", st, body, err)
	}
	if v := metricValue(t, s, "ferry_transfer_memory_limit_bytes"); v != 64<<20 {
		t.Errorf("limit metric: %v", v)
	}
}

// metricValue is the value of the single unlabelled gauge or counter name.
func metricValue(t *testing.T, s *testServer, name string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}
