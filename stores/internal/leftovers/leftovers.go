// Package leftovers is the bookkeeping that lets the drivers writing to a
// remote file server through temporary names (sftp, ftp) clean up after a
// failed upload: which directories uploads in progress are using (so a
// failed upload never removes a directory another upload still needs),
// and what a failed upload could not remove because the connection was
// gone (removed later, over the next connection that works), and the
// sweep at start for what a crash of Ferry left (Sweep). It does no I/O
// itself: the drivers pass the list and remove calls in. AbortAll is the
// object stores' (S3, GCS) share: the abort loop of their sweeps of stale
// multipart uploads.
package leftovers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// MaxOrphans bounds the leftovers remembered while the server is away;
// beyond it the oldest are forgotten (they stay hidden temp names).
const MaxOrphans = 10000

// Orphan is a leftover of a failed upload, by store key: a temporary
// file, or a directory the upload made.
type Orphan struct {
	Key string
	Dir bool
}

// Tracker is safe for concurrent use. The zero value is ready.
type Tracker struct {
	mu        sync.Mutex
	uploading map[string]int
	orphans   []Orphan
}

// parent is the directory key holding key ("" for the root).
func parent(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return ""
}

// Begin marks dir and its parents as used by an upload in progress.
func (t *Tracker) Begin(dir string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.uploading == nil {
		t.uploading = map[string]int{}
	}
	for p := dir; p != ""; p = parent(p) {
		t.uploading[p]++
	}
}

// End undoes Begin. After a failed upload (committed false) it returns
// the directories of created (deepest first, as the upload made them)
// that no other upload uses, up to the first one still in use: those the
// caller should try to remove with RemoveDirs.
func (t *Tracker) End(dir string, created []string, committed bool) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p := dir; p != ""; p = parent(p) {
		if t.uploading[p]--; t.uploading[p] <= 0 {
			delete(t.uploading, p)
		}
	}
	if committed {
		return nil
	}
	var remove []string
	for _, d := range created {
		if t.uploading[d] > 0 {
			break
		}
		remove = append(remove, d)
	}
	return remove
}

// busy reports whether an upload in progress uses dir.
func (t *Tracker) busy(dir string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.uploading[dir] > 0
}

// RemoveDirs removes dirs in order with rmdir, stopping quietly at the
// first one an upload uses again or that rmdir cannot remove (not empty).
// When rmdir fails because the connection is gone (lost), it returns
// that error and the dirs not yet removed, for the caller to Add as
// orphans once the connection is given up.
func (t *Tracker) RemoveDirs(dirs []string, rmdir func(key string) error, lost func(error) bool) (rest []string, err error) {
	for i, d := range dirs {
		if t.busy(d) {
			return nil, nil // in use again: keep it
		}
		if err := rmdir(d); err != nil {
			if lost(err) {
				return dirs[i:], err
			}
			return nil, nil // not empty: keep it
		}
	}
	return nil, nil
}

// Add remembers leftovers to remove later.
func (t *Tracker) Add(o ...Orphan) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.orphans = append(t.orphans, o...)
	if n := len(t.orphans) - MaxOrphans; n > 0 {
		t.orphans = t.orphans[n:]
	}
}

// AddDirs remembers directory leftovers to remove later.
func (t *Tracker) AddDirs(dirs []string) {
	for _, d := range dirs {
		t.Add(Orphan{Key: d, Dir: true})
	}
}

// Clean removes the remembered leftovers with remove, over a connection
// that has just served an operation. A directory is removed only while
// no upload uses it (and, as rmdir goes, only while empty). When the
// connection turns out lost, the rest is remembered again.
func (t *Tracker) Clean(remove func(Orphan) error, lost func(error) bool) {
	t.mu.Lock()
	list := t.orphans
	t.orphans = nil
	t.mu.Unlock()
	for i, o := range list {
		if o.Dir && t.busy(o.Key) {
			continue
		}
		if err := remove(o); err != nil && lost(err) {
			t.Add(list[i:]...)
			return
		}
	}
}

// Dirent is one entry of a directory listing, for Sweep.
type Dirent struct {
	Name string
	// Dir is set for a directory (not for a link to one: links are
	// never followed).
	Dir bool
	// Regular is set for a plain file; only those are removed.
	Regular bool
	// ModTime is the last write; zero when unknown (the file is kept).
	ModTime time.Time
}

// Remote is the file server as Sweep needs it, by store key ("" is the
// root). Each call may check out its own pooled connection, so a long
// sweep never holds one for long.
type Remote interface {
	// ReadDir lists dir with the temporary files included; a missing
	// dir is (nil, nil).
	ReadDir(ctx context.Context, dir string) ([]Dirent, error)
	Remove(ctx context.Context, key string) error
	RemoveDir(ctx context.Context, key string) error
}

// SweepMaxDirs bounds the directories one Sweep lists: a store of more
// is swept in part (and the sweep says so).
const SweepMaxDirs = 100_000

// sweepMaxDirs is SweepMaxDirs; tests lower it.
var sweepMaxDirs = SweepMaxDirs

// ErrSweepBound is returned by Sweep when it stopped at SweepMaxDirs.
var ErrSweepBound = errors.New("sweep stopped after listing its maximum of directories")

// Sweep removes, anywhere under the store, the files whose names start
// with prefix (the drivers' temporary upload names) last written before
// now-maxAge: what a crash of Ferry (kill -9, power loss) leaves of the
// uploads it cut off, which no Tracker remembers. Directories left empty
// by a removal are removed too, deepest first, up to (not including) the
// root, while no upload in progress uses them, as a failed upload removes
// the directories it made. A live upload writes its file continuously,
// so with maxAge longer than any upload's stall only dead files are old
// enough; the ages come from the server's clock, so maxAge must also
// exceed the skew between the server's clock and Ferry's. It lists at
// most SweepMaxDirs directories; a directory that cannot be listed is
// skipped, and the first error is returned with the count removed.
func (t *Tracker) Sweep(ctx context.Context, r Remote, prefix string, maxAge time.Duration) (removed int, err error) {
	cutoff := time.Now().Add(-maxAge)
	var firstErr error
	keep := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	emptied := map[string]bool{}
	stack := []string{""}
	for listed := 0; len(stack) > 0; listed++ {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if listed == sweepMaxDirs {
			keep(ErrSweepBound)
			break
		}
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		entries, err := r.ReadDir(ctx, dir)
		if err != nil {
			keep(fmt.Errorf("list %q: %w", dir, err))
			continue
		}
		for _, e := range entries {
			if e.Name == "" || e.Name == "." || e.Name == ".." || strings.Contains(e.Name, "/") {
				continue
			}
			key := e.Name
			if dir != "" {
				key = dir + "/" + e.Name
			}
			switch {
			case e.Dir:
				stack = append(stack, key)
			case e.Regular && strings.HasPrefix(e.Name, prefix) && !e.ModTime.IsZero() && e.ModTime.Before(cutoff):
				if err := r.Remove(ctx, key); err != nil {
					keep(fmt.Errorf("remove %q: %w", key, err))
					continue
				}
				removed++
				emptied[dir] = true
			}
		}
	}
	dirs := make([]string, 0, len(emptied))
	for d := range emptied {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for _, d := range dirs {
		// RemoveDir fails on a directory that is not empty (or was
		// removed by a deeper one's climb), which ends the climb.
		for ; d != "" && !t.busy(d) && ctx.Err() == nil && r.RemoveDir(ctx, d) == nil; d = parent(d) {
		}
	}
	return removed, firstErr
}
