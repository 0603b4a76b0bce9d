// Package storetest is the conformance suite every stores.Store driver runs
// from its own _test.go:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) stores.Store { return newEmptyStore(t) })
//	}
//
// It checks the contract written on stores.Store (round trips, ranges,
// listings and their pagination, deletes, not-found on every method, odd
// but legal keys, atomic and all-or-nothing Puts, cancellation, concurrent
// writers, a large object streamed under a memory ceiling, presign and
// multipart round trips where the store has them) and that no operation,
// failed or not, leaves anything behind.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/stores"
)

// Run runs the conformance suite. open must return a fresh, empty store
// each time it is called (a bare driver or one wrapped by
// stores.Instrument); it is called once per subtest with that subtest's t,
// so it can register cleanups with t.Cleanup or use t.TempDir.
//
// The LargeObjectStreamed subtest measures the process-wide allocation
// counter, so it runs first and alone; do not call Run from a test that
// runs in parallel with other tests (t.Parallel). Under -short it streams
// 64 MiB instead of 128 MiB.
func Run(t *testing.T, open func(t *testing.T) stores.Store) {
	t.Helper()
	RunWithOptions(t, open, Options{})
}

// Options adapt the suite to a driver.
type Options struct {
	// PerPacketGarbage says the driver's libraries copy every network
	// packet they receive into a fresh buffer that is garbage at once
	// (golang.org/x/crypto/ssh and github.com/pkg/sftp both do, per 32 KiB
	// packet), so the total allocated grows with the object although
	// nothing holds it. LargeObjectStreamed then caps the peak live heap
	// instead of the total allocated, with the same ceiling.
	PerPacketGarbage bool
}

// RunWithOptions is Run with options; Run uses the zero Options.
func RunWithOptions(t *testing.T, open func(t *testing.T) stores.Store, opts Options) {
	t.Helper()
	t.Run("LargeObjectStreamed", func(t *testing.T) { testLargeObject(t, open(t), opts) })
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, open(t))
		})
	}
}

// suite lists the subtests that may run in parallel, each on its own store.
var suite = []struct {
	name string
	fn   func(*testing.T, stores.Store)
}{
	{"RoundTrip", testRoundTrip},
	{"PutReplaces", testPutReplaces},
	{"RangedOpen", testRangedOpen},
	{"List", testList},
	{"ListPagination", testListPagination},
	{"Delete", testDelete},
	{"DeleteRoot", testDeleteRoot},
	{"NotFound", testNotFound},
	{"OpenDirectory", testOpenDirectory},
	{"PutWithoutName", testPutWithoutName},
	{"OddKeys", testOddKeys},
	{"InvalidKeys", testInvalidKeys},
	{"FailedPut", testFailedPut},
	{"UnknownSize", testUnknownSize},
	{"CanceledPut", testCanceledPut},
	{"PutInProgressInvisible", testPutInProgress},
	{"ConcurrentPuts", testConcurrentPuts},
	{"Presign", testPresign},
	{"Multipart", testMultipart},
	{"NothingLeftBehind", testNothingLeftBehind},
}

func testLargeObject(t *testing.T, s stores.Store, opts Options) {
	size := int64(largeSize)
	if testing.Short() {
		size = largeShortSize
	}
	allocated, peakLive, err := streamLarge(t.Context(), s, "large/object.bin", size)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("streamed %d MiB in and out; %.1f MiB allocated meanwhile, live heap at most %.1f MiB",
		size>>20, float64(allocated)/(1<<20), float64(peakLive)/(1<<20))
	if opts.PerPacketGarbage {
		if peakLive > allocCeiling {
			t.Errorf("putting and reading back %d MiB made the live heap reach %.1f MiB; the ceiling is %d MiB, so the object is being buffered",
				size>>20, float64(peakLive)/(1<<20), allocCeiling>>20)
		}
	} else if allocated > allocCeiling {
		t.Errorf("putting and reading back %d MiB allocated %.1f MiB; the ceiling is %d MiB, so the object is being buffered",
			size>>20, float64(allocated)/(1<<20), allocCeiling>>20)
	}
	if err := s.Delete(t.Context(), "large"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkTree(t, s, nil)
}

func testRoundTrip(t *testing.T, s stores.Store) {
	allBytes := make([]byte, 256*3)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	tests := []struct {
		name, key string
		data      []byte
	}{
		{"small text", "hello.txt", []byte("hello, world\n")},
		{"empty object", "empty", nil},
		{"every byte value", "bin/all-bytes.bin", allBytes},
		{"nested several levels", "a/b/c/d/e.json", []byte(`{"k":1}`)},
		{"several copy buffers", "chunks/1mib-plus-7.bin", randomBytes(1, 1<<20+7)},
	}
	want := map[string][]byte{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustPut(t, s, tt.key, tt.data)
			want[tt.key] = tt.data
			checkContent(t, s, tt.key, tt.data)

			rc, e, err := s.Open(t.Context(), tt.key, 0, -1)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			rc.Close()
			if e.Key != tt.key || e.IsDir || e.Size != int64(len(tt.data)) {
				t.Fatalf("Open entry = %+v; want key %q, %d bytes", e, tt.key, len(tt.data))
			}

			parent := tt.key[:max(strings.LastIndexByte(tt.key, '/'), 0)]
			i := slices.IndexFunc(listAll(t, s, parent, stores.ListPage{}), func(e stores.Entry) bool { return e.Key == tt.key })
			if i < 0 {
				t.Fatalf("List(%q) does not show %q", parent, tt.key)
			}
		})
	}
	checkTree(t, s, want)
}

