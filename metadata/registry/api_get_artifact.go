package registry

import (
	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// getModelVersionArtifact is GET <prefix>/model-versions/get-artifact?
// name=&version=&path= (spec artifacts-api.md §5.4): one file of a model
// version, streamed from the version's download location
// (versionDownloadRoot) through the artifacts destination for a proxied
// root or the root's own store, with werkzeug's Content-Disposition,
// upstream's content type and Range support.
//
// As upstream, path is required and checked first (stores.SafePath: 400
// "Invalid path"), then name and version. Deviations, on purpose: a
// missing or empty path is INVALID_PARAMETER_VALUE (upstream: Flask's
// HTML 400, or a 500 for ""), a missing file or a directory is 404 / 400
// (upstream's send_file fails with a 500), and the version's location is
// re-checked before it is read (versionDownloadRoot).
func (a *API) getModelVersionArtifact(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	raw, werr := r.ReqStr("path")
	if werr != nil {
		return wire.Send(c, werr)
	}
	rel, err := stores.SafePath(raw)
	if err != nil || rel == "" {
		return wire.Send(c, wire.InvalidPath(err))
	}
	name, werr := modelName(r, "name")
	if werr != nil {
		return wire.Send(c, werr)
	}
	version, werr := versionParam(r)
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	dr, err := a.versionDownloadRoot(ctx, name, version)
	if reason := uriReason(err); reason != "" && !isWireError(err) {
		err = wire.Errorf(wire.InvalidParameterValue, "%s", reason)
	}
	if err != nil {
		return a.send(c, nil, err)
	}
	if err := a.roots.Send(c, dr.root, stores.JoinKey(dr.prefix, rel)); err != nil {
		return a.send(c, nil, err)
	}
	return nil
}
