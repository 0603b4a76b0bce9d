package leftovers

import (
	"context"
	"errors"

	"github.com/ferryml/ferry/stores"
)

// ErrKept marks an item a sweep found, when it came to remove it, not to
// be a leftover any more (committed or changed since the listing): it is
// left alone and counts as nothing, and is no error.
var ErrKept = errors.New("kept")

// AbortAll is the policy the object stores' stale-upload sweeps share
// (S3 and GCS multipart uploads): abort each item in turn and count the
// aborted ones. abort returns its error already classified into the
// stores sentinels. An item already gone (ErrNotFound: another sweep, the
// janitor or its client finished it) counts as nothing and is no error;
// ErrKept (found, when it came to it, not to be a leftover after all) the
// same; ErrUnavailable or the end of ctx stops the sweep with that error, since
// the rest would fail alike; any other error (one refused abort) is
// skipped and the first is returned with the count. aborted is called for
// each aborted item (to log it).
func AbortAll[T any](ctx context.Context, items []T, abort func(T) error, aborted func(T)) (removed int, err error) {
	var firstErr error
	for _, it := range items {
		err := abort(it)
		switch {
		case err == nil:
			removed++
			aborted(it)
		case errors.Is(err, stores.ErrNotFound), errors.Is(err, ErrKept):
		case errors.Is(err, stores.ErrUnavailable), ctx.Err() != nil:
			return removed, err
		default:
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return removed, firstErr
}
