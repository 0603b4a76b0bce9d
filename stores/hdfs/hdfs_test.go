package hdfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/storetest"
	"github.com/ferryml/ferry/test/backends/hdfsdouble"
)

// The double runs as a separate process, as a real cluster would: only
// Ferry's own allocations and goroutines are in the test process, and the
// fault tests can kill it. It is built once per test binary into binDir.
var (
	binDir    string
	doubleBin = sync.OnceValues(func() (string, error) { return hdfsdouble.Build(binDir) })
)

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "hdfsdouble-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// startDouble starts Ferry's HDFS test double for the test. Blocks are
// small so that objects span several and ranged reads cross block
// boundaries; listings page at 1000 entries as dfs.ls.limit does, which
// storetest's 1238-entry directory crosses.
func startDouble(t *testing.T) *hdfsdouble.Process {
	t.Helper()
	bin, err := doubleBin()
	if err != nil {
		t.Fatal(err)
	}
	p, err := hdfsdouble.StartProcess(bin, hdfsdouble.Options{Dir: t.TempDir(), BlockSize: 1<<20 + 512})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

var roots atomic.Int64

// newStore returns a store on a fresh root of the double.
func newStore(t *testing.T, addr string) *Store {
	t.Helper()
	s, err := New(Config{Addresses: []string{addr}, Root: fmt.Sprintf("/ferry/t%d", roots.Add(1)), User: "ferry"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// skipped are the storetest subtests HDFS cannot pass as written, each
// replaced by a test of this package that checks the same property.
// (LargeObjectStreamed runs with storetest's PerPacketGarbage option:
// colinmarc/hdfs v2.4.0 allocates each 64 KiB write packet twice in
// blockWriteStream.writePacket, so the total allocated grows with the
// object although nothing is buffered; the option caps the live heap.)
var skipped = map[string]string{
	"OddKeys": "HDFS refuses ':' in names (DFSUtil.isValidName), so \"colon:name\" cannot be stored; TestOddKeys runs the other keys " +
		"and checks that one is refused before any call",
}

// TestConformance runs the shared store suite against the double, on the
// bare driver and behind the instrumented wrapper.
func TestConformance(t *testing.T) {
	d := startDouble(t)
	open := func(wrap bool) func(t *testing.T) stores.Store {
		return func(t *testing.T) stores.Store {
			name := t.Name()[strings.LastIndexByte(t.Name(), '/')+1:]
			if why, ok := skipped[name]; ok {
				t.Skip(why)
			}
			s := newStore(t, d.NamenodeAddr)
			if !wrap {
				return s
			}
			return stores.Instrument(s, "hdfs", stores.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
		}
	}
	opts := storetest.Options{PerPacketGarbage: true}
	t.Run("bare", func(t *testing.T) { storetest.RunWithOptions(t, open(false), opts) })
	t.Run("instrumented", func(t *testing.T) { storetest.RunWithOptions(t, open(true), opts) })
}

// oddKeys is storetest's list of legal keys that trip naive path handling,
// without "colon:name" (see TestColonRefused).
var oddKeys = []string{
	"with space.txt", " leading and trailing ", "ünïcödé/日本語.txt", "emoji-🙂.bin", "%41.txt", "100%",
	"x%2Fy", "x%252F..%2Fz", "%0a-escaped-newline", "a+b=c.txt", "semi;colon", "at@sign", "comma,separated",
	".hidden", "a..b", "...", "..c", "dir.with.dots/..x", "quote'single", `double"quote`, "paren(1)[2]{3}",
	"dollar$amp&bang!", "tilde~star*caret^pipe|", "lt<gt>`tick`", "-dash_under", "nested/ sp /ü x/obj",
	strings.Repeat("long-", 40) + ".bin",
}

// TestOddKeys is storetest's OddKeys without the one key HDFS cannot
// name: each key round-trips, reads by range, lists verbatim, deletes.
func TestOddKeys(t *testing.T) {
	d := startDouble(t)
	s := newStore(t, d.NamenodeAddr)
	ctx := t.Context()
	for _, k := range oddKeys {
		data := []byte("content of " + k)
		if err := s.Put(ctx, k, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
		rc, _, err := s.Open(ctx, k, 3, 4)
		if err != nil {
			t.Fatalf("Open(%q): %v", k, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data[3:7]) {
			t.Fatalf("ranged read of %q = %q, %v", k, got, err)
		}
	}
	found := map[string]bool{}
	var walk func(dir string)
	walk = func(dir string) {
		l, err := s.List(ctx, dir, stores.ListPage{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l.Entries {
			if e.IsDir {
				walk(e.Key)
			} else {
				found[e.Key] = true
			}
		}
	}
	walk("")
	for _, k := range oddKeys {
		if !found[k] {
			t.Errorf("walking the listings does not find %q", k)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Fatalf("Delete(%q): %v", k, err)
		}
		if _, err := s.Stat(ctx, k); !errors.Is(err, stores.ErrNotFound) {
			t.Fatalf("Stat(%q) after Delete = %v", k, err)
		}
	}
	if len(found) != len(oddKeys) {
		t.Errorf("listings show %d objects; want %d", len(found), len(oddKeys))
	}
}

// TestColonRefused: HDFS forbids ':' in names, so such keys are refused
// as invalid (a 400 for the client) before the namenode is asked. The
// store points at a port nobody listens on: any call would fail as
// unavailable instead.
func TestColonRefused(t *testing.T) {
	s := newStore(t, "127.0.0.1:1")
	ctx := t.Context()
	for _, k := range []string{"colon:name", "dir:x/obj", "a/b:c"} {
		body := strings.NewReader("data")
		errs := map[string]error{"Put": s.Put(ctx, k, body, 4), "Delete": s.Delete(ctx, k)}
		_, errs["Stat"] = s.Stat(ctx, k)
		_, _, errs["Open"] = s.Open(ctx, k, 0, -1)
		_, errs["List"] = s.List(ctx, k, stores.ListPage{})
		for op, err := range errs {
			if !errors.Is(err, stores.ErrInvalidKey) {
				t.Errorf("%s(%q) = %v; want ErrInvalidKey", op, k, err)
			}
		}
		if body.Len() != 4 {
			t.Errorf("Put(%q) read the body before refusing the key", k)
		}
	}
}
