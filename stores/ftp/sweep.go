package ftp

import (
	"context"
	"strings"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/internal/leftovers"
)

// SweepStaleUploads is stores.StaleUploadSweeper (ferry gc and the start-up
// sweep for --temp-file-max-age): it removes what a crash of Ferry left on
// the FTP server, TempPrefix files under the root whose MDTM (or, without
// MDTM, listing time) is older than maxAge, and the directories that
// empties; bounds and caveats are leftovers.Tracker.Sweep's.
func (s *Store) SweepStaleUploads(ctx context.Context, maxAge time.Duration) (int, error) {
	return s.left.Sweep(ctx, sweepRemote{s}, TempPrefix, maxAge)
}

// sweepRemote lists and removes over pooled control connections, one
// per call.
type sweepRemote struct{ s *Store }

func (r sweepRemote) ReadDir(ctx context.Context, dir string) ([]leftovers.Dirent, error) {
	var out []leftovers.Dirent
	err := r.s.with(ctx, "sweep list", dir, always, func(c *conn) error {
		out = nil
		p := r.s.remote(dir)
		if err := c.sc.ChangeDir(p); err != nil {
			if connectionLost(err) {
				return err
			}
			return nil // missing, or not a directory
		}
		all, err := c.sc.List("")
		if err != nil {
			return err
		}
		for _, e := range all {
			d := leftovers.Dirent{Name: e.Name, Dir: e.Type == ftp.EntryTypeFolder, Regular: e.Type == ftp.EntryTypeFile, ModTime: e.Time}
			if d.Regular && strings.HasPrefix(e.Name, TempPrefix) && c.sc.IsGetTimeSupported() {
				// LIST times are to the minute at best, and to the day
				// for files older than six months.
				t, err := c.sc.GetTime(r.s.remote(stores.JoinKey(dir, e.Name)))
				if err != nil && connectionLost(err) {
					return err
				}
				if err == nil {
					d.ModTime = t
				}
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

func (r sweepRemote) Remove(ctx context.Context, key string) error {
	return r.s.with(ctx, "sweep remove", key, always, func(c *conn) error {
		return r.s.ignoreMissing(c, r.s.remote(key), c.sc.Delete(r.s.remote(key)))
	})
}

func (r sweepRemote) RemoveDir(ctx context.Context, key string) error {
	return r.s.with(ctx, "sweep rmdir", key, always, func(c *conn) error {
		return c.sc.RemoveDir(r.s.remote(key))
	})
}

var _ stores.StaleUploadSweeper = (*Store)(nil)
