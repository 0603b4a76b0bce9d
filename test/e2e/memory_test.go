package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// patternReader yields size bytes of a repeatable pattern without holding
// them: a 1 MiB block of random bytes with each block's index stamped at
// its start, so that no two blocks are equal. Readers made from the same
// base yield the same bytes; off may be set to start elsewhere.
type patternReader struct {
	base, cur []byte
	block     int64 // index of the block in cur, -1 for none
	size, off int64
}

func newPatternReader(base []byte, size int64) *patternReader {
	return &patternReader{base: base, cur: make([]byte, len(base)), block: -1, size: size}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	blockSize := int64(len(p.base))
	if blk := p.off / blockSize; blk != p.block {
		copy(p.cur, p.base)
		binary.LittleEndian.PutUint64(p.cur, uint64(blk))
		p.block = blk
	}
	in := p.off % blockSize
	n := min(int64(len(b)), blockSize-in, p.size-p.off)
	copy(b, p.cur[in:in+n])
	p.off += n
	return int(n), nil
}

// TestMemoryBounded uploads and downloads 1 GiB through the binary; the
// checksums match and the server's peak RSS (VmHWM) stays under 64 MiB.
// It runs alone (not parallel) so the numbers are the server's own.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer skipped with -short")
	}
	const size = int64(1) << 30
	const limit = 64 << 20
	f := startFerry(t)
	u := f.Art("/api", "/artifacts/0/run/artifacts/big/model.bin")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	start := time.Now()
	base := randomBytes(1 << 20)
	sent := sha256.New()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, io.TeeReader(newPatternReader(base, size), sent))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := bigClient.Do(req)
	if err != nil {
		t.Fatalf("PUT 1 GiB: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "{}" {
		t.Fatalf("PUT 1 GiB: %d %q", resp.StatusCode, body)
	}
	t.Logf("upload: %v", time.Since(start))
	if rss, err := peakRSS(f.PID()); err != nil || rss >= limit {
		t.Errorf("peak RSS after a 1 GiB upload: %d MiB (%v), want < 64 MiB", rss>>20, err)
	}

	start = time.Now()
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = bigClient.Do(req)
	if err != nil {
		t.Fatalf("GET 1 GiB: %v", err)
	}
	got := sha256.New()
	n, err := io.CopyBuffer(got, resp.Body, make([]byte, 1<<20))
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || n != size {
		t.Fatalf("GET 1 GiB: status %d, %d bytes, %v", resp.StatusCode, n, err)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.FormatInt(size, 10) {
		t.Errorf("Content-Length %q, want %d", cl, size)
	}
	t.Logf("download: %v", time.Since(start))
	if !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatalf("checksum of the download %x differs from the upload's %x", got.Sum(nil), sent.Sum(nil))
	}
	rss, err := peakRSS(f.PID())
	if err != nil || rss >= limit {
		t.Errorf("peak RSS after 1 GiB up and down: %d MiB (%v), want < 64 MiB", rss>>20, err)
	}
	t.Logf("server peak RSS: %.1f MiB", float64(rss)/(1<<20))

	m := f.Metrics(t)
	for _, op := range []string{"put", "get"} {
		if got := m.Sum("ferry_store_transferred_bytes_total", "op="+op); got != float64(size) {
			t.Errorf("ferry_store_transferred_bytes_total{op=%q} = %v, want %d", op, got, size)
		}
	}
	// A range near the end of the big object reads the right bytes.
	tailStart := size - 3<<20 - 5
	r := get(t, u, "Range", fmt.Sprintf("bytes=%d-", tailStart))
	pr := newPatternReader(base, size)
	pr.off = tailStart
	want, _ := io.ReadAll(pr)
	if r.Status != 206 || !bytes.Equal(r.Body, want) {
		t.Fatalf("tail range of the big object: %d, %d bytes (want %d, equal %v)", r.Status, len(r.Body), len(want), bytes.Equal(r.Body, want))
	}
}
