package hdfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	hdfs "github.com/colinmarc/hdfs/v2"

	"github.com/ferryml/ferry/stores"
)

// Listing cursors. The namenode lists a directory in pages that resume
// after a name (getListing's startAfter), but the client only resumes
// within one open directory reader. So that reading a large directory page
// by page costs one pass, not one pass per page, the reader behind a page
// that ends with NextAfter is kept for a while, keyed by (dir, NextAfter),
// for the call that asks for the next page; any other call starts afresh
// and skips to After.
const (
	maxCursors = 32
	cursorTTL  = 30 * time.Second
)

type cursorKey struct{ dir, after string }

type cursor struct {
	cn      *conn
	f       *hdfs.FileReader
	pending []os.FileInfo // read from the namenode, not yet listed
	done    bool          // the namenode has nothing after pending
	at      time.Time
}

// next returns the directory's next child, or io.EOF.
func (c *cursor) next() (os.FileInfo, error) {
	if len(c.pending) == 0 {
		if c.done {
			return nil, io.EOF
		}
		batch, err := c.f.Readdir(defaultPageSize)
		if errors.Is(err, io.EOF) || (err == nil && len(batch) == 0) {
			c.done = true
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		c.done = len(batch) < defaultPageSize
		c.pending = batch
	}
	fi := c.pending[0]
	c.pending = c.pending[1:]
	return fi, nil
}

// takeCursor removes and returns the cursor left at (dir, after), if any;
// it also drops expired cursors.
func (s *Store) takeCursor(dir, after string) *cursor {
	if after == "" {
		return nil
	}
	var expired []*cursor
	s.cursorsMu.Lock()
	for k, c := range s.cursors {
		if time.Since(c.at) > cursorTTL {
			expired = append(expired, c)
			delete(s.cursors, k)
		}
	}
	c := s.cursors[cursorKey{dir, after}]
	delete(s.cursors, cursorKey{dir, after})
	s.cursorsMu.Unlock()
	for _, e := range expired {
		s.dropCursor(e, nil)
	}
	return c
}

// keepCursor stores c for the call that continues after after; the
// oldest cursor makes room when there are too many.
func (s *Store) keepCursor(dir, after string, c *cursor) {
	c.at = time.Now()
	var drop []*cursor
	s.cursorsMu.Lock()
	if s.cursors == nil {
		s.cursors = map[cursorKey]*cursor{}
	}
	k := cursorKey{dir, after}
	if twin := s.cursors[k]; twin != nil { // a concurrent listing of the same page
		drop = append(drop, twin)
		delete(s.cursors, k)
	}
	if len(s.cursors) >= maxCursors {
		var oldest cursorKey
		var o *cursor
		for key, c := range s.cursors {
			if o == nil || c.at.Before(o.at) {
				oldest, o = key, c
			}
		}
		drop = append(drop, o)
		delete(s.cursors, oldest)
	}
	s.cursors[k] = c
	s.cursorsMu.Unlock()
	for _, d := range drop {
		s.dropCursor(d, nil)
	}
}

func (s *Store) dropCursor(c *cursor, err error) {
	c.f.Close()
	s.release(c.cn, err)
}

// List implements stores.Store. The namenode returns children in byte
// order, which is key order.
func (s *Store) List(_ context.Context, dir string, page stores.ListPage) (stores.Listing, error) {
	if err := checkKey("list", dir); err != nil {
		return stores.Listing{}, err
	}
	if reserved(dir) {
		return stores.Listing{}, nil
	}
	limit := page.Limit
	if limit <= 0 || limit > defaultPageSize {
		limit = defaultPageSize
	}
	if cur := s.takeCursor(dir, page.After); cur != nil {
		out, err := s.listFrom(cur, dir, page.After, limit)
		if err == nil {
			return out, nil
		}
		// The cursor's connection may have died with a namenode restart:
		// start afresh.
	}
	var f *hdfs.FileReader
	cn, err := s.acquireFor(func(c *hdfs.Client) (err error) {
		f, err = c.Open(s.hdfsPath(dir))
		return err
	})
	if errors.Is(err, stores.ErrNotFound) {
		return stores.Listing{}, nil
	}
	if err != nil {
		return stores.Listing{}, fmt.Errorf("list %q: %w", dir, err)
	}
	cur := &cursor{cn: cn, f: f}
	if !f.Stat().IsDir() {
		s.dropCursor(cur, nil)
		return stores.Listing{}, nil // a file lists as empty, as MLflow's list_artifacts has it
	}
	return s.listFrom(cur, dir, page.After, limit)
}

// listFrom reads one page from cur, which it keeps for the next page or
// drops.
func (s *Store) listFrom(cur *cursor, dir, after string, limit int) (stores.Listing, error) {
	var out stores.Listing
	for {
		fi, err := cur.next()
		if errors.Is(err, io.EOF) {
			s.dropCursor(cur, nil)
			return out, nil
		}
		if err != nil {
			err = classify(err)
			s.dropCursor(cur, err)
			if errors.Is(err, stores.ErrNotFound) { // removed while listed
				return stores.Listing{}, nil
			}
			return stores.Listing{}, fmt.Errorf("list %q: %w", dir, err)
		}
		key := stores.JoinKey(dir, fi.Name())
		if reserved(key) || (after != "" && key <= after) {
			continue
		}
		if len(out.Entries) == limit {
			out.NextAfter = out.Entries[limit-1].Key
			cur.pending = append([]os.FileInfo{fi}, cur.pending...)
			s.keepCursor(dir, out.NextAfter, cur)
			return out, nil
		}
		out.Entries = append(out.Entries, entry(key, fi))
	}
}
