package registry

import (
	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// Result limits (spec tracking-api.md §4).
const (
	modelsDefaultMax   = 100
	modelsMaxResults   = 1000
	versionsDefaultMax = 200000
	versionsMaxResults = 200000
)

// searchParams reads filter, max_results, order_by and page_token.
func searchParams(c *fiber.Ctx, defMax, limit int64) (filter string, orderBy []string, max, offset int64, werr *wire.Error) {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return
	}
	if filter, _, werr = r.Str("filter"); werr != nil {
		return
	}
	if orderBy, werr = r.Strs("order_by"); werr != nil {
		return
	}
	n, ok, werr := r.Int("max_results")
	if werr != nil {
		return
	}
	max = defMax
	if ok {
		max = n
	}
	if max < 1 || max > limit {
		werr = wire.Errorf(wire.InvalidParameterValue,
			"Invalid value for request parameter max_results. It must be at most %d, but got value %d", limit, max)
		return
	}
	token, _, werr := r.Str("page_token")
	if werr != nil {
		return
	}
	offset, werr = wire.ParsePageToken(token)
	return
}

func searchError(err error) *wire.Error {
	return wire.Errorf(wire.InvalidParameterValue, "%s", err.Error())
}

// pageBody is a search answer; empty lists and tokens are omitted.
type modelsPage struct {
	RegisteredModels []registeredModel `json:"registered_models,omitempty"`
	NextPageToken    string            `json:"next_page_token,omitempty"`
}

type versionsPage struct {
	ModelVersions []modelVersion `json:"model_versions,omitempty"`
	NextPageToken string         `json:"next_page_token,omitempty"`
}

func (a *API) searchRegisteredModels(c *fiber.Ctx) error {
	filter, orderBy, max, offset, werr := searchParams(c, modelsDefaultMax, modelsMaxResults)
	if werr != nil {
		return wire.Send(c, werr)
	}
	cmp, err := search.ParseRegisteredModelsFilter(filter)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	obs, err := search.ParseRegisteredModelsOrderBy(orderBy)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	ms, more, err := a.searchModels(c.UserContext(), search.RegistryQuery{Filter: cmp, OrderBy: obs, Limit: max, Offset: offset})
	page := modelsPage{RegisteredModels: ms}
	if more {
		page.NextPageToken = wire.PageToken(offset + max)
	}
	return a.send(c, page, err)
}

func (a *API) searchModelVersions(c *fiber.Ctx) error {
	filter, orderBy, max, offset, werr := searchParams(c, versionsDefaultMax, versionsMaxResults)
	if werr != nil {
		return wire.Send(c, werr)
	}
	cmp, err := search.ParseModelVersionsFilter(filter)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	obs, err := search.ParseModelVersionsOrderBy(orderBy)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	vs, more, err := a.searchVersions(c.UserContext(), search.RegistryQuery{Filter: cmp, OrderBy: obs, Limit: max, Offset: offset})
	page := versionsPage{ModelVersions: vs}
	if more {
		page.NextPageToken = wire.PageToken(offset + max)
	}
	return a.send(c, page, err)
}