func testPutReplaces(t *testing.T, s stores.Store) {
	mustPut(t, s, "neighbour", []byte("stays"))
	versions := []struct {
		name string
		data []byte
	}{
		{"first", randomBytes(10, 300<<10)},
		{"shorter", []byte("ten bytes!")},
		{"empty", nil},
		{"longer again", randomBytes(11, 1<<20+1)},
		{"same size, other bytes", randomBytes(12, 1<<20+1)},
	}
	for _, v := range versions {
		mustPut(t, s, "obj", v.data)
		checkContent(t, s, "obj", v.data)
	}
	last := versions[len(versions)-1].data
	checkTree(t, s, map[string][]byte{"obj": last, "neighbour": []byte("stays")})
}

func testRangedOpen(t *testing.T, s stores.Store) {
	data := randomBytes(20, 300<<10+17)
	n := int64(len(data))
	mustPut(t, s, "r/obj", data)
	mustPut(t, s, "r/empty", nil)
	tests := []struct {
		name           string
		key            string
		offset, length int64
		want           []byte // nil with wantErr set
		wantErr        error
	}{
		{"whole", "r/obj", 0, -1, data, nil},
		{"whole by length", "r/obj", 0, n, data, nil},
		{"length past the end is clamped", "r/obj", 0, n + 100, data, nil},
		{"prefix", "r/obj", 0, 10, data[:10], nil},
		{"middle", "r/obj", 1000, 5000, data[1000:6000], nil},
		{"to the end", "r/obj", n - 100, -1, data[n-100:], nil},
		{"tail with a length past the end", "r/obj", n - 100, 1000, data[n-100:], nil},
		{"last byte", "r/obj", n - 1, 1, data[n-1:], nil},
		{"zero length", "r/obj", 5, 0, []byte{}, nil},
		{"across copy buffers", "r/obj", 100, 290 << 10, data[100 : 100+290<<10], nil},
		{"offset == size", "r/obj", n, -1, nil, stores.ErrInvalidRange},
		{"offset == size, zero length", "r/obj", n, 0, nil, stores.ErrInvalidRange},
		{"past the end", "r/obj", n + 1, -1, nil, stores.ErrInvalidRange},
		{"far past the end", "r/obj", 1 << 40, 10, nil, stores.ErrInvalidRange},
		{"negative offset", "r/obj", -1, -1, nil, stores.ErrInvalidRange},
		{"empty object, whole", "r/empty", 0, -1, []byte{}, nil},
		{"empty object, zero length", "r/empty", 0, 0, []byte{}, nil},
		{"empty object, past the end", "r/empty", 1, -1, nil, stores.ErrInvalidRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := n
			if tt.key == "r/empty" {
				size = 0
			}
			// Read twice: through Read, and through io.Copy, which uses
			// the reader's WriteTo when it has one (the sendfile path).
			for _, how := range []string{"Read", "io.Copy"} {
				rc, e, err := s.Open(t.Context(), tt.key, tt.offset, tt.length)
				if tt.wantErr != nil {
					if rc != nil {
						rc.Close()
					}
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Open(%q, %d, %d) = %v; want %v", tt.key, tt.offset, tt.length, err, tt.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("Open(%q, %d, %d): %v", tt.key, tt.offset, tt.length, err)
				}
				if e.Key != tt.key || e.IsDir || e.Size != size {
					rc.Close()
					t.Fatalf("Open entry = %+v; want the whole object: key %q, %d bytes", e, tt.key, size)
				}
				var got []byte
				if how == "Read" {
					got, err = io.ReadAll(readOnly{rc})
				} else {
					var buf bytes.Buffer
					_, err = io.Copy(&buf, rc)
					got = buf.Bytes()
				}
				if cerr := rc.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Fatalf("%s: %v", how, err)
				}
				if !bytes.Equal(got, tt.want) {
					t.Fatalf("%s of [%d, +%d): got %d bytes %s, want %d bytes %s",
						how, tt.offset, tt.length, len(got), preview(got), len(tt.want), preview(tt.want))
				}
			}
		})
	}
}

// readOnly hides a reader's WriteTo so io.ReadAll goes through Read.
type readOnly struct{ r io.Reader }

