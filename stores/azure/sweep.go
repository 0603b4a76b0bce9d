package azure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/internal/leftovers"
)

var _ stores.StaleUploadSweeper = (*Store)(nil)

// sweepPageSize is how many blobs one listing page of the sweep asks for
// (Azure's maximum); a variable so tests can page with fewer.
var sweepPageSize int32 = 5000

// maxSweepBatch bounds the leftovers one sweep collects (memory); the
// rest wait for the next sweep.
const maxSweepBatch = 100_000

// uncommitted is a blob name that has staged blocks and no committed
// content, as the listing showed it.
type uncommitted struct {
	name string
	at   time.Time // Last-Modified: when its first block was staged
}

// SweepStaleUploads implements stores.StaleUploadSweeper: it deletes the
// uncommitted blocks that block uploads under the store's prefix left
// behind — a Put or a presigned multipart upload cut off before its block
// list was committed — once they are older than olderThan (Azure would
// keep them for 7 days). Deleting a blob that has only uncommitted blocks
// discards them; a blob with committed content is never deleted.
//
// Azure has no flag for "uncommitted only" in a listing, so the prefix is
// listed twice, in name order, with and without include=uncommittedblobs:
// a name only the first listing has is a candidate when its Last-Modified
// (on Azurite, the time its first block was staged) is older than
// olderThan. Each
// candidate is then checked (Get Blob Properties must answer 404: no
// committed blob) and deleted If-Unmodified-Since the cutoff, so a blob
// whose block list was committed between that check and the delete is
// kept (the service refuses the delete of a blob modified since). It
// costs two listings of the whole prefix: run it at start-up and from
// `ferry gc`, not often.
//
// The time compared is Azure's clock against this process's: keep
// olderThan well above any clock skew, and above the longest upload.
// Idempotent: a leftover already gone is not an error. The sweep stops at
// the first failure that means Azure is unavailable; other failures are
// skipped and the first is returned with the count.
func (s *Store) SweepStaleUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	stale, err := s.staleUncommitted(ctx, cutoff)
	if err != nil {
		return 0, err
	}
	return leftovers.AbortAll(ctx, stale, func(u uncommitted) error {
		err := s.deleteUncommitted(ctx, u, cutoff)
		switch {
		case errors.Is(err, errRefused):
			// Rare (a commit in the instant between check and delete);
			// on every candidate, it would mean the service evaluates
			// the condition unlike Azurite (see NOTES.md): say so.
			s.logger().Warn("azure: the conditional delete of an uncommitted blob was refused; kept", "blob", u.name, "reason", err.Error())
		case errors.Is(err, errKept):
			s.logger().Debug("azure: an uncommitted blob changed since it was listed; kept", "blob", u.name, "reason", err.Error())
		}
		return err
	}, func(u uncommitted) {
		s.logger().Info("azure: deleted the uncommitted blocks of an abandoned upload", "container", s.cfg.Container,
			"blob", u.name, "first_block", u.at.UTC().Format(time.RFC3339))
	})
}

// errKept marks a candidate the sweep found committed, gone or changed
// when it came to delete it: nothing to do, not a failure.
var errKept = leftovers.ErrKept

// errRefused is the errKept of a delete its condition refused (412).
var errRefused = fmt.Errorf("%w: the delete's condition failed", errKept)

// deleteUncommitted deletes one candidate if it still has no committed
// content, and none committed after cutoff.
func (s *Store) deleteUncommitted(ctx context.Context, u uncommitted, cutoff time.Time) error {
	_, err := s.cont.NewBlobClient(u.name).GetProperties(ctx, nil)
	if err == nil {
		return fmt.Errorf("%w: committed since the listing", errKept)
	}
	if err = classify(err); !errors.Is(err, stores.ErrNotFound) {
		return fmt.Errorf("azure get properties %s://%s@%s/%s: %w", s.cfg.Scheme, s.cfg.Container, s.cfg.Host, u.name, err)
	}
	return s.deleteUnlessCommittedSince(ctx, u.name, cutoff)
}

