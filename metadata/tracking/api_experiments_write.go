package tracking

import (
	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/wire"
)

// The experiment write routes of spec tracking-api.md §2.1 and §5.1.

func experimentNotFound(id int64) *wire.Error {
	return wire.Errorf(wire.ResourceDoesNotExist, "No Experiment with id=%d exists", id)
}

func experimentNotActive(id int64, stage string) *wire.Error {
	return wire.Errorf(wire.InvalidParameterValue, "The experiment %d must be in the 'active' state. Current state is %s.", id, stage)
}

// updateExperiment is POST experiments/update (rename).
func (a *API) updateExperiment(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.experimentID("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	name, werr := p.reqStr("new_name")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if werr := validateExperimentName("new_name", name); werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.renameExperiment(ctx, id, name)
	if err != nil && metadata.IsUniqueViolation(err) {
		// Upstream surfaces the IntegrityError as BAD_REQUEST.
		err = &wire.Error{Code: wire.BadRequest, Message: "Experiment(name=" + name + ") already exists. Error: an experiment with this name exists (active or deleted)", Cause: err}
	}
	return a.send(c, fiber.Map{}, err)
}

// deleteExperiment is POST experiments/delete: the experiment (which must
// be active) and every run in it become deleted, and the assessments that
// name one of those runs as their source run are deleted.
func (a *API) deleteExperiment(c *fiber.Ctx) error {
	return a.setExperimentStage(c, "active", "deleted")
}

// restoreExperiment is POST experiments/restore: the experiment (which
// must be deleted) and all its runs become active again.
func (a *API) restoreExperiment(c *fiber.Ctx) error {
	return a.setExperimentStage(c, "deleted", "active")
}

func (a *API) setExperimentStage(c *fiber.Ctx, from, to string) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.experimentID("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.moveExperiment(ctx, id, from, to)
	return a.send(c, fiber.Map{}, err)
}

// setExperimentTag is POST experiments/set-experiment-tag (upsert; the
// experiment must be active).
func (a *API) setExperimentTag(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.experimentID("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	key, werr := p.reqStr("key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	value, werr := p.str("value")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if werr := validateKey("key", key); werr != nil {
		return wire.Send(c, werr)
	}
	if runeLen(value) > maxExperimentTagValueLen {
		return wire.Send(c, exceedsLength("value", maxExperimentTagValueLen))
	}
	ctx := c.UserContext()
	err := a.setExperimentTagRow(ctx, id, key, value)
	return a.send(c, fiber.Map{}, err)
}

// deleteExperimentTag is POST experiments/delete-experiment-tag.
func (a *API) deleteExperimentTag(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.experimentID("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	key, werr := p.reqStr("key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.deleteExperimentTagRow(ctx, id, key)
	return a.send(c, fiber.Map{}, err)
}