// Read implements io.Reader.
func (r readOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

func testList(t *testing.T, s stores.Store) {
	objs := map[string][]byte{
		"dir/a.txt":       []byte("1"),
		"dir/b.bin":       []byte("22"),
		"dir/sub/c":       []byte("333"),
		"dir/sub.txt":     []byte("4444"),
		"dir/sub-file":    []byte("55555"),
		"dir/sub2/deep/d": []byte("666666"),
		"dir.txt":         []byte("7777777"),
		"dirx/e":          []byte("88888888"),
		"other":           []byte("999999999"),
	}
	putAll(t, s, objs)

	type ent struct {
		key   string
		isDir bool
	}
	tests := []struct {
		name, dir string
		want      []ent
	}{
		{"root", "", []ent{{"dir", true}, {"dir.txt", false}, {"dirx", true}, {"other", false}}},
		// "dir/sub" sorts before "dir/sub-file" although "dir/sub/" would
		// not: keys carry no trailing slash.
		{"directory with files and subdirectories", "dir", []ent{
			{"dir/a.txt", false}, {"dir/b.bin", false}, {"dir/sub", true},
			{"dir/sub-file", false}, {"dir/sub.txt", false}, {"dir/sub2", true}}},
		{"directory holding only a directory", "dir/sub2", []ent{{"dir/sub2/deep", true}}},
		{"leaf directory", "dir/sub2/deep", []ent{{"dir/sub2/deep/d", false}}},
		{"missing directory", "nope", nil},
		{"missing nested directory", "dir/nope/deeper", nil},
		{"key naming a file", "dir/a.txt", nil},
		{"below a file", "dir/a.txt/x", nil},
		{"prefix of a directory name", "di", nil},
		{"prefix of a file name", "dir/a", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listAll(t, s, tt.dir, stores.ListPage{})
			if len(got) != len(tt.want) {
				t.Fatalf("List(%q) = %q; want %v", tt.dir, keys(got), tt.want)
			}
			for i, e := range got {
				w := tt.want[i]
				wantSize := int64(0)
				if !w.isDir {
					wantSize = int64(len(objs[w.key]))
				}
				if e.Key != w.key || e.IsDir != w.isDir || e.Size != wantSize {
					t.Fatalf("List(%q)[%d] = %+v; want key %q, dir %v, size %d", tt.dir, i, e, w.key, w.isDir, wantSize)
				}
			}
		})
	}

	t.Run("Stat of directories", func(t *testing.T) {
		for _, d := range []string{"dir", "dir/sub2", "dir/sub2/deep", "dirx"} {
			e, err := s.Stat(t.Context(), d)
			if err != nil || e.Key != d || !e.IsDir || e.Size != 0 {
				t.Fatalf("Stat(%q) = %+v, %v; want a directory", d, e, err)
			}
		}
	})

	t.Run("small pages", func(t *testing.T) {
		first, err := s.List(t.Context(), "dir", stores.ListPage{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(first.Entries); !slices.Equal(got, []string{"dir/a.txt", "dir/b.bin"}) || first.NextAfter == "" {
			t.Fatalf("first page of 2 = %q, NextAfter %q", got, first.NextAfter)
		}
		all := listAll(t, s, "dir", stores.ListPage{Limit: 2})
		if len(all) != 6 {
			t.Fatalf("paging by 2 gives %q", keys(all))
		}
	})
	checkTree(t, s, objs)
}

func testListPagination(t *testing.T, s stores.Store) {
	const n = 1234
	objs := map[string][]byte{}
	var want []string
	for i := range n {
		k := fmt.Sprintf("many/k%04d", i)
		objs[k] = []byte(k)
		want = append(want, k)
	}
	// Directories among the objects, at the start, middle and end.
	for _, d := range []string{"many/a-dir", "many/k0500x", "many/k1233z"} {
		objs[d+"/child"] = []byte("c")
		want = append(want, d)
	}
	objs["many.txt"] = []byte("sibling")
	sort.Strings(want)
	putAll(t, s, objs)

	t.Run("default page size", func(t *testing.T) {
		first, err := s.List(t.Context(), "many", stores.ListPage{})
		if err != nil {
			t.Fatal(err)
		}
		if first.NextAfter == "" || len(first.Entries) == 0 {
			t.Fatalf("first page has %d entries and NextAfter %q; %d entries cannot fit one page",
				len(first.Entries), first.NextAfter, len(want))
		}
		if got := keys(listAll(t, s, "many", stores.ListPage{})); !slices.Equal(got, want) {
			t.Fatalf("paged listing has %d entries, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
		}
	})

	tests := []struct {
		name     string
		page     stores.ListPage
		want     []string
		minPages int
	}{
		{"pages of 100", stores.ListPage{Limit: 100}, want, 13},
		{"limit above the maximum", stores.ListPage{Limit: 5000}, want, 2},
		{"after an existing key", stores.ListPage{After: "many/k0600"}, want[slices.Index(want, "many/k0600")+1:], 1},
		{"after a key between two keys", stores.ListPage{After: "many/k0600-"}, want[slices.Index(want, "many/k0600")+1:], 1},
		// Small pages from a directory to the end, crossing the last
		// directory. (By 3 it took 245 pages: 20 s against an emulator.)
		{"after a directory", stores.ListPage{After: "many/k0500x", Limit: 25}, want[slices.Index(want, "many/k0500x")+1:], 30},
		{"after the last key", stores.ListPage{After: want[len(want)-1]}, nil, 1},
		{"last page exactly full", stores.ListPage{After: want[len(want)-11], Limit: 10}, want[len(want)-10:], 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pages := 0
			page := tt.page
			var got []string
			for {
				l, err := s.List(t.Context(), "many", page)
				if err != nil {
					t.Fatal(err)
				}
				checkPage(t, "many", page, l)
				pages++
				got = append(got, keys(l.Entries)...)
				if l.NextAfter == "" {
					break
				}
				if pages > 2*len(want) {
					t.Fatal("pagination does not end")
				}
				page.After = l.NextAfter
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %d entries, want %d; first difference at %d", len(got), len(tt.want), firstDiff(got, tt.want))
			}
			if pages < tt.minPages {
				t.Fatalf("%d pages; want at least %d", pages, tt.minPages)
			}
		})
	}

	t.Run("delete them all", func(t *testing.T) {
		if err := s.Delete(t.Context(), "many"); err != nil {
			t.Fatal(err)
		}
		checkTree(t, s, map[string][]byte{"many.txt": []byte("sibling")})
	})
}

// firstDiff is the first index where a and b differ.
func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func testDelete(t *testing.T, s stores.Store) {
	tests := []struct {
		name       string
		objs, keep []string
		del        string
		twice      bool
	}{
		{"file", []string{"c1/f.txt", "c1/f.txt.bak", "c1/f"}, []string{"c1/f.txt.bak", "c1/f"}, "c1/f.txt", false},
		{"directory recursively",
			[]string{"c2/d/a", "c2/d/sub/b", "c2/d/sub/deep/c", "c2/d.txt", "c2/dx/keep", "c2/d-other"},
			[]string{"c2/d.txt", "c2/dx/keep", "c2/d-other"}, "c2/d", false},
		{"missing key", []string{"c3/x"}, []string{"c3/x"}, "c3/nope", false},
		{"missing nested key", []string{"c4/x"}, []string{"c4/x"}, "c4/a/b/c", false},
		{"below a file", []string{"c5/f"}, []string{"c5/f"}, "c5/f/x", false},
		{"prefix of a name", []string{"c6/abc"}, []string{"c6/abc"}, "c6/ab", false},
		{"the same key twice", []string{"c7/x", "c7/y"}, []string{"c7/y"}, "c7/x", true},
	}
	want := map[string][]byte{}
	var allow []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range tt.objs {
				mustPut(t, s, k, []byte("content of "+k))
			}
			for range 1 + btoi(tt.twice) {
				if err := s.Delete(t.Context(), tt.del); err != nil {
					t.Fatalf("Delete(%q): %v", tt.del, err)
				}
			}
			for _, k := range tt.objs {
				if slices.Contains(tt.keep, k) {
					checkContent(t, s, k, []byte("content of "+k))
					want[k] = []byte("content of " + k)
				} else {
					mustNotExist(t, s, k)
				}
			}
			mustNotExist(t, s, tt.del)
			if l := listAll(t, s, tt.del, stores.ListPage{}); len(l) != 0 {
				t.Fatalf("List(%q) after Delete = %q", tt.del, keys(l))
			}
			allow = append(allow, tt.del[:strings.LastIndexByte(tt.del, '/')])
		})
	}
	checkTree(t, s, want, allow...)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func testDeleteRoot(t *testing.T, s stores.Store) {
	putAll(t, s, map[string][]byte{"a": []byte("a"), "d/b": []byte("b"), "d/e/c": nil})
	if err := s.Delete(t.Context(), ""); err != nil {
		t.Fatalf(`Delete(""): %v`, err)
	}
	checkTree(t, s, nil)
	mustPut(t, s, "d/again", []byte("usable"))
	checkTree(t, s, map[string][]byte{"d/again": []byte("usable")})
}

