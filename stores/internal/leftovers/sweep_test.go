package leftovers

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// dirRemote is a Remote on a local directory: the walk and removal
// logic is the same whatever server is behind it (the drivers' own
// tests run it against sshd and vsftpd).
type dirRemote struct {
	root  string
	lists int
}

func (d *dirRemote) ReadDir(_ context.Context, dir string) ([]Dirent, error) {
	d.lists++
	des, err := os.ReadDir(filepath.Join(d.root, dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var out []Dirent
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			continue
		}
		out = append(out, Dirent{Name: de.Name(), Dir: fi.IsDir(), Regular: fi.Mode().IsRegular(), ModTime: fi.ModTime()})
	}
	return out, err
}

func (d *dirRemote) Remove(_ context.Context, key string) error {
	return os.Remove(filepath.Join(d.root, key))
}

func (d *dirRemote) RemoveDir(_ context.Context, key string) error {
	return os.Remove(filepath.Join(d.root, key))
}

func tree(t *testing.T, root string) string {
	t.Helper()
	var got []string
	_ = filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err == nil && p != root {
			got = append(got, strings.TrimPrefix(p, root+"/"))
		}
		return nil
	})
	sort.Strings(got)
	return strings.Join(got, ",")
}

func TestSweep(t *testing.T) {
	root := t.TempDir()
	old := time.Now().Add(-3 * time.Hour)
	young := time.Now().Add(-time.Hour)
	plant := func(p string, mtime time.Time) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	plant(".tmp-a", old)           // at the root: removed, root kept
	plant("a/b/c/.tmp-x", old)     // alone: a/b/c and a/b removed, a keeps "keep"
	plant("a/keep", old)           // not a temp name
	plant("busy/d/.tmp-y", old)    // its directory is in use by an upload
	plant("young/.tmp-z", young)   // too young
	plant("old-object.tmp-q", old) // the prefix is not at the start
	if err := os.Symlink(filepath.Join(root, "young"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	var tr Tracker
	tr.Begin("busy/d")
	r := &dirRemote{root: root}

	n, err := tr.Sweep(context.Background(), r, ".tmp-", 4*time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("Sweep older than 4h = %d, %v; want nothing removed", n, err)
	}
	n, err = tr.Sweep(context.Background(), r, ".tmp-", 2*time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("Sweep older than 2h = %d, %v; want 3 removed", n, err)
	}
	want := "a,a/keep,busy,busy/d,link,old-object.tmp-q,young,young/.tmp-z"
	if got := tree(t, root); got != want {
		t.Fatalf("after the sweep:\n got %s\nwant %s", got, want)
	}

	// Cancelled: stops at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.Sweep(ctx, r, ".tmp-", 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Sweep = %v", err)
	}
}

// TestSweepBound: a sweep lists at most sweepMaxDirs directories and
// says it stopped.
func TestSweepBound(t *testing.T) {
	root := t.TempDir()
	for i := range 50 {
		if err := os.MkdirAll(filepath.Join(root, "d", strings.Repeat("x", i+1)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var tr Tracker
	r := &dirRemote{root: root}
	if _, err := tr.Sweep(context.Background(), r, ".tmp-", time.Hour); err != nil || r.lists != 52 {
		t.Fatalf("Sweep = %v after listing %d directories; want nil after 52 (root, d and its 50)", err, r.lists)
	}
	defer func(n int) { sweepMaxDirs = n }(sweepMaxDirs)
	sweepMaxDirs = 10
	r = &dirRemote{root: root}
	if _, err := tr.Sweep(context.Background(), r, ".tmp-", time.Hour); !errors.Is(err, ErrSweepBound) || r.lists != 10 {
		t.Fatalf("bounded Sweep = %v after listing %d directories; want ErrSweepBound after 10", err, r.lists)
	}
}
