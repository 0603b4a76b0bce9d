package tracing

import (
	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// calculateFilterCorrelation is POST
// /api/3.0/mlflow/traces/calculate-filter-correlation: how strongly two
// trace filters co-occur (NPMI) among the traces of experiment_ids that
// match base_filter. Filters use the traces/search grammar (§6.3a).
func (a *API) calculateFilterCorrelation(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	ids, werr := r.Strs("experiment_ids")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if len(ids) == 0 {
		return wire.Send(c, wire.MissingParam("experiment_ids"))
	}
	exps, werr := experimentIDs(ids)
	if werr != nil {
		return wire.Send(c, werr)
	}
	var filters [3][]search.Comparison
	for i, name := range []string{"filter_string1", "filter_string2", "base_filter"} {
		var s string
		if i < 2 {
			s, werr = r.ReqStr(name)
		} else {
			s, _, werr = r.Str(name)
		}
		if werr != nil {
			return wire.Send(c, werr)
		}
		var err error
		if filters[i], err = search.ParseTracesFilter(s); err != nil {
			return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "%s", err.Error()))
		}
	}
	counts, err := a.countCorrelation(c.UserContext(), exps, filters[2], filters[0], filters[1])
	if err != nil {
		return a.send(c, nil, err)
	}
	raw, smoothed := npmi(counts)
	return a.send(c, fiber.Map{
		"npmi":          wire.Double(raw),
		"npmi_smoothed": wire.Double(smoothed),
		"filter1_count": counts.filter1,
		"filter2_count": counts.filter2,
		"joint_count":   counts.joint,
		"total_count":   counts.total,
	}, nil)
}