func testNotFound(t *testing.T, s stores.Store) {
	mustPut(t, s, "present/file", []byte("here"))
	for _, key := range []string{"missing", "missing/deeper/x", "present/missing", "present/file/child", "present/fil", "present/filex"} {
		t.Run(key, func(t *testing.T) {
			mustNotExist(t, s, key)
			rc, _, err := s.Open(t.Context(), key, 10, 5)
			if rc != nil {
				rc.Close()
			}
			if !errors.Is(err, stores.ErrNotFound) {
				t.Fatalf("ranged Open(%q) = %v; want ErrNotFound", key, err)
			}
			if l, err := s.List(t.Context(), key, stores.ListPage{}); err != nil || len(l.Entries) != 0 || l.NextAfter != "" {
				t.Fatalf("List(%q) = %+v, %v; want an empty listing", key, l, err)
			}
			if err := s.Delete(t.Context(), key); err != nil {
				t.Fatalf("Delete(%q) = %v; want success", key, err)
			}
		})
	}
	checkTree(t, s, map[string][]byte{"present/file": []byte("here")})
}

func testOpenDirectory(t *testing.T, s stores.Store) {
	putAll(t, s, map[string][]byte{"d/x": []byte("x"), "d/sub/y": []byte("y")})
	tests := []struct {
		key            string
		offset, length int64
	}{
		{"d", 0, -1}, {"d/sub", 0, -1}, {"d", 1, 2}, {"", 0, -1},
	}
	for _, tt := range tests {
		rc, _, err := s.Open(t.Context(), tt.key, tt.offset, tt.length)
		if rc != nil {
			rc.Close()
		}
		if !errors.Is(err, stores.ErrIsDir) {
			t.Errorf("Open(%q, %d, %d) = %v; want ErrIsDir", tt.key, tt.offset, tt.length, err)
		}
	}
}

