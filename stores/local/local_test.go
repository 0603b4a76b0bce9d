package local_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/local"
	"github.com/ferryml/ferry/stores/storetest"
)

// newStore opens a local store on dir, closed when the test ends.
func newStore(t *testing.T, dir string) *local.Store {
	t.Helper()
	s, err := local.New(dir)
	if err != nil {
		t.Fatalf("local.New(%q): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// instrument wraps s the way the server does, with a fresh registry.
func instrument(s stores.Store) (*stores.Instrumented, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return stores.Instrument(s, "local", stores.NewMetrics(reg), slog.New(slog.DiscardHandler)), reg
}

// TestConformance runs the shared store suite on the bare driver and on
// the driver behind the instrumented wrapper.
func TestConformance(t *testing.T) {
	t.Run("bare", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) stores.Store { return newStore(t, t.TempDir()) })
	})
	t.Run("instrumented", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) stores.Store {
			s, _ := instrument(newStore(t, t.TempDir()))
			return s
		})
	})
}

// diskFiles lists every path under dir (relative, slash-separated), with
// the content of regular files and "->target" for symlinks.
func diskFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "->" + target
		case d.IsDir():
			out[rel+"/"] = ""
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	return out
}

// noTempFiles fails the test if an upload's temporary file is left
// anywhere under dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	for p := range diskFiles(t, dir) {
		if strings.HasPrefix(filepath.Base(strings.TrimSuffix(p, "/")), local.TempPrefix) {
			t.Fatalf("temporary file left behind: %s", p)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// escapeFixture is a store root full of symlinks that leave it, next to a
// directory of secrets they point at.
type escapeFixture struct {
	root, outside string
	store         *local.Store
}

const secret = "TOP SECRET"

func newEscapeFixture(t *testing.T) *escapeFixture {
	t.Helper()
	base := t.TempDir()
	f := &escapeFixture{root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	writeFile(t, filepath.Join(f.outside, "secret"), secret)
	writeFile(t, filepath.Join(f.outside, "sub", "deep"), secret)
	writeFile(t, filepath.Join(f.root, "real.txt"), "inside")
	symlink(t, filepath.Join(f.outside, "secret"), filepath.Join(f.root, "file-abs"))
	symlink(t, "../outside/secret", filepath.Join(f.root, "file-rel"))
	symlink(t, f.outside, filepath.Join(f.root, "dir-abs"))
	symlink(t, "../outside", filepath.Join(f.root, "dir-rel"))
	symlink(t, "../../outside", filepath.Join(f.root, "d", "nested"))
	symlink(t, "../root/real.txt", filepath.Join(f.root, "out-and-back"))
	symlink(t, filepath.Join(f.root, "real.txt"), filepath.Join(f.root, "abs-inside"))
	symlink(t, "../does-not-exist", filepath.Join(f.root, "dangling"))
	f.store = newStore(t, f.root)
	return f
}

// TestSymlinksOutsideRootAreRefused checks every method on keys that reach
// outside the root through a symlink: each is refused with ErrOutsideRoot
// (which is also ErrInvalidKey), no outside byte is returned, and nothing
// outside changes. Each key gets a fresh fixture.
func TestSymlinksOutsideRootAreRefused(t *testing.T) {
	keys := []string{
		"file-abs", "file-rel", "dir-abs", "dir-rel", "dir-abs/secret", "dir-rel/secret",
		"dir-rel/sub/deep", "d/nested", "d/nested/secret", "out-and-back", "abs-inside", "dangling",
	}
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			f := newEscapeFixture(t)
			before, rootBefore := diskFiles(t, f.outside), diskFiles(t, f.root)
			ctx := t.Context()
			refused := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, stores.ErrOutsideRoot) || !errors.Is(err, stores.ErrInvalidKey) {
					t.Errorf("%s(%q) = %v; want ErrOutsideRoot", op, key, err)
				}
			}
			_, err := f.store.Stat(ctx, key)
			refused("Stat", err)
			for _, r := range [][2]int64{{0, -1}, {2, 3}} {
				rc, _, err := f.store.Open(ctx, key, r[0], r[1])
				if rc != nil {
					b, _ := io.ReadAll(rc)
					rc.Close()
					t.Errorf("Open(%q) returned a reader yielding %q", key, b)
				}
				refused("Open", err)
			}
			l, err := f.store.List(ctx, key, stores.ListPage{})
			if len(l.Entries) > 0 {
				t.Errorf("List(%q) = %+v", key, l.Entries)
			}
			refused("List", err)
			refused("Put", f.store.Put(ctx, key, strings.NewReader("overwrite"), 9))
			refused("Put below", f.store.Put(ctx, key+"/planted", strings.NewReader("planted"), 7))
			refused("Delete below", f.store.Delete(ctx, key+"/secret"))
			if after := diskFiles(t, f.outside); !mapsEqual(before, after) {
				t.Fatalf("the outside directory changed:\nbefore %q\nafter  %q", before, after)
			}
			if after := diskFiles(t, f.root); !mapsEqual(rootBefore, after) {
				t.Fatalf("the root changed (links replaced or files planted):\nbefore %q\nafter  %q", rootBefore, after)
			}
		})
	}

	t.Run("listing the root shows no escaping link", func(t *testing.T) {
		f := newEscapeFixture(t)
		ctx := t.Context()
		l, err := f.store.List(ctx, "", stores.ListPage{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range l.Entries {
			got = append(got, e.Key)
		}
		if want := []string{"d", "real.txt"}; !slices.Equal(got, want) {
			t.Fatalf(`List("") = %q; want %q`, got, want)
		}
		l, err = f.store.List(ctx, "d", stores.ListPage{})
		if err != nil || len(l.Entries) != 0 {
			t.Fatalf(`List("d") = %+v, %v; want empty`, l.Entries, err)
		}
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestDeleteThroughSymlinksNeverDeletesOutside deletes through, at, and
// around escaping symlinks, and then the whole root: links inside the root
// may go, files outside never do.
func TestDeleteThroughSymlinksNeverDeletesOutside(t *testing.T) {
	tests := []struct {
		name, key string
		wantErr   error // nil: success
		linkGone  string
	}{
		{"file below an absolute directory link", "dir-abs/secret", stores.ErrOutsideRoot, ""},
		{"directory below a relative directory link", "dir-rel/sub", stores.ErrOutsideRoot, ""},
		{"file below a nested link", "d/nested/secret", stores.ErrOutsideRoot, ""},
		{"the directory link itself", "dir-abs", nil, "dir-abs"},
		{"the file link itself", "file-rel", nil, "file-rel"},
		{"the directory holding a link", "d", nil, "d/nested"},
		{"the whole root", "", nil, "dir-rel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEscapeFixture(t)
			before := diskFiles(t, f.outside)
			err := f.store.Delete(t.Context(), tt.key)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Delete(%q) = %v; want %v", tt.key, err, tt.wantErr)
			}
			if after := diskFiles(t, f.outside); !mapsEqual(before, after) {
				t.Fatalf("Delete(%q) changed the outside directory:\nbefore %q\nafter  %q", tt.key, before, after)
			}
			if tt.linkGone != "" {
				if _, err := os.Lstat(filepath.Join(f.root, tt.linkGone)); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("link %s still there after Delete(%q): %v", tt.linkGone, tt.key, err)
				}
			}
			if _, err := os.Stat(f.root); err != nil {
				t.Fatalf("the root itself went: %v", err)
			}
		})
	}
}

// TestSymlinksInsideRootWork is the control for the escape tests: links
// that stay inside the root are followed.
func TestSymlinksInsideRootWork(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "real.txt"), "inside")
	writeFile(t, filepath.Join(dir, "d", "x"), "x")
	symlink(t, "real.txt", filepath.Join(dir, "file-link"))
	symlink(t, "d", filepath.Join(dir, "dir-link"))
	symlink(t, "../real.txt", filepath.Join(dir, "d", "up-link"))
	s := newStore(t, dir)
	ctx := t.Context()

	for key, want := range map[string]string{"file-link": "inside", "dir-link/x": "x", "d/up-link": "inside"} {
		rc, e, err := s.Open(ctx, key, 0, -1)
		if err != nil {
			t.Fatalf("Open(%q): %v", key, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != want || e.Size != int64(len(want)) {
			t.Fatalf("Open(%q) = %q (%+v); want %q", key, b, e, want)
		}
	}
	l, err := s.List(ctx, "dir-link", stores.ListPage{})
	if err != nil || len(l.Entries) != 2 || l.Entries[0].Key != "dir-link/up-link" || l.Entries[1].Key != "dir-link/x" {
		t.Fatalf(`List("dir-link") = %+v, %v; want dir-link/up-link and dir-link/x`, l.Entries, err)
	}
	if l.Entries[0].Size != int64(len("inside")) {
		t.Fatalf("dir-link/up-link listed with size %d; want the size of its target", l.Entries[0].Size)
	}
	if err := s.Put(ctx, "dir-link/new", strings.NewReader("new"), 3); err != nil {
		t.Fatalf("Put through an inside link: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "d", "new")); err != nil || string(b) != "new" {
		t.Fatalf("d/new = %q, %v", b, err)
	}
}

// gate is a body that yields first, then blocks until released: the test
// can look at the disk while an upload is midway.
type gate struct {
	first   []byte
	reached chan struct{}
	release chan error
}

func newGate(first string) *gate {
	return &gate{first: []byte(first), reached: make(chan struct{}), release: make(chan error, 1)}
}

// Read implements io.Reader.
func (g *gate) Read(p []byte) (int, error) {
	if len(g.first) > 0 {
		n := copy(p, g.first)
		g.first = g.first[n:]
		return n, nil
	}
	close(g.reached)
	if err := <-g.release; err != nil {
		return 0, err
	}
	return 0, io.EOF
}

// TestTempFilesNeverVisible holds an upload midway and checks that its
// temporary file exists on disk but not through the store, and that it is
// gone once the upload fails.
func TestTempFilesNeverVisible(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	ctx := t.Context()
	errBody := errors.New("client went away")
	g := newGate("partial")
	done := make(chan error, 1)
	go func() { done <- s.Put(ctx, "up/obj", g, 100) }()
	t.Cleanup(func() {
		select {
		case g.release <- errBody:
		default:
		}
	})
	select {
	case <-g.reached:
	case err := <-done:
		t.Fatalf("Put ended early: %v", err)
	}

	var temp string
	for p := range diskFiles(t, dir) {
		if strings.HasPrefix(filepath.Base(p), local.TempPrefix) {
			temp = p
		}
	}
	if temp == "" {
		t.Fatal("no temporary file on disk during the upload; the test would prove nothing")
	}
	// Put may still hold the bytes in its copy buffer: the temp file holds a
	// prefix of what was sent, and never anything else.
	if b, _ := os.ReadFile(filepath.Join(dir, temp)); !strings.HasPrefix("partial", string(b)) {
		t.Fatalf("temporary file holds %q", b)
	}
	l, err := s.List(ctx, "up", stores.ListPage{})
	if err != nil || len(l.Entries) != 0 {
		t.Fatalf(`List("up") during the upload = %+v, %v; want empty`, l.Entries, err)
	}
	if _, err := s.Stat(ctx, temp); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Stat(%q) = %v; want ErrNotFound", temp, err)
	}
	if rc, _, err := s.Open(ctx, temp, 0, -1); !errors.Is(err, stores.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("Open(%q) = %v; want ErrNotFound", temp, err)
	}
	if err := s.Put(ctx, temp, strings.NewReader("clobber"), 7); !errors.Is(err, stores.ErrInvalidKey) {
		t.Fatalf("Put(%q) = %v; want ErrInvalidKey", temp, err)
	}

	g.release <- errBody
	if err := <-done; !errors.Is(err, errBody) {
		t.Fatalf("Put = %v; want %v", err, errBody)
	}
	if got := diskFiles(t, dir); len(got) != 0 {
		t.Fatalf("after the failed upload the root holds %q; want nothing", got)
	}
}

// TestStaleTempFilesHidden plants what a crash leaves behind: it is not
// listed, not readable, and goes with its directory.
func TestStaleTempFilesHidden(t *testing.T) {
	dir := t.TempDir()
	stale := local.TempPrefix + "0123456789abcdef01234567"
	writeFile(t, filepath.Join(dir, stale), "half an upload")
	writeFile(t, filepath.Join(dir, "d", stale), "half an upload")
	writeFile(t, filepath.Join(dir, "d", "real"), "real")
	s := newStore(t, dir)
	ctx := t.Context()
	tests := []struct {
		dir  string
		want []string
	}{{"", []string{"d"}}, {"d", []string{"d/real"}}}
	for _, tt := range tests {
		l, err := s.List(ctx, tt.dir, stores.ListPage{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range l.Entries {
			got = append(got, e.Key)
		}
		if !slices.Equal(got, tt.want) {
			t.Fatalf("List(%q) = %q; want %q", tt.dir, got, tt.want)
		}
	}
	for _, key := range []string{stale, "d/" + stale} {
		if _, err := s.Stat(ctx, key); !errors.Is(err, stores.ErrNotFound) {
			t.Fatalf("Stat(%q) = %v; want ErrNotFound", key, err)
		}
		if err := s.Put(ctx, key+"/x", strings.NewReader("x"), 1); !errors.Is(err, stores.ErrInvalidKey) {
			t.Fatalf("Put below %q = %v; want ErrInvalidKey", key, err)
		}
	}
	if err := s.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "d")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("directory d still there: %v", err)
	}
}

// cancelAfter cancels its context on the second Read and keeps yielding.
type cancelAfter struct {
	reads  int
	cancel context.CancelFunc
}

// Read implements io.Reader.
func (c *cancelAfter) Read(p []byte) (int, error) {
	c.reads++
	if c.reads == 2 {
		c.cancel()
	}
	if c.reads > 100 {
		return 0, io.EOF
	}
	return copy(p, "data"), nil
}

// TestFailedPutsLeaveNothingOnDisk checks the disk itself (the conformance
// suite sees only listings, which hide temporary files) after every kind of
// failed upload, including into directories the upload had to create.
func TestFailedPutsLeaveNothingOnDisk(t *testing.T) {
	errBody := errors.New("body failed")
	tests := []struct {
		name    string
		key     string
		put     func(ctx context.Context, s stores.Store, key string) error
		wantErr error
	}{
		{"body fails", "a/b/c", func(ctx context.Context, s stores.Store, key string) error {
			return s.Put(ctx, key, io.MultiReader(strings.NewReader("some"), iotest{errBody}), -1)
		}, errBody},
		{"short body", "a/b/c", func(ctx context.Context, s stores.Store, key string) error {
			return s.Put(ctx, key, strings.NewReader("short"), 100)
		}, stores.ErrIncomplete},
		{"canceled before", "a/b/c", func(ctx context.Context, s stores.Store, key string) error {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return s.Put(ctx, key, strings.NewReader("data"), 4)
		}, context.Canceled},
		{"canceled midway", "a/b/c", func(ctx context.Context, s stores.Store, key string) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			return s.Put(ctx, key, &cancelAfter{cancel: cancel}, -1)
		}, context.Canceled},
		{"name too long", "a/" + strings.Repeat("n", 300), func(ctx context.Context, s stores.Store, key string) error {
			return s.Put(ctx, key, strings.NewReader("data"), 4)
		}, stores.ErrInvalidKey},
		{"directory name too long", strings.Repeat("n", 300) + "/x", func(ctx context.Context, s stores.Store, key string) error {
			return s.Put(ctx, key, strings.NewReader("data"), 4)
		}, stores.ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newStore(t, dir)
			if err := tt.put(t.Context(), s, tt.key); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Put = %v; want %v", err, tt.wantErr)
			}
			if got := diskFiles(t, dir); len(got) != 0 {
				t.Fatalf("the root holds %q after the failed Put; want nothing", got)
			}
		})
	}
}

