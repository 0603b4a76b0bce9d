package tracking

import (
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
			return "", wire.InvalidPath(err)
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
	store, dir, release, werr := a.roots.Locate(ctx, root, rel)
	defer release()
	if werr != nil {
		return a.send(c, nil, werr)
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
