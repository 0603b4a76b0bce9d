package tracking

import (
	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// getArtifact is GET <prefix>/get-artifact?run_id=&path= (spec
// artifacts-api.md §5.4): one file of a run's artifacts, streamed from the
// run's artifact root (the artifacts destination for a proxied root, the
// root's own store otherwise) as an attachment with werkzeug's
// Content-Disposition, upstream's content type, and Range support.
//
// Deviations from upstream, on purpose: a missing or empty path is 400
// INVALID_PARAMETER_VALUE (upstream: Flask's HTML 400 for an absent one, a
// 500 for ""), and a missing file or a directory is 404 / 400 in MLflow's
// error shape where upstream's send_file fails with a 500.
func (a *API) getArtifact(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, _, werr := r.Str("run_id")
	if werr == nil && id == "" {
		id, _, werr = r.Str("run_uuid")
	}
	if werr == nil && id == "" {
		werr = wire.MissingParam("run_id")
	}
	if werr != nil {
		return wire.Send(c, werr)
	}
	path, werr := r.ReqStr("path")
	if werr != nil {
		return wire.Send(c, werr)
	}
	rel, err := stores.SafePath(path)
	if err != nil || rel == "" {
		return wire.Send(c, wire.InvalidPath(err))
	}
	ctx := c.UserContext()
	ri, err := a.runInfo(ctx, id)
	if err != nil {
		return a.send(c, nil, err)
	}
	if err := a.roots.Send(c, ri.ArtifactURI, rel); err != nil {
		return a.send(c, nil, err)
	}
	return nil
}

// getLoggedModelArtifact is GET <prefix>/ajax-api/2.0/mlflow/logged-models/
// <model_id>/artifacts/files?artifact_file_path= (spec artifacts-api.md
// §5.4): /get-artifact rooted at the logged model's artifact location.
// A missing or empty artifact_file_path is upstream's 400 BAD_REQUEST.
func (a *API) getLoggedModelArtifact(c *fiber.Ctx) error {
	id := c.Params("model_id")
	if werr := wire.CheckText("model_id", id); werr != nil {
		return wire.Send(c, werr)
	}
	raw := c.Query("artifact_file_path")
	if raw == "" {
		return wire.Send(c, wire.Errorf(wire.BadRequest, `Request must include the "artifact_file_path" query parameter.`))
	}
	if werr := wire.CheckText("artifact_file_path", raw); werr != nil {
		return wire.Send(c, werr)
	}
	rel, err := stores.SafePath(raw)
	if err != nil || rel == "" {
		return wire.Send(c, wire.InvalidPath(err))
	}
	m, err := a.activeLoggedModel(c.UserContext(), id)
	if err != nil {
		return a.send(c, nil, err)
	}
	if err := a.roots.Send(c, m.Info.ArtifactURI, rel); err != nil {
		return a.send(c, nil, err)
	}
	return nil
}
