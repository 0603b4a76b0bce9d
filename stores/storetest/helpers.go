package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ferryml/ferry/stores"
)

// maxPage is the largest page a listing may return (ListPage.Limit doc).
const maxPage = 1000

// opaque hides everything but Read (WriterTo, Seeker, Len, ...), so a
// driver sees the body the way the proxy hands it over: a plain stream.
type opaque struct{ r io.Reader }

// Read implements io.Reader.
func (o opaque) Read(p []byte) (int, error) { return o.r.Read(p) }

// body returns data as an opaque stream.
func body(data []byte) io.Reader { return opaque{bytes.NewReader(data)} }

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// mustPut stores data at key or fails the test.
func mustPut(t *testing.T, s stores.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, body(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

// putAll stores every object of objs, a few at a time.
func putAll(t *testing.T, s stores.Store, objs map[string][]byte) {
	t.Helper()
	keys := make(chan string)
	errs := make(chan error, len(objs))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for k := range keys {
				if err := s.Put(t.Context(), k, body(objs[k]), int64(len(objs[k]))); err != nil {
					errs <- err
				}
			}
		})
	}
	for k := range objs {
		keys <- k
	}
	close(keys)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Put: %v", err)
	}
}

// read returns the whole object at key; it fails the test on any error.
func read(t *testing.T, s stores.Store, key string) []byte {
	t.Helper()
	b, err := readRange(t.Context(), s, key, 0, -1)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return b
}

// readRange opens key and reads everything the reader yields.
func readRange(ctx context.Context, s stores.Store, key string, offset, length int64) ([]byte, error) {
	rc, _, err := s.Open(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return b, err
}

// checkContent fails the test unless the object at key holds want.
func checkContent(t *testing.T, s stores.Store, key string, want []byte) {
	t.Helper()
	got := read(t, s, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("content of %q: got %d bytes %s, want %d bytes %s", key, len(got), preview(got), len(want), preview(want))
	}
	e, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if e.Key != key || e.IsDir || e.Size != int64(len(want)) {
		t.Fatalf("Stat(%q) = %+v; want an object of %d bytes", key, e, len(want))
	}
}

// preview renders the start of b for failure messages.
func preview(b []byte) string {
	if len(b) > 24 {
		return strings.TrimSuffix(string(quote(b[:24])), `"`) + `..."`
	}
	return quote(b)
}

func quote(b []byte) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, c := range b {
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteString(`\x`)
		sb.WriteByte("0123456789abcdef"[c>>4])
		sb.WriteByte("0123456789abcdef"[c&15])
	}
	sb.WriteByte('"')
	return sb.String()
}

// mustNotExist fails the test unless Stat and Open both report ErrNotFound
// for key.
func mustNotExist(t *testing.T, s stores.Store, key string) {
	t.Helper()
	if e, err := s.Stat(t.Context(), key); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Stat(%q) = %+v, %v; want ErrNotFound", key, e, err)
	}
	rc, e, err := s.Open(t.Context(), key, 0, -1)
	if rc != nil {
		rc.Close()
	}
	if !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Open(%q) = %+v, %v; want ErrNotFound", key, e, err)
	}
}

// listAll reads every page of dir's listing and checks the invariants
// every page must keep: sorted, unique, direct children only, at most
// maxPage entries, and a NextAfter that moves forward.
func listAll(t *testing.T, s stores.Store, dir string, page stores.ListPage) []stores.Entry {
	t.Helper()
	var all []stores.Entry
	for pages := 0; ; pages++ {
		l, err := s.List(t.Context(), dir, page)
		if err != nil {
			t.Fatalf("List(%q, %+v): %v", dir, page, err)
		}
		checkPage(t, dir, page, l)
		if len(all) > 0 && len(l.Entries) > 0 && l.Entries[0].Key <= all[len(all)-1].Key {
			t.Fatalf("List(%q): page after %q starts at %q, not after the previous page", dir, page.After, l.Entries[0].Key)
		}
		all = append(all, l.Entries...)
		if l.NextAfter == "" {
			return all
		}
		if l.NextAfter <= page.After {
			t.Fatalf("List(%q): NextAfter %q does not move past After %q", dir, l.NextAfter, page.After)
		}
		if pages > 1_000_000 {
			t.Fatalf("List(%q): endless pagination", dir)
		}
		page.After = l.NextAfter
	}
}