// iotest is a reader that always fails.
type iotest struct{ err error }

// Read implements io.Reader.
func (r iotest) Read([]byte) (int, error) { return 0, r.err }

// TestPutConflictsWithExistingNodes covers keys the filesystem cannot hold
// next to what is already there: the Put fails with a client error and
// changes nothing.
func TestPutConflictsWithExistingNodes(t *testing.T) {
	tests := []struct {
		name, key string
		wantErr   error
	}{
		{"parent is a file", "f/x", stores.ErrInvalidKey},
		{"grandparent is a file", "f/a/b", stores.ErrInvalidKey},
		{"key is a directory", "d", stores.ErrIsDir},
		{"key is a non-empty directory", "d/sub", stores.ErrIsDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "f"), "file")
			writeFile(t, filepath.Join(dir, "d", "sub", "x"), "x")
			before := diskFiles(t, dir)
			s, _ := instrument(newStore(t, dir))
			err := s.Put(t.Context(), tt.key, strings.NewReader("new"), 3)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Put(%q) = %v; want %v", tt.key, err, tt.wantErr)
			}
			if got := stores.Classify(t.Context(), err); got != stores.OutcomeClientError {
				t.Fatalf("Put(%q) error classified as %q; want %q", tt.key, got, stores.OutcomeClientError)
			}
			if after := diskFiles(t, dir); !mapsEqual(before, after) {
				t.Fatalf("disk changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// TestDeleteRootKeepsDirectory checks that Delete("") empties the store
// but keeps its directory, which stays usable.
func TestDeleteRootKeepsDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), "a")
	writeFile(t, filepath.Join(dir, "d", ".hidden"), "h")
	s := newStore(t, dir)
	if err := s.Delete(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	if got := diskFiles(t, dir); len(got) != 0 {
		t.Fatalf("root holds %q after Delete(\"\")", got)
	}
	if err := s.Put(t.Context(), "b", strings.NewReader("b"), 1); err != nil {
		t.Fatalf("Put after emptying the root: %v", err)
	}
}

