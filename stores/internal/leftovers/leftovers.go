// Package leftovers is the bookkeeping that lets the drivers writing to a
// remote file server through temporary names (sftp, ftp) clean up after a
// failed upload: which directories uploads in progress are using (so a
// failed upload never removes a directory another upload still needs),
// and what a failed upload could not remove because the connection was
// gone (removed later, over the next connection that works). It does no
// I/O itself: the drivers pass the remove calls in.
package leftovers

import (
	"strings"
	"sync"
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
