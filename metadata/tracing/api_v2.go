package tracing

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// The legacy v2 trace routes (StartTrace, EndTrace, GetTraceInfo,
// SearchTraces), kept by upstream for old clients.

// pairs reads a v2 list of {key, value} into a map (last wins).
func pairs(r *wire.Request, field string) (map[string]string, *wire.Error) {
	objs, werr := r.Objects(field)
	if werr != nil || objs == nil {
		return nil, werr
	}
	out := map[string]string{}
	for i, m := range objs {
		path := fmt.Sprintf("%s[%d]", field, i)
		k, ok, werr := strField(m, path, "key")
		if werr != nil {
			return nil, werr
		}
		if !ok {
			return nil, wire.MissingParam(path + ".key")
		}
		v, _, werr := strField(m, path, "value")
		if werr != nil {
			return nil, werr
		}
		out[k] = v
	}
	return out, checkPairs(field, out)
}

// metadataAndTags reads the v2 request_metadata and tags lists.
func metadataAndTags(r *wire.Request) (md, tags map[string]string, werr *wire.Error) {
	if md, werr = pairs(r, "request_metadata"); werr == nil {
		tags, werr = pairs(r, "tags")
	}
	return md, tags, werr
}

// startTraceV2 is the legacy POST /api/2.0/mlflow/traces: the server
// makes the id (tr-<32 hex>) and the trace starts IN_PROGRESS.
func (a *API) startTraceV2(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	expID, werr := r.ReqStr("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ts, _, werr := r.Int("timestamp_ms")
	if werr != nil {
		return wire.Send(c, werr)
	}
	md, tags, werr := metadataAndTags(r)
	if werr != nil {
		return wire.Send(c, werr)
	}
	t := &traceRow{ID: "tr-" + newHexID(16), TimestampMs: ts, Status: "IN_PROGRESS", Metadata: md, Tags: tags}
	out, err := a.startTrace(c.UserContext(), t, expID)
	if err != nil {
		return a.send(c, nil, err)
	}
	return a.send(c, fiber.Map{"trace_info": out.v2()}, nil)
}

// endTraceV2Route is the legacy PATCH /api/2.0/mlflow/traces/<request_id>.
func (a *API) endTraceV2Route(c *fiber.Ctx) error {
	id, werr := traceIDParam(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	ts, _, werr := r.Int("timestamp_ms")
	if werr != nil {
		return wire.Send(c, werr)
	}
	status := "STATE_UNSPECIFIED"
	if v, ok := r.Value("status"); ok {
		if status, werr = parseState("status", v); werr != nil {
			// parseState fails only on a wrong type; show it as sent.
			return wire.Send(c, r.TypeError("status"))
		}
	}
	md, tags, werr := metadataAndTags(r)
	if werr != nil {
		return wire.Send(c, werr)
	}
	out, err := a.endTraceV2(c.UserContext(), id, ts, status, md, tags)
	if err != nil {
		return a.send(c, nil, err)
	}
	return a.send(c, fiber.Map{"trace_info": out.v2()}, nil)
}