func testPutWithoutName(t *testing.T, s stores.Store) {
	err := s.Put(t.Context(), "", body([]byte("x")), 1)
	if !errors.Is(err, stores.ErrInvalidKey) && !errors.Is(err, stores.ErrIsDir) {
		t.Fatalf(`Put("") = %v; want ErrInvalidKey or ErrIsDir`, err)
	}
	checkTree(t, s, nil)
}

// oddKeys are legal keys that trip naive URL or path handling.
var oddKeys = []string{
	"with space.txt",
	" leading and trailing ",
	"ünïcödé/日本語.txt",
	"emoji-🙂.bin",
	"%41.txt",
	"100%",
	"x%2Fy",
	"x%252F..%2Fz",
	"%0a-escaped-newline",
	"a+b=c.txt",
	"semi;colon",
	"at@sign",
	"comma,separated",
	"colon:name",
	".hidden",
	"a..b",
	"...",
	"..c",
	"dir.with.dots/..x",
	"quote'single",
	`double"quote`,
	"paren(1)[2]{3}",
	"dollar$amp&bang!",
	"tilde~star*caret^pipe|",
	"lt<gt>`tick`",
	"-dash_under",
	"nested/ sp /ü x/obj",
	strings.Repeat("long-", 40) + ".bin",
}

func testOddKeys(t *testing.T, s stores.Store) {
	want := map[string][]byte{}
	for _, k := range oddKeys {
		want[k] = []byte("content of " + k)
	}
	for _, k := range oddKeys {
		t.Run(k, func(t *testing.T) {
			mustPut(t, s, k, want[k])
			checkContent(t, s, k, want[k])
			b, err := readRange(t.Context(), s, k, 3, 4)
			if err != nil || !bytes.Equal(b, want[k][3:7]) {
				t.Fatalf("ranged read of %q = %q, %v", k, b, err)
			}
		})
	}
	t.Run("listed verbatim", func(t *testing.T) {
		objects, _ := walk(t, s)
		for k := range want {
			if _, ok := objects[k]; !ok {
				t.Errorf("walking the listings does not find %q", k)
			}
		}
		checkTree(t, s, want)
	})
	t.Run("deleted", func(t *testing.T) {
		for _, k := range oddKeys {
			if err := s.Delete(t.Context(), k); err != nil {
				t.Fatalf("Delete(%q): %v", k, err)
			}
			mustNotExist(t, s, k)
		}
		checkTree(t, s, nil, "ünïcödé", "dir.with.dots", "nested/ sp /ü x")
	})
}

// countingBody counts the Read calls made on it.
type countingBody struct {
	reads int
	r     io.Reader
}

// Read implements io.Reader.
func (c *countingBody) Read(p []byte) (int, error) { c.reads++; return c.r.Read(p) }

func testInvalidKeys(t *testing.T, s stores.Store) {
	if _, ok := s.(*stores.Instrumented); !ok {
		t.Skip("keys are validated by stores.Instrumented; a bare driver only ever receives clean keys")
	}
	for _, key := range []string{
		"../x", "a/../../x", "..", "/abs", `a\b`, "a\x00b", "a#b", "a?b", "C:/x", "//host/share", "file:x",
		strings.Repeat("k", stores.MaxKeyLength+1),
	} {
		t.Run(fmt.Sprintf("%.40q", key), func(t *testing.T) {
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, stores.ErrInvalidKey) {
					t.Errorf("%s(%q) = %v; want ErrInvalidKey", op, key, err)
				}
			}
			_, err := s.Stat(t.Context(), key)
			check("Stat", err)
			rc, _, err := s.Open(t.Context(), key, 0, -1)
			if rc != nil {
				rc.Close()
			}
			check("Open", err)
			_, err = s.List(t.Context(), key, stores.ListPage{})
			check("List", err)
			check("Delete", s.Delete(t.Context(), key))
			b := &countingBody{r: strings.NewReader("data")}
			check("Put", s.Put(t.Context(), key, b, 4))
			if b.reads != 0 {
				t.Errorf("Put(%q) read the body before refusing the key", key)
			}
		})
	}
	checkTree(t, s, nil)
}

var errReader = errors.New("storetest: the body failed")

