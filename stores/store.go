// Package stores is Ferry's storage abstraction: a small streaming Store
// interface that every artifact backend implements, optional capabilities
// found by type assertion (presigned URLs, multipart uploads), shared sentinel
// errors, safe key handling, a URI-scheme → driver table and the one
// instrumented wrapper that every store is used through.
//
// Keys are always "clean": slash-separated, relative, without empty, "." or
// ".." segments (see CleanKey). The empty key names the store's root.
package stores

import (
	"context"
	"io"
	"time"
)

// Entry describes one object or directory ("common prefix") in a store.
type Entry struct {
	// Key is the full clean key relative to the store root.
	Key string
	// IsDir is true for directories / common prefixes.
	IsDir bool
	// Size is the object size in bytes; 0 for directories.
	Size int64
	// ModTime is the last modification time when the store knows it.
	ModTime time.Time
}

// ListPage asks for one page of a directory listing.
type ListPage struct {
	// After, when set, resumes a listing strictly after this child key (the
	// NextAfter of the previous page).
	After string
	// Limit caps the entries in the page; <= 0 means the driver's default
	// (at most 1000).
	Limit int
}

// Listing is one page of a directory listing, sorted by key.
type Listing struct {
	Entries []Entry
	// NextAfter is non-empty when more entries follow; pass it as
	// ListPage.After to read the next page.
	NextAfter string
}

// Store is the streaming interface every artifact backend implements.
//
// Error contract (all methods): errors wrap one of the sentinels in errors.go
// when the condition is one of theirs (ErrNotFound, ErrInvalidKey, ...), so
// callers decide with errors.Is; anything else is an infrastructure failure.
// Context cancellation aborts a transfer and leaves nothing half-written.
type Store interface {
	// Stat describes the object or directory at key. A missing key returns
	// ErrNotFound.
	Stat(ctx context.Context, key string) (Entry, error)

	// List returns the direct children of the directory dir, sorted by key.
	// A missing directory, or a dir that names an object, yields an empty
	// listing (not an error), as MLflow's list_artifacts does.
	List(ctx context.Context, dir string, page ListPage) (Listing, error)

	// Open streams the object at key starting at offset. length < 0 reads to
	// the end. The returned Entry describes the whole object. A missing key
	// returns ErrNotFound; a directory returns ErrIsDir; an offset at or past
	// the end of a non-empty object returns ErrInvalidRange (as HTTP and S3
	// treat it); a length past the end is clamped.
	Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Entry, error)

	// Put stores r at key, replacing any previous object atomically: readers
	// see either the old object or the whole new one, never a mix or a
	// prefix. size is the exact byte count when known, or -1. If r ends early
	// (fewer than size bytes) or fails, nothing is stored and the error wraps
	// ErrIncomplete or r's error.
	Put(ctx context.Context, key string, r io.Reader, size int64) error

	// Delete removes the object at key, or everything under it when key is a
	// directory. Deleting a missing key succeeds.
	Delete(ctx context.Context, key string) error
}

// Driver names the backend behind a store, for metrics and logs ("local",
// "s3", ...). Every driver implements it.
type Driver interface {
	DriverName() string
}
