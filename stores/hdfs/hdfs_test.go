package hdfs

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
// fault tests can kill it.
var doubleBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "hdfsdouble-bin-")
	if err != nil {
		return "", err
	}
	return hdfsdouble.Build(dir)
})

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
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
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
var skipped = map[string]string{
	"LargeObjectStreamed": "colinmarc/hdfs v2.4.0 allocates each 64 KiB write packet twice (blockWriteStream.writePacket), " +
		"so the suite's total-allocation ceiling fails although nothing is buffered; TestLargeObjectStreamed checks the live heap instead",
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
	t.Run("bare", func(t *testing.T) { storetest.Run(t, open(false)) })
	t.Run("instrumented", func(t *testing.T) { storetest.Run(t, open(true)) })
}