// TestOpenURIs opens local stores through stores.Open (the scheme registry)
// from every URI form upstream accepts, and refuses remote file URIs.
func TestOpenURIs(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	abs := filepath.Join(base, "abs dir")
	tests := []struct {
		name, uri, wantDir string
		wantErr            error
	}{
		{"absolute path", abs, abs, nil},
		{"relative path", "rel/arts", filepath.Join(base, "rel", "arts"), nil},
		{"dot-relative path", "./dotrel", filepath.Join(base, "dotrel"), nil},
		{"file URI", "file://" + filepath.ToSlash(abs), abs, nil},
		{"file URI, one slash", "file:" + filepath.ToSlash(abs), abs, nil},
		{"file URI, localhost", "file://localhost" + filepath.ToSlash(abs), abs, nil},
		{"file URI, upper-case scheme", "FILE://" + filepath.ToSlash(abs), abs, nil},
		{"file URI, percent-encoded", "file://" + strings.ReplaceAll(filepath.ToSlash(abs), " ", "%20"), abs, nil},
		{"relative file URI", "file:relfile", filepath.Join(base, "relfile"), nil},
		{"remote file URI", "file://remotehost/x", "", stores.ErrInvalidKey},
		{"remote file URI with a path", "file://fileserver" + filepath.ToSlash(abs), "", stores.ErrInvalidKey},
		{"file URI with a query", "file://" + filepath.ToSlash(abs) + "?x=1", "", stores.ErrInvalidKey},
		{"empty URI", "", "", stores.ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := diskFiles(t, base)
			st, err := stores.Open(t.Context(), tt.uri)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("stores.Open(%q) = %v; want %v", tt.uri, err, tt.wantErr)
				}
				if after := diskFiles(t, base); !mapsEqual(before, after) {
					t.Fatalf("stores.Open(%q) changed the disk: %q", tt.uri, after)
				}
				return
			}
			if err != nil {
				t.Fatalf("stores.Open(%q): %v", tt.uri, err)
			}
			s, ok := st.(*local.Store)
			if !ok {
				t.Fatalf("stores.Open(%q) = %T; want *local.Store", tt.uri, st)
			}
			defer s.Close()
			if s.Dir() != tt.wantDir {
				t.Fatalf("stores.Open(%q).Dir() = %q; want %q", tt.uri, s.Dir(), tt.wantDir)
			}
			if err := s.Put(t.Context(), "probe/"+tt.name, strings.NewReader(tt.uri), int64(len(tt.uri))); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(tt.wantDir, "probe", tt.name)); err != nil || string(b) != tt.uri {
				t.Fatalf("object not at %s: %q, %v", tt.wantDir, b, err)
			}
		})
	}

	t.Run("relative path is fixed at open", func(t *testing.T) {
		st, err := stores.Open(t.Context(), "fixed")
		if err != nil {
			t.Fatal(err)
		}
		s := st.(*local.Store)
		defer s.Close()
		t.Chdir(t.TempDir())
		if err := s.Put(t.Context(), "x", bytes.NewReader([]byte("x")), 1); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(base, "fixed", "x")); err != nil {
			t.Fatalf("object not under the directory resolved at open: %v", err)
		}
	})
}
