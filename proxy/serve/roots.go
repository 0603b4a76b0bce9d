package serve

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// Roots maps an artifact root URI (a run's artifact_uri, a logged model's
// artifact_location, a model version's download URI) to the store that
// holds it, as upstream's handlers do (spec artifacts-api.md §5.4): a
// proxied root (mlflow-artifacts:…, http(s)://…/api/2.0/mlflow-artifacts/
// artifacts/…) when the server serves artifacts is a place in the
// destination store; any other root is opened as a store of its own.
type Roots struct {
	// Destination is the --artifacts-destination store, nil when the
	// server does not serve artifacts (proxied roots are then opened like
	// any other URI, and fail).
	Destination *stores.Instrumented
	// Open opens the store of a non-proxied root for one request; release
	// is called when done with it. It must not create anything. nil
	// refuses such roots with NOT_IMPLEMENTED. stores.Opener.Acquire is the
	// production implementation.
	Open func(ctx context.Context, uri string) (s stores.Store, release func(), err error)
}

// Locate returns the store holding root and the key of rel in it; rel is
// a clean key relative to the root (checked by stores.SafePath or
// stores.CleanKey), "" for the root itself. The caller calls release
// (never nil) when done with the store and everything read from it.
// Errors are MLflow errors: a proxied root whose path leaves the
// destination is 400 "Invalid path".
func (r Roots) Locate(ctx context.Context, root, rel string) (s stores.Store, key string, release func(), werr *wire.Error) {
	noop := func() {}
	destKey, proxied, werr := r.proxied(root)
	if werr != nil {
		return nil, "", noop, werr
	}
	if proxied {
		return r.Destination, stores.JoinKey(destKey, rel), noop, nil
	}
	if r.Open == nil {
		return nil, "", noop, wire.Errorf(wire.NotImplemented, "Reading the artifacts of %s is not supported by this server", stores.RedactURI(root))
	}
	st, done, err := r.Open(ctx, root)
	if err != nil {
		return nil, "", noop, wire.FromStore(err)
	}
	return st, rel, done, nil
}

// Send answers a GET or HEAD with the file rel (a clean key, not "")
// below the artifact root: Locate, then File with the Framework
// disposition, as upstream's /get-artifact and
// /model-versions/get-artifact send files. A non-nil result is a
// *wire.Error for the caller to send.
func (r Roots) Send(c *fiber.Ctx, root, rel string) error {
	store, key, release, werr := r.Locate(c.UserContext(), root, rel)
	if werr != nil {
		release()
		return werr
	}
	return File(c, store, key, Framework, release)
}

// proxied returns the destination-relative key of a servable proxied
// root (stores.ProxiedRootKey), ok=false when root is not proxied or there
// is no destination.
func (r Roots) proxied(root string) (key string, ok bool, werr *wire.Error) {
	if r.Destination == nil {
		return "", false, nil
	}
	k, proxied, err := stores.ProxiedRootKey(root)
	switch {
	case errors.Is(err, stores.ErrNotUnderProxy):
		return "", true, wire.Errorf(wire.InternalError, "The artifact root %s is not under %s", stores.RedactURI(root), stores.ProxyAnchor)
	case err != nil:
		return "", true, wire.InvalidPath(err)
	}
	return k, proxied, nil
}
