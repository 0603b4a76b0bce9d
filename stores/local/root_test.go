package local_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/local"
)

// TestMissingRootIsNeverCreatedByReads: opening a store on a directory that
// does not exist, and reading it every way, creates nothing; the root lists
// as empty, objects are not found, and the first Put creates the root.
func TestMissingRootIsNeverCreatedByReads(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	dir := filepath.Join(parent, "exp", "run", "artifacts")
	s := newStore(t, dir)

	if l, err := s.List(ctx, "", stores.ListPage{}); err != nil || len(l.Entries) != 0 {
		t.Errorf("List(root) = %v, %v; want empty", l, err)
	}
	if l, err := s.List(ctx, "sub", stores.ListPage{}); err != nil || len(l.Entries) != 0 {
		t.Errorf("List(sub) = %v, %v; want empty", l, err)
	}
	for _, key := range []string{"", "a.txt", "sub/a.txt"} {
		if _, err := s.Stat(ctx, key); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("Stat(%q) = %v, want ErrNotFound", key, err)
		}
	}
	if _, _, err := s.Open(ctx, "a.txt", 0, -1); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("Open = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "a.txt"); err != nil {
		t.Errorf("Delete(a.txt) = %v", err)
	}
	if err := s.Delete(ctx, ""); err != nil {
		t.Errorf("Delete(root) = %v", err)
	}
	if n, err := s.SweepStaleUploads(ctx, time.Hour); n != 0 || err != nil {
		t.Errorf("SweepStaleUploads = %d, %v", n, err)
	}
	if got := diskFiles(t, parent); len(got) != 0 {
		t.Fatalf("reads of a missing root created %v", got)
	}

	// Another process creates the directory: reads see it from then on.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "theirs.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := s.List(ctx, "", stores.ListPage{}); err != nil || len(l.Entries) != 1 || l.Entries[0].Key != "theirs.txt" {
		t.Errorf("List after the root appeared = %v, %v", l, err)
	}

	// A second store on another missing root: Put creates it.
	dir2 := filepath.Join(parent, "other", "root")
	s2 := newStore(t, dir2)
	if err := s2.Put(ctx, "d/a.txt", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir2, "d", "a.txt")); err != nil || string(b) != "hello" {
		t.Fatalf("after Put: %q, %v", b, err)
	}
}

// TestRootIsAFile: a root that is a file reads as empty (as upstream lists
// it) and refuses writes.
func TestRootIsAFile(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, file)
	if l, err := s.List(ctx, "", stores.ListPage{}); err != nil || len(l.Entries) != 0 {
		t.Errorf("List = %v, %v", l, err)
	}
	if err := s.Put(ctx, "a", strings.NewReader("y"), 1); err == nil {
		t.Error("Put into a file root succeeded")
	}
	if b, _ := os.ReadFile(file); string(b) != "x" {
		t.Errorf("file root changed: %q", b)
	}
}

// TestClosedStore: a closed store answers errors and never reopens (or
// creates) its directory.
func TestClosedStore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "root")
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a", strings.NewReader("y"), 1); err == nil {
		t.Error("Put on a closed store succeeded")
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("closed store created its root: %v", err)
	}
}

// TestSweepStaleUploads: the sweep removes old upload temp files at any
// depth, keeps young ones (a live upload, maybe another server's) and every
// object, and does not follow symlinks out of the root.
func TestSweepStaleUploads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	outside := t.TempDir()
	s := newStore(t, dir)
	for _, k := range []string{"a.txt", "x/y/b.bin"} {
		if err := s.Put(ctx, k, strings.NewReader(k), int64(len(k))); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	write := func(p string, mtime time.Time) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, local.TempPrefix+"old1"), old)
	write(filepath.Join(dir, "x", "y", local.TempPrefix+"old2"), old)
	write(filepath.Join(dir, "crashed", "deep", local.TempPrefix+"old4"), old) // alone: its directories go too
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {       // empty, but no temp file was in it: kept
		t.Fatal(err)
	}
	write(filepath.Join(dir, "x", local.TempPrefix+"young"), time.Now())
	write(filepath.Join(dir, "x", "not"+local.TempPrefix+"old"), old) // not a temp file name
	write(filepath.Join(outside, local.TempPrefix+"old3"), old)
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	n, err := s.SweepStaleUploads(ctx, time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("SweepStaleUploads = %d, %v; want 3, nil", n, err)
	}
	got := diskFiles(t, dir)
	want := map[string]string{
		"a.txt": "a.txt", "x/y/b.bin": "x/y/b.bin", "x/" + local.TempPrefix + "young": "partial",
		"x/not" + local.TempPrefix + "old": "partial", "link": "->" + outside, "empty/": "", "x/y/": "",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if strings.Contains(k, "old1") || strings.Contains(k, "old2") || strings.HasPrefix(k, "crashed") {
			t.Errorf("stale temp file %s kept", k)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, local.TempPrefix+"old3")); err != nil {
		t.Errorf("sweep followed a symlink out of the root: %v", err)
	}
	// A second sweep (another replica) finds nothing left.
	if n, err := s.SweepStaleUploads(ctx, time.Hour); n != 0 || err != nil {
		t.Errorf("second sweep = %d, %v", n, err)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestOpenerLocalRootsHoldNoDescriptors: per-request local stores from
// stores.Opener.Acquire release their directory handle, so listing many
// distinct run roots leaves the descriptor count where it was, and listing
// roots that do not exist creates none of them.
func TestOpenerLocalRootsHoldNoDescriptors(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	o := stores.NewOpener(stores.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	defer o.Close()
	const n = 500
	for i := 0; i < n; i++ {
		if err := os.MkdirAll(filepath.Join(base, "exp", strconv.Itoa(i), "artifacts"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, "exp", strconv.Itoa(i), "artifacts", "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := openFDs(t)
	for i := 0; i < n; i++ {
		for _, uri := range []string{
			filepath.Join(base, "exp", strconv.Itoa(i), "artifacts"),
			"file://" + filepath.Join(base, "missing", strconv.Itoa(i), "artifacts"),
		} {
			s, release, err := o.Acquire(ctx, uri)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.List(ctx, "", stores.ListPage{}); err != nil {
				t.Fatal(err)
			}
			release()
		}
	}
	if after := openFDs(t); after > before+2 {
		t.Fatalf("open descriptors %d → %d after %d listings of distinct roots", before, after, 2*n)
	}
	if _, err := os.Stat(filepath.Join(base, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("listing missing roots created %s: %v", filepath.Join(base, "missing"), err)
	}
}
