package tracking

import (
	"errors"
	"path"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// artifacts/list (spec artifacts-api.md §5.4): a run's artifacts through
// the store layer.

// artifactFile is MLflow's FileInfo; file_size is omitted for directories
// and empty files (upstream sets it only when truthy).
type artifactFile struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize int64  `json:"file_size,omitempty"`
}

// proxiedRoot returns the destination-relative key of a servable proxied
// artifact root (§5.2), ok=false when root is not proxied or Ferry does
// not serve artifacts.
func (a *API) proxiedRoot(root string) (key string, ok bool, werr *wire.Error) {
	if a.cfg.Artifacts == nil {
		return "", false, nil
	}
	k, proxied, err := stores.ProxiedRootKey(root)
	switch {
	case errors.Is(err, stores.ErrNotUnderProxy):
		return "", true, wire.Errorf(wire.InternalError, "The artifact root %s is not under %s", root, stores.ProxyAnchor)
	case err != nil:
		return "", true, &wire.Error{Code: wire.InvalidParameterValue, Message: "Invalid path", Cause: err}
	}
	return k, proxied, nil
}

// artifactDir reads the directory parameter of a listing (name), checked
// by stores.SafePath ("" = the root), and the page_token both listings
// accept and ignore (a directory is one page).
func (p *params) artifactDir(name string) (string, *wire.Error) {
	rel, werr := p.str(name)
	if werr != nil {
		return "", werr
	}
	if rel != "" {
		k, err := stores.SafePath(rel)
		if err != nil {
			return "", &wire.Error{Code: wire.InvalidParameterValue, Message: "Invalid path", Cause: err}
		}
		rel = k
	}
	if _, werr := p.str("page_token"); werr != nil {
		return "", werr
	}
	return rel, nil
}

// listArtifacts is GET artifacts/list.
func (a *API) listArtifacts(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(true)
	if werr != nil {
		return wire.Send(c, werr)
	}
	rel, werr := p.artifactDir("path")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	ri, err := a.runInfo(ctx, id)
	if err != nil {
		return a.send(c, nil, err)
	}
	return a.sendListing(c, ri.ArtifactURI, rel)
}

// sendListing answers {"root_uri", "files"} for the directory rel
// (already checked with stores.SafePath) under an artifact root: a
// proxied root through the artifacts destination, another one through
// its own store.
func (a *API) sendListing(c *fiber.Ctx, root, rel string) error {
	ctx := c.UserContext()
	destKey, proxied, werr := a.proxiedRoot(root)
	if werr != nil {
		return a.send(c, nil, werr)
	}
	var store stores.Store
	dir := rel
	if proxied {
		store = a.cfg.Artifacts
		dir = path.Join(destKey, rel)
		if destKey == "" {
			dir = rel
		}
	} else {
		if a.cfg.OpenStore == nil {
			return a.send(c, nil, wire.Errorf(wire.NotImplemented, "Listing artifacts of %s is not supported by this server", root))
		}
		s, release, err := a.cfg.OpenStore(ctx, root)
		if err != nil {
			return a.send(c, nil, wire.FromStore(err))
		}
		defer release()
		store = s
	}
	var files []artifactFile
	page := stores.ListPage{}
	for {
		l, err := store.List(ctx, dir, page)
		if err != nil {
			return a.send(c, nil, wire.FromStore(err))
		}
		for _, e := range l.Entries {
			fp := stores.BaseName(e.Key)
			if rel != "" {
				fp = rel + "/" + fp
			}
			f := artifactFile{Path: fp, IsDir: e.IsDir}
			if !e.IsDir {
				f.FileSize = e.Size
			}
			files = append(files, f)
		}
		if l.NextAfter == "" {
			break
		}
		page.After = l.NextAfter
	}
	resp := fiber.Map{"root_uri": root}
	if len(files) > 0 {
		resp["files"] = files
	}
	return c.JSON(resp)
}

// listLoggedModelArtifacts is GET logged-models/{model_id}/artifacts/
// directories: like artifacts/list, under the model's artifact location,
// with the directory in artifact_directory_path. page_token is accepted
// and ignored (the whole directory is one page, as for runs).
func (a *API) listLoggedModelArtifacts(c *fiber.Ctx) error {
	id := c.Params("model_id")
	if werr := wire.CheckText("model_id", id); werr != nil {
		return wire.Send(c, werr)
	}
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	rel, werr := p.artifactDir("artifact_directory_path")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	m, err := a.activeLoggedModel(ctx, id)
	if err != nil {
		return a.send(c, nil, err)
	}
	return a.sendListing(c, m.Info.ArtifactURI, rel)
}
