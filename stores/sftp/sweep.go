package sftp

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/internal/leftovers"
)

// SweepStaleUploads is stores.StaleUploadSweeper (ferry gc and the start-up
// sweep for --temp-file-max-age): it deletes the upload temp files
// (TempPrefix) that a crash of Ferry left below the root and whose mtime on
// the server is more than maxAge old, then the directories left empty, and
// says how many files went; see leftovers.Tracker.Sweep for its bounds.
func (s *Store) SweepStaleUploads(ctx context.Context, maxAge time.Duration) (int, error) {
	return s.left.Sweep(ctx, sweepRemote{s}, TempPrefix, maxAge)
}

// sweepRemote gives leftovers.Sweep the SFTP calls it needs.
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

var _ stores.StaleUploadSweeper = (*Store)(nil)
