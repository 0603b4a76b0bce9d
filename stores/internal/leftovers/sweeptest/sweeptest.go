// Package sweeptest checks a driver's SweepStaleUploads against its real
// server: it plants, in the server's directory behind the store, the
// temporary files a crash of Ferry would leave (owned by the server's
// account, with chosen ages), and checks that a sweep keeps them while
// younger than the age and removes them (and the directories they alone
// kept) once older, and never touches objects.
package sweeptest

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/stores"
)

// Sweeper is the driver method under test.
type Sweeper interface {
	stores.Store
	SweepStaleUploads(ctx context.Context, maxAge time.Duration) (int, error)
}

// Check runs the test on s, whose root is the local directory root (on
// the machine the test server serves from); prefix is the driver's
// temporary name prefix.
func Check(t *testing.T, s Sweeper, root, prefix string) {
	t.Helper()
	ctx := context.Background()
	// A real object through the store, and its directory.
	if err := s.Put(ctx, "a/keep", strings.NewReader("kept"), 4); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	uid, gid := int(st.Uid), int(st.Gid)
	plant := func(p string, age time.Duration) {
		t.Helper()
		full := filepath.Join(root, p)
		for d := filepath.Dir(full); d != root; d = filepath.Dir(d) {
			if _, err := os.Stat(d); err == nil {
				break
			}
			defer func(d string) {
				if err := os.Chown(d, uid, gid); err != nil {
					t.Fatal(err)
				}
			}(d)
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("partial upload"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(full, uid, gid); err != nil {
			t.Fatal(err)
		}
		mt := time.Now().Add(-age)
		if err := os.Chtimes(full, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	plant(prefix+"root", 3*time.Hour)
	plant("a/"+prefix+"1", 3*time.Hour)
	plant("deep/er/"+prefix+"2", 3*time.Hour) // deep and deep/er go with it
	plant("young/"+prefix+"3", time.Hour)
	if l, err := s.List(ctx, "", stores.ListPage{}); err != nil || len(l.Entries) != 3 {
		t.Fatalf("List before the sweep = %+v, %v; want a, deep, young", l, err)
	}

	before := tree(t, root)
	if n, err := s.SweepStaleUploads(ctx, 4*time.Hour); err != nil || n != 0 {
		t.Fatalf("SweepStaleUploads(4h) = %d, %v; want nothing removed", n, err)
	}
	if got := tree(t, root); got != before {
		t.Fatalf("SweepStaleUploads(4h) changed the tree:\n got %s\nwant %s", got, before)
	}
	if n, err := s.SweepStaleUploads(ctx, 2*time.Hour); err != nil || n != 3 {
		t.Fatalf("SweepStaleUploads(2h) = %d, %v; want 3 removed", n, err)
	}
	want := strings.Join([]string{"a", "a/keep", "young", "young/" + prefix + "3"}, ",")
	if got := tree(t, root); got != want {
		t.Fatalf("after SweepStaleUploads(2h):\n got %s\nwant %s", got, want)
	}
	rc, _, err := s.Open(ctx, "a/keep", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "kept" {
		t.Fatalf("object after the sweep = %q", b)
	}
	// A missing root is nothing to sweep.
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SweepStaleUploads(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("SweepStaleUploads of a missing root = %d, %v", n, err)
	}
}

func tree(t *testing.T, root string) string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			got = append(got, strings.TrimPrefix(p, root+"/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	return strings.Join(got, ",")
}
