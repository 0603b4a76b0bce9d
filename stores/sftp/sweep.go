package sftp

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/ferryml/ferry/stores/internal/leftovers"
)

// RemoveStaleTemps removes, anywhere under the store, the temporary files
// of uploads (TempPrefix names) last written more than maxAge ago by the
// server's clock, and the directories that leaves empty; it returns how
// many files it removed. Those files are what a crash of Ferry leaves of
// the uploads it cut off (a failed upload in a running Ferry removes its
// own). It is the local store's method of the same name for this driver,
// run in the background at start for --temp-file-max-age; see
// leftovers.Tracker.Sweep for the bounds and why maxAge must exceed any
// upload's stall and the clock skew to the server. Each directory is
// listed over a pooled connection of its own, so requests are served
// meanwhile.
func (s *Store) RemoveStaleTemps(ctx context.Context, maxAge time.Duration) (int, error) {
	return s.left.Sweep(ctx, sweepRemote{s}, TempPrefix, maxAge)
}

// sweepRemote is the store as leftovers.Sweep walks it.
type sweepRemote struct{ s *Store }

func (r sweepRemote) ReadDir(ctx context.Context, dir string) ([]leftovers.Dirent, error) {
	var out []leftovers.Dirent
	err := r.s.with(ctx, "sweep list", dir, always, func(c *conn) error {
		out = nil
		infos, err := c.sftp.ReadDir(r.s.remote(dir))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, fi := range infos {
			out = append(out, leftovers.Dirent{Name: fi.Name(), Dir: fi.IsDir(), Regular: fi.Mode().IsRegular(), ModTime: fi.ModTime()})
		}
		return nil
	})
	return out, err
}

func (r sweepRemote) Remove(ctx context.Context, key string) error {
	return r.s.with(ctx, "sweep remove", key, always, func(c *conn) error {
		return ignoreMissing(c.sftp.Remove(r.s.remote(key)))
	})
}

func (r sweepRemote) RemoveDir(ctx context.Context, key string) error {
	return r.s.with(ctx, "sweep rmdir", key, always, func(c *conn) error {
		return c.sftp.RemoveDirectory(r.s.remote(key))
	})
}