func testFailedPut(t *testing.T, s stores.Store) {
	tests := []struct {
		name    string
		body    func() (io.Reader, int64)
		wantErr error
	}{
		{"reader fails midway", func() (io.Reader, int64) {
			return &failingReader{data: randomBytes(30, 300<<10), err: errReader}, 1 << 20
		}, errReader},
		{"reader fails midway, size unknown", func() (io.Reader, int64) {
			return &failingReader{data: randomBytes(31, 300<<10), err: errReader}, -1
		}, errReader},
		{"reader fails at once", func() (io.Reader, int64) {
			return &failingReader{err: errReader}, 10
		}, errReader},
		{"connection cut", func() (io.Reader, int64) {
			return &failingReader{data: randomBytes(32, 70<<10), err: io.ErrUnexpectedEOF}, 1 << 20
		}, io.ErrUnexpectedEOF},
		{"short body", func() (io.Reader, int64) {
			return body(randomBytes(33, 700<<10)), 1 << 20
		}, stores.ErrIncomplete},
		{"empty body, size announced", func() (io.Reader, int64) {
			return body(nil), 100
		}, stores.ErrIncomplete},
	}
	old := map[string][]byte{}
	for i, tt := range tests {
		for _, replacing := range []bool{false, true} {
			name := tt.name + ", new key"
			key := fmt.Sprintf("case%d/new/dir/obj", i)
			if replacing {
				name = tt.name + ", replacing"
				key = fmt.Sprintf("old%d/obj", i)
			}
			t.Run(name, func(t *testing.T) {
				var prev []byte
				if replacing {
					prev = randomBytes(uint64(100+i), 40<<10)
					mustPut(t, s, key, prev)
					old[key] = prev
				}
				r, size := tt.body()
				err := s.Put(t.Context(), key, r, size)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Put = %v; want an error wrapping %v", err, tt.wantErr)
				}
				if replacing {
					checkContent(t, s, key, prev)
				} else {
					mustNotExist(t, s, key)
				}
			})
		}
	}
	checkTree(t, s, old)
}

func testUnknownSize(t *testing.T, s stores.Store) {
	want := map[string][]byte{}
	for _, n := range []int{0, 1, 10, 256 << 10, 3<<20 + 5} {
		key := fmt.Sprintf("unknown/%d", n)
		data := randomBytes(uint64(n), n)
		if err := s.Put(t.Context(), key, body(data), -1); err != nil {
			t.Fatalf("Put(%q, size -1): %v", key, err)
		}
		checkContent(t, s, key, data)
		want[key] = data
	}
	checkTree(t, s, want)
}

func testCanceledPut(t *testing.T, s stores.Store) {
	tests := []struct {
		name      string
		before    bool // cancel before calling Put, else midway
		replacing bool
	}{
		{"before Put, new key", true, false},
		{"before Put, replacing", true, true},
		{"midway, new key", false, false},
		{"midway, replacing", false, true},
	}
	old := map[string][]byte{}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("case%d/new/obj", i)
			var prev []byte
			if tt.replacing {
				key = fmt.Sprintf("old%d/obj", i)
				prev = []byte("previous version")
				mustPut(t, s, key, prev)
				old[key] = prev
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			data := randomBytes(uint64(40+i), 2<<20)
			var r io.Reader = &cancelingReader{data: data, after: 256 << 10, cancel: cancel}
			if tt.before {
				cancel()
				r = body(data)
			}
			err := s.Put(ctx, key, r, int64(len(data)))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Put = %v; want context.Canceled", err)
			}
			if tt.replacing {
				checkContent(t, s, key, prev)
			} else {
				mustNotExist(t, s, key)
			}
		})
	}
	checkTree(t, s, old)
}

func testPutInProgress(t *testing.T, s stores.Store) {
	tests := []struct {
		name      string
		replacing bool
		fail      bool
	}{
		{"new key, then fails", false, true},
		{"new key, then completes", false, false},
		{"replacing, then fails", true, true},
		{"replacing, then completes", true, false},
	}
	want := map[string][]byte{}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fmt.Sprintf("case%d", i)
			key := dir + "/obj"
			var prev []byte
			if tt.replacing {
				prev = []byte("old version")
				mustPut(t, s, key, prev)
			}
			first, rest := randomBytes(uint64(50+i), 64<<10), randomBytes(uint64(60+i), 200<<10)
			g := newGatedReader(first, rest)
			var once sync.Once
			release := func(err error) { once.Do(func() { g.release <- err }) }
			t.Cleanup(func() { release(errReader) }) // never leave the Put hanging
			done := make(chan error, 1)
			go func() { done <- s.Put(t.Context(), key, g, int64(len(first)+len(rest))) }()
			select {
			case <-g.reached:
			case err := <-done:
				t.Fatalf("Put returned %v before reading the whole body", err)
			}

			// The upload is midway: readers see the old state only.
			if tt.replacing {
				checkContent(t, s, key, prev)
			} else {
				mustNotExist(t, s, key)
			}
			wantKeys := []string{}
			if tt.replacing {
				wantKeys = []string{key}
			}
			if got := keys(listAll(t, s, dir, stores.ListPage{})); !slices.Equal(got, wantKeys) {
				t.Fatalf("List(%q) during the upload = %q; want %q", dir, got, wantKeys)
			}

			if tt.fail {
				release(errReader)
				if err := <-done; !errors.Is(err, errReader) {
					t.Fatalf("Put = %v; want %v", err, errReader)
				}
				if tt.replacing {
					checkContent(t, s, key, prev)
					want[key] = prev
				} else {
					mustNotExist(t, s, key)
				}
				return
			}
			release(nil)
			if err := <-done; err != nil {
				t.Fatalf("Put: %v", err)
			}
			whole := append(slices.Clip(first), rest...)
			checkContent(t, s, key, whole)
			want[key] = whole
		})
	}
	checkTree(t, s, want)
}

