package stores

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Helpers for drivers over flat object namespaces (S3, GCS, Azure Blob),
// which list in their own name order and read with ranged GETs.

// ListBound is the backend name past which no entry can still sort (by
// key) before full, the backend name of a listed child of prefix: only a
// directory whose name is a prefix of full's name can, listed as
// name + "/". A driver paging a listing in key order reads the backend
// until its names pass this bound.
func ListBound(full, prefix string) string {
	name := strings.TrimPrefix(full, prefix)
	bound := full
	for j := 1; j <= len(name); j++ {
		if b := prefix + name[:j] + "/"; b > bound {
			bound = b
		}
	}
	return bound
}

// OpenWithoutRead answers the cases of Store.Open's contract that need no
// read of the object: the root (ErrIsDir), a negative offset
// (ErrInvalidRange), and a zero-length read, answered from stat (the
// object's Entry and an empty body, or ErrIsDir / ErrInvalidRange /
// stat's error). done is false when the caller must read the object.
func OpenWithoutRead(ctx context.Context, stat func(context.Context, string) (Entry, error), key string, offset, length int64) (rc io.ReadCloser, e Entry, done bool, err error) {
	if key == "" {
		return nil, Entry{}, true, fmt.Errorf("open root: %w", ErrIsDir)
	}
	if offset < 0 {
		return nil, Entry{}, true, fmt.Errorf("open %s at %d: %w", key, offset, ErrInvalidRange)
	}
	if length != 0 {
		return nil, Entry{}, false, nil
	}
	e, err = stat(ctx, key)
	if err != nil {
		return nil, e, true, err
	}
	if e.IsDir {
		return nil, e, true, fmt.Errorf("open %s: %w", key, ErrIsDir)
	}
	if offset > e.Size || (offset == e.Size && e.Size > 0) {
		return nil, e, true, fmt.Errorf("open %s at %d of %d: %w", key, offset, e.Size, ErrInvalidRange)
	}
	return io.NopCloser(strings.NewReader("")), e, true, nil
}
