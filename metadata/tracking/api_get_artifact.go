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
	args, werr := wire.GetArgs(c, "run_id", "run_uuid", "path")
	if werr != nil {
		return wire.Send(c, werr)
	}
	id := args["run_id"]
	if id == "" {
		id = args["run_uuid"]
	}
	for _, f := range []string{"run_id", "path"} {
		v := args[f]
		if f == "run_id" {
			v = id
		}
		if v == "" {
			return wire.Send(c, wire.MissingParam(f))
		}
		if werr := wire.CheckText(f, v); werr != nil {
			return wire.Send(c, werr)
		}
	}
	rel, err := stores.SafePath(args["path"])
	if err != nil || rel == "" {
		return wire.Send(c, &wire.Error{Code: wire.InvalidParameterValue, Message: "Invalid path", Cause: err})
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