func testConcurrentPuts(t *testing.T, s stores.Store) {
	t.Run("same key", func(t *testing.T) {
		const writers, size = 16, 300<<10 + 3
		const key = "race/obj"
		ctx := t.Context()
		start, done := make(chan struct{}), make(chan struct{})
		var writing, reading sync.WaitGroup
		for w := range writers {
			writing.Go(func() {
				<-start
				data := bytes.Repeat([]byte{byte('A' + w)}, size)
				if err := s.Put(ctx, key, body(data), size); err != nil {
					t.Errorf("writer %d: Put: %v", w, err)
				}
			})
		}
		// Readers run while the writers do: every read must be
		// not-found or one writer's whole object.
		for range 2 {
			reading.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					b, err := readRange(ctx, s, key, 0, -1)
					if errors.Is(err, stores.ErrNotFound) {
						continue
					}
					if err != nil {
						t.Errorf("reader: %v", err)
						return
					}
					if !uniform(b, size) {
						t.Errorf("reader saw a mixed or partial object: %d bytes starting %s", len(b), preview(b))
						return
					}
				}
			})
		}
		close(start)
		writing.Wait()
		close(done)
		reading.Wait()
		got := read(t, s, key)
		if !uniform(got, size) {
			t.Fatalf("final object is not one writer's data: %d bytes starting %s", len(got), preview(got))
		}
		checkTree(t, s, map[string][]byte{key: got})
		if err := s.Delete(ctx, "race"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("same new directory, half failing", func(t *testing.T) {
		const rounds, writers = 8, 16
		want := map[string][]byte{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for r := range rounds {
			for w := range writers {
				key := fmt.Sprintf("round%d/sub/k%02d", r, w)
				data := []byte(key)
				wg.Go(func() {
					<-start
					if w%2 == 1 {
						err := s.Put(t.Context(), key, &failingReader{data: data, err: errReader}, 100)
						if !errors.Is(err, errReader) {
							t.Errorf("failing Put(%q) = %v", key, err)
						}
						return
					}
					if err := s.Put(t.Context(), key, body(data), int64(len(data))); err != nil {
						t.Errorf("Put(%q): %v", key, err)
						return
					}
					mu.Lock()
					want[key] = data
					mu.Unlock()
				})
			}
		}
		close(start)
		wg.Wait()
		checkTree(t, s, want)
	})
}

// uniform reports whether b is size copies of one byte.
func uniform(b []byte, size int) bool {
	return len(b) == size && size > 0 && bytes.Count(b, b[:1]) == size
}

// presigner finds the presign capability, preferring the wrapper's
// instrumented one (stores.Instrumented.Presigner).
func presigner(s stores.Store) (stores.Presigner, bool) {
	if w, ok := s.(interface {
		Presigner() (stores.Presigner, bool)
	}); ok {
		return w.Presigner()
	}
	return stores.As[stores.Presigner](s)
}

// multiparter finds the multipart capability, preferring the wrapper's
// instrumented one (stores.Instrumented.Multiparter).
func multiparter(s stores.Store) (stores.Multiparter, bool) {
	if w, ok := s.(interface {
		Multiparter() (stores.Multiparter, bool)
	}); ok {
		return w.Multiparter()
	}
	return stores.As[stores.Multiparter](s)
}

// do sends method to req's URL with its headers and the given body, and
// returns the response body; any status but 2xx is an error.
func do(ctx context.Context, method string, req stores.PresignedRequest, data []byte) (*http.Response, []byte, error) {
	var r io.Reader
	if data != nil {
		r = bytes.NewReader(data)
	}
	hr, err := http.NewRequestWithContext(ctx, method, req.URL, r)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range req.Headers {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	if data != nil {
		hr.ContentLength = int64(len(data))
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, nil, err
	}
	if resp.StatusCode/100 != 2 {
		return resp, b, fmt.Errorf("%s %s: %s: %.200s", method, req.URL, resp.Status, b)
	}
	return resp, b, nil
}

func testPresign(t *testing.T, s stores.Store) {
	p, ok := presigner(s)
	if !ok {
		t.Skip("the store has no stores.Presigner capability")
	}
	want := map[string][]byte{}
	for _, key := range []string{"presign/plain.bin", "presign/with space/ü+%41;x=1.txt"} {
		data := randomBytes(70, 100<<10+1)
		mustPut(t, s, key, data)
		want[key] = data
		req, err := p.PresignGet(t.Context(), key, 5*time.Minute)
		if err != nil {
			t.Fatalf("PresignGet(%q): %v", key, err)
		}
		_, got, err := do(t.Context(), http.MethodGet, req, nil)
		if err != nil {
			t.Fatalf("GET presigned URL for %q: %v", key, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("presigned GET of %q: %d bytes, want %d", key, len(got), len(data))
		}
	}
	checkTree(t, s, want)
}

func testMultipart(t *testing.T, s stores.Store) {
	m, ok := multiparter(s)
	if !ok {
		t.Skip("the store has no stores.Multiparter capability")
	}
	// S3 wants every part but the last to be at least 5 MiB.
	parts := [][]byte{randomBytes(80, 5<<20), randomBytes(81, 1<<20+3)}
	upload := func(t *testing.T, key string, n int) (string, []stores.CompletedPart) {
		t.Helper()
		u, err := m.CreateMultipart(t.Context(), key, len(parts))
		if err != nil {
			t.Fatalf("CreateMultipart(%q): %v", key, err)
		}
		if len(u.Parts) != len(parts) {
			t.Fatalf("CreateMultipart returned %d part URLs; want %d", len(u.Parts), len(parts))
		}
		var done []stores.CompletedPart
		for i, p := range u.Parts[:n] {
			if p.PartNumber != i+1 {
				t.Fatalf("part %d has number %d", i, p.PartNumber)
			}
			resp, _, err := do(t.Context(), http.MethodPut, p.Request, parts[i])
			if err != nil {
				t.Fatalf("uploading part %d: %v", p.PartNumber, err)
			}
			done = append(done, stores.CompletedPart{PartNumber: p.PartNumber, ETag: resp.Header.Get("ETag"), URL: p.Request.URL})
		}
		return u.UploadID, done
	}

	t.Run("complete", func(t *testing.T) {
		const key = "mpu/whole.bin"
		id, done := upload(t, key, len(parts))
		mustNotExist(t, s, key)
		if err := m.CompleteMultipart(t.Context(), key, id, done); err != nil {
			t.Fatalf("CompleteMultipart: %v", err)
		}
		checkContent(t, s, key, bytes.Join(parts, nil))
	})
	t.Run("abort", func(t *testing.T) {
		const key = "mpu/aborted.bin"
		id, _ := upload(t, key, 1)
		if err := m.AbortMultipart(t.Context(), key, id); err != nil {
			t.Fatalf("AbortMultipart: %v", err)
		}
		mustNotExist(t, s, key)
	})
	checkTree(t, s, map[string][]byte{"mpu/whole.bin": bytes.Join(parts, nil)})
}

// testNothingLeftBehind runs a mix of successful, failed, cancelled and
// deleting operations on one store and then walks it.
func testNothingLeftBehind(t *testing.T, s stores.Store) {
	ctx := t.Context()
	v2 := randomBytes(90, 500<<10)
	mustPut(t, s, "keep/a", []byte("v1"))
	mustPut(t, s, "keep/a", v2)
	mustPut(t, s, "keep/c", nil)

	steps := []struct {
		name string
		run  func() error
		want error
	}{
		{"failing Put of a new key", func() error {
			return s.Put(ctx, "fail/new/x", &failingReader{data: randomBytes(91, 300<<10), err: errReader}, -1)
		}, errReader},
		{"failing replacement", func() error {
			return s.Put(ctx, "keep/a", &failingReader{data: randomBytes(92, 300<<10), err: errReader}, 1<<20)
		}, errReader},
		{"short Put", func() error { return s.Put(ctx, "keep/b", body([]byte("short")), 6) }, stores.ErrIncomplete},
		{"cancelled Put", func() error {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			// Larger than any driver's copy buffer, so the cancel lands
			// while the body is still being read.
			data := randomBytes(93, 8<<20)
			return s.Put(cctx, "cancel/y", &cancelingReader{data: data, after: 1, cancel: cancel}, int64(len(data)))
		}, context.Canceled},
		{"Put then Delete of the object", func() error {
			if err := s.Put(ctx, "gone/z", body([]byte("z")), 1); err != nil {
				return err
			}
			return s.Delete(ctx, "gone/z")
		}, nil},
		{"Put then Delete of its directory", func() error {
			if err := s.Put(ctx, "gone2/p/q", body([]byte("q")), 1); err != nil {
				return err
			}
			return s.Delete(ctx, "gone2")
		}, nil},
		{"Delete of a missing key", func() error { return s.Delete(ctx, "missing/key") }, nil},
	}
	for _, st := range steps {
		if err := st.run(); !errors.Is(err, st.want) {
			t.Fatalf("%s: %v; want %v", st.name, err, st.want)
		}
	}
	checkTree(t, s, map[string][]byte{"keep/a": v2, "keep/c": nil}, "gone")
}