// checkPage asserts the invariants of one listing page.
func checkPage(t *testing.T, dir string, page stores.ListPage, l stores.Listing) {
	t.Helper()
	limit := page.Limit
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	if len(l.Entries) > limit {
		t.Fatalf("List(%q, %+v) returned %d entries; the page limit is %d", dir, page, len(l.Entries), limit)
	}
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	for i, e := range l.Entries {
		name, ok := strings.CutPrefix(e.Key, prefix)
		if !ok || name == "" || strings.Contains(name, "/") {
			t.Fatalf("List(%q) returned %q, which is not a direct child", dir, e.Key)
		}
		if page.After != "" && e.Key <= page.After {
			t.Fatalf("List(%q) after %q returned %q", dir, page.After, e.Key)
		}
		if i > 0 && l.Entries[i-1].Key >= e.Key {
			t.Fatalf("List(%q) is not sorted and unique: %q then %q", dir, l.Entries[i-1].Key, e.Key)
		}
		if e.IsDir && e.Size != 0 {
			t.Fatalf("List(%q): directory %q has size %d", dir, e.Key, e.Size)
		}
	}
	if l.NextAfter != "" && (len(l.Entries) == 0 || l.NextAfter < l.Entries[len(l.Entries)-1].Key) {
		t.Fatalf("List(%q): NextAfter %q lies before the page's last entry", dir, l.NextAfter)
	}
}

// keys returns the keys of entries.
func keys(entries []stores.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Key
	}
	return out
}

// walk lists the whole tree under the root: objects by key with their
// sizes, and every directory met.
func walk(t *testing.T, s stores.Store) (objects map[string]int64, dirs map[string]bool) {
	t.Helper()
	objects, dirs = map[string]int64{}, map[string]bool{}
	queue := []string{""}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		for _, e := range listAll(t, s, dir, stores.ListPage{}) {
			if e.IsDir {
				if dirs[e.Key] {
					t.Fatalf("directory %q listed twice", e.Key)
				}
				dirs[e.Key] = true
				queue = append(queue, e.Key)
				continue
			}
			objects[e.Key] = e.Size
		}
	}
	return objects, dirs
}

// checkTree walks the store and fails unless it holds exactly the objects
// of want, with their content, and no directory except the ancestors of
// those objects and of allowDirs (directories a store may keep after their
// last object went, as a filesystem does).
func checkTree(t *testing.T, s stores.Store, want map[string][]byte, allowDirs ...string) {
	t.Helper()
	objects, dirs := walk(t, s)
	var extra, missing []string
	for k, size := range objects {
		data, ok := want[k]
		switch {
		case !ok:
			extra = append(extra, k)
		case size != int64(len(data)):
			t.Errorf("listing gives %q a size of %d; want %d", k, size, len(data))
		}
	}
	for k := range want {
		if _, ok := objects[k]; !ok {
			missing = append(missing, k)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra) > 0 || len(missing) > 0 {
		t.Fatalf("store tree: unexpected objects %q, missing objects %q", extra, missing)
	}
	allowed := map[string]bool{}
	addAncestors := func(k string, self bool) {
		if self {
			allowed[k] = true
		}
		for i := strings.LastIndexByte(k, '/'); i > 0; i = strings.LastIndexByte(k[:i], '/') {
			allowed[k[:i]] = true
		}
	}
	for k := range want {
		addAncestors(k, false)
	}
	for _, d := range allowDirs {
		addAncestors(d, true)
	}
	var stray []string
	for d := range dirs {
		if !allowed[d] {
			stray = append(stray, d)
		}
	}
	sort.Strings(stray)
	if len(stray) > 0 {
		t.Fatalf("store tree: directories left behind: %q", stray)
	}
	for k, data := range want {
		if got := read(t, s, k); !bytes.Equal(got, data) {
			t.Fatalf("content of %q: got %d bytes %s, want %d bytes %s", k, len(got), preview(got), len(data), preview(data))
		}
	}
}

// failingReader yields data and then err instead of io.EOF.
type failingReader struct {
	data []byte
	err  error
}

// Read implements io.Reader.
func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// cancelingReader yields data and cancels its context once after bytes
// have been read, but keeps yielding: a driver that ignores its context
// would store the whole object.
type cancelingReader struct {
	data   []byte
	after  int
	read   int
	cancel context.CancelFunc
}

// Read implements io.Reader.
func (c *cancelingReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	if c.read >= c.after && c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	c.read += n
	return n, nil
}

// gatedReader yields first, then, on the next Read, closes reached and
// waits on release: an error ends the stream with that error, nil lets
// rest through. It lets a test look at the store while a Put is midway.
type gatedReader struct {
	first, rest []byte
	reached     chan struct{}
	release     chan error
	gated       bool
}

func newGatedReader(first, rest []byte) *gatedReader {
	return &gatedReader{first: first, rest: rest, reached: make(chan struct{}), release: make(chan error, 1)}
}

// Read implements io.Reader.
func (g *gatedReader) Read(p []byte) (int, error) {
	if len(g.first) > 0 {
		n := copy(p, g.first)
		g.first = g.first[n:]
		return n, nil
	}
	if !g.gated {
		g.gated = true
		close(g.reached)
		if err := <-g.release; err != nil {
			g.rest = nil
			return 0, err
		}
	}
	if len(g.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.rest)
	g.rest = g.rest[n:]
	return n, nil
}
