package tracing

import (
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// Trace search (§2.6, §6.3a): max_results default 100, at most 500.
const (
	defaultMaxResults = 100
	maxMaxResults     = 500
	maxExperimentIDs  = 1000
)

// searchArgs are the parameters both search versions share.
type searchArgs struct {
	exps    []int64
	filter  []search.Comparison
	orderBy []search.OrderBy
	max     int64
	offset  int64
}

// experimentIDs converts the experiment ids of a request (at most
// maxExperimentIDs); an id that is not a number names no experiment and
// is dropped.
func experimentIDs(ids []string) ([]int64, *wire.Error) {
	if len(ids) > maxExperimentIDs {
		return nil, wire.Errorf(wire.InvalidParameterValue, "Too many experiments: %d (at most %d).", len(ids), maxExperimentIDs)
	}
	var out []int64
	for _, id := range ids {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

func readSearchArgs(r *wire.Request, expIDs []string) (*searchArgs, *wire.Error) {
	exps, werr := experimentIDs(expIDs)
	if werr != nil {
		return nil, werr
	}
	sa := &searchArgs{max: defaultMaxResults, exps: exps}
	filter, _, werr := r.Str("filter")
	if werr != nil {
		return nil, werr
	}
	var err error
	if sa.filter, err = search.ParseTracesFilter(filter); err != nil {
		return nil, wire.Errorf(wire.InvalidParameterValue, "%s", err.Error())
	}
	order, werr := r.Strs("order_by")
	if werr != nil {
		return nil, werr
	}
	if sa.orderBy, err = search.ParseTracesOrderBy(order); err != nil {
		return nil, wire.Errorf(wire.InvalidParameterValue, "%s", err.Error())
	}
	if n, ok, werr := r.Int("max_results"); werr != nil {
		return nil, werr
	} else if ok {
		if n > maxMaxResults || n < 1 {
			return nil, wire.Errorf(wire.InvalidParameterValue, "Invalid value %d for parameter 'max_results' supplied. It must be between 1 and %d.", n, maxMaxResults)
		}
		sa.max = n
	}
	token, _, werr := r.Str("page_token")
	if werr != nil {
		return nil, werr
	}
	if sa.offset, werr = wire.ParsePageToken(token); werr != nil {
		return nil, werr
	}
	return sa, nil
}

// searchTracesV3 is POST /api/3.0/mlflow/traces/search.
func (a *API) searchTracesV3(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	list, werr := r.Objects("locations")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if len(list) == 0 {
		return wire.Send(c, wire.MissingParam("locations"))
	}
	var expIDs []string
	for i, loc := range list {
		path := fmt.Sprintf("locations[%d]", i)
		expRaw, ok := loc["mlflow_experiment"]
		if !ok || expRaw == nil {
			continue // other location kinds hold no traces here
		}
		exp, werr := wire.AsObject(path+".mlflow_experiment", expRaw)
		if werr != nil {
			return wire.Send(c, werr)
		}
		id, _, werr := strField(exp, path+".mlflow_experiment", "experiment_id")
		if werr != nil {
			return wire.Send(c, werr)
		}
		expIDs = append(expIDs, id)
	}
	sa, werr := readSearchArgs(r, expIDs)
	if werr != nil {
		return wire.Send(c, werr)
	}
	return a.sendSearch(c, sa, func(t *traceRow) any { return t.v3() })
}

// searchTracesV2 is the legacy GET /api/2.0/mlflow/traces.
func (a *API) searchTracesV2(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	expIDs, werr := r.Strs("experiment_ids")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if len(expIDs) == 0 {
		return wire.Send(c, wire.MissingParam("experiment_ids"))
	}
	sa, werr := readSearchArgs(r, expIDs)
	if werr != nil {
		return wire.Send(c, werr)
	}
	return a.sendSearch(c, sa, func(t *traceRow) any { return t.v2() })
}

// sendSearch runs a search and answers {"traces": [shape(t)…],
// "next_page_token"} (empty parts omitted).
func (a *API) sendSearch(c *fiber.Ctx, sa *searchArgs, shape func(*traceRow) any) error {
	ts, next, err := a.searchTraces(c.UserContext(), sa)
	if err != nil {
		return a.send(c, nil, err)
	}
	body := fiber.Map{}
	if len(ts) > 0 {
		infos := make([]any, len(ts))
		for i, t := range ts {
			infos[i] = shape(t)
		}
		body["traces"] = infos
	}
	if next != "" {
		body["next_page_token"] = next
	}
	return a.send(c, body, nil)
}
