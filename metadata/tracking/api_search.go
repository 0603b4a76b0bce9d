package tracking

import (
	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// runs/search (spec tracking-api.md §6.1) and experiments/search (§6.2).

const (
	searchRunsDefaultMax = 1000
	searchMaxResults     = 50000
)

// searchError turns a parse error into upstream's 400.
func searchError(err error) *wire.Error {
	return wire.Errorf(wire.InvalidParameterValue, "%s", err.Error())
}

// searchRuns is POST runs/search.
func (a *API) searchRuns(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	expStrs, werr := p.strs("experiment_ids")
	if werr != nil {
		return wire.Send(c, werr)
	}
	filter, werr := p.str("filter")
	if werr != nil {
		return wire.Send(c, werr)
	}
	stages, werr := p.viewType("run_view_type")
	if werr != nil {
		return wire.Send(c, werr)
	}
	maxResults, given, werr := p.int64Field("max_results")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if !given {
		maxResults = searchRunsDefaultMax
	}
	if maxResults > searchMaxResults {
		return wire.Send(c, typeError("max_results", p.raw("max_results")))
	}
	if maxResults < 1 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"Invalid value for request parameter max_results. It must be a positive integer, but got %d", maxResults))
	}
	orderRaw, werr := p.strs("order_by")
	if werr != nil {
		return wire.Send(c, werr)
	}
	token, werr := p.str("page_token")
	if werr != nil {
		return wire.Send(c, werr)
	}
	offset, werr := wire.ParsePageToken(token)
	if werr != nil {
		return wire.Send(c, werr)
	}
	expIDs := make([]int64, 0, len(expStrs))
	for _, s := range expStrs {
		id, werr := parseExperimentID("experiment_ids", s)
		if werr != nil {
			return wire.Send(c, werr)
		}
		expIDs = append(expIDs, id)
	}
	comps, err := search.ParseRunsFilter(filter)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	order, err := search.ParseRunsOrderByList(orderRaw)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	resp := fiber.Map{}
	if len(expIDs) == 0 {
		return c.JSON(resp)
	}
	q := search.RunsQuery{
		Columns:       "runs.run_uuid, runs.name, runs.experiment_id, runs.user_id, runs.status, runs.start_time, runs.end_time, runs.artifact_uri, runs.lifecycle_stage",
		ExperimentIDs: expIDs, Stages: stages, Filter: comps, OrderBy: order,
		Limit: maxResults + 1, Offset: offset,
	}
	ctx := c.UserContext()
	var runs []*Run
	var next string
	runs, next, err = a.searchRunRows(ctx, q, maxResults, offset)
	if next != "" {
		resp["next_page_token"] = next
	}
	if len(runs) > 0 {
		resp["runs"] = runs
	}
	return a.send(c, resp, err)
}

// searchExperiments is GET and POST experiments/search.
func (a *API) searchExperiments(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	stages, werr := p.viewType("view_type")
	if werr != nil {
		return wire.Send(c, werr)
	}
	maxResults, _, werr := p.int64Field("max_results")
	if werr != nil {
		return wire.Send(c, werr)
	}
	orderRaw, werr := p.strs("order_by")
	if werr != nil {
		return wire.Send(c, werr)
	}
	filter, werr := p.str("filter")
	if werr != nil {
		return wire.Send(c, werr)
	}
	token, werr := p.str("page_token")
	if werr != nil {
		return wire.Send(c, werr)
	}
	// Upstream's store checks max_results first: absent is 0 and refused.
	if maxResults < 1 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %d for parameter 'max_results' supplied. It must be a positive integer", maxResults))
	}
	if maxResults > searchMaxResults {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %d for parameter 'max_results' supplied. It must be at most %d", maxResults, searchMaxResults))
	}
	comps, err := search.ParseExperimentsFilter(filter)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	order, err := search.ParseExperimentsOrderByList(orderRaw)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	offset, werr := wire.ParsePageToken(token)
	if werr != nil {
		return wire.Send(c, werr)
	}
	q := search.ExperimentsQuery{
		Columns: "experiments.experiment_id, experiments.name, experiments.artifact_location, experiments.lifecycle_stage, experiments.creation_time, experiments.last_update_time",
		Stages:  stages, Filter: comps, OrderBy: order, Limit: maxResults + 1, Offset: offset,
	}
	ctx := c.UserContext()
	resp := fiber.Map{}
	var exps []*Experiment
	var next string
	exps, next, err = a.searchExperimentRows(ctx, q, maxResults, offset)
	if next != "" {
		resp["next_page_token"] = next
	}
	if len(exps) > 0 {
		resp["experiments"] = exps
	}
	return a.send(c, resp, err)
}