// deleteUnlessCommittedSince deletes name with If-Unmodified-Since:
// cutoff, which the service evaluates atomically with the delete: a blob
// committed after cutoff — a block list committed between the check above
// and this delete — fails it (412) and is kept, while a name with
// uncommitted blocks only counts as no blob, which the condition does not
// stop (Azurite's code says so: "treat uncommitted blob as nonexistent
// resource"), and is deleted with its blocks. If-None-Match: * cannot
// serve here: Azurite, after Azure, lets it pass on an existing blob.
func (s *Store) deleteUnlessCommittedSince(ctx context.Context, name string, cutoff time.Time) error {
	_, err := s.cont.NewBlobClient(name).Delete(ctx, &blob.DeleteOptions{AccessConditions: &blob.AccessConditions{
		ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfUnmodifiedSince: &cutoff},
	}})
	var re *azcore.ResponseError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re) && re.StatusCode == http.StatusPreconditionFailed:
		return fmt.Errorf("%w (committed after the cutoff)", errRefused)
	}
	if err = classify(err); errors.Is(err, stores.ErrNotFound) {
		return fmt.Errorf("%w: gone", errKept)
	}
	return fmt.Errorf("azure delete uncommitted blob %s://%s@%s/%s: %w", s.cfg.Scheme, s.cfg.Container, s.cfg.Host, name, err)
}

// staleUncommitted merges the two listings of the prefix (see
// SweepStaleUploads) and returns the names with uncommitted blocks only,
// first staged before cutoff.
func (s *Store) staleUncommitted(ctx context.Context, cutoff time.Time) ([]uncommitted, error) {
	prefix := s.dirPrefix("")
	newPager := func(withUncommitted bool) *flatPager {
		opts := &container.ListBlobsFlatOptions{
			Include:    container.ListBlobsInclude{UncommittedBlobs: withUncommitted},
			MaxResults: ptr(sweepPageSize),
		}
		if prefix != "" {
			opts.Prefix = &prefix
		}
		return &flatPager{p: s.cont.NewListBlobsFlatPager(opts)}
	}
	all, committed := newPager(true), newPager(false)
	var out []uncommitted
	for len(out) < maxSweepBatch {
		b, err := all.peek(ctx)
		if err != nil {
			return nil, s.fail("list uncommitted blobs", "", err)
		}
		if b == nil {
			break
		}
		all.next()
		name := *b.Name
		// Skip committed names before this one; stop at it or after.
		var c *container.BlobItem
		for {
			if c, err = committed.peek(ctx); err != nil {
				return nil, s.fail("list blobs", "", err)
			}
			if c == nil || *c.Name >= name {
				break
			}
			committed.next()
		}
		if c != nil && *c.Name == name {
			continue // has committed content
		}
		p := b.Properties
		if p == nil || p.LastModified == nil || !p.LastModified.Before(cutoff) {
			continue // young, or of unknown age: never old enough
		}
		out = append(out, uncommitted{name: name, at: *p.LastModified})
	}
	return out, nil
}

// flatPager walks a flat blob listing one item at a time.
type flatPager struct {
	p     *runtime.Pager[container.ListBlobsFlatResponse]
	items []*container.BlobItem
}

// peek is the current item (nil at the end), fetching pages as needed.
func (f *flatPager) peek(ctx context.Context) (*container.BlobItem, error) {
	for len(f.items) == 0 {
		if !f.p.More() {
			return nil, nil
		}
		page, err := f.p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range page.Segment.BlobItems {
			if b != nil && b.Name != nil {
				f.items = append(f.items, b)
			}
		}
	}
	return f.items[0], nil
}

// next moves past the current item.
func (f *flatPager) next() { f.items = f.items[1:] }

// SetLogger sets the logger of the sweep's reports (stores.Opener calls
// it).
func (s *Store) SetLogger(l *slog.Logger) { s.log.Store(l) }

func (s *Store) logger() *slog.Logger {
	if l := s.log.Load(); l != nil {
		return l
	}
	return slog.Default()
}
