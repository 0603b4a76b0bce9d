package tracking

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// createExperiment is POST experiments/create (spec §2.1, §5.1).
func (a *API) createExperiment(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	name, werr := p.reqStr("name")
	if werr == nil {
		werr = validateExperimentName("name", name)
	}
	if werr != nil {
		return wire.Send(c, werr)
	}
	loc, werr := p.str("artifact_location")
	if werr == nil && loc != "" {
		werr = validateArtifactLocation(loc)
	}
	if werr != nil {
		return wire.Send(c, werr)
	}
	tags, werr := p.keyValues("tags")
	if werr != nil {
		return wire.Send(c, werr)
	}
	for i, t := range tags {
		if err := validateExperimentTag(i, t); err != nil {
			return wire.Send(c, err)
		}
	}
	id, err := a.insertExperiment(c.UserContext(), name, resolveLocalLocation(loc), tags)
	return a.send(c, fiber.Map{"experiment_id": strconv.FormatInt(id, 10)}, err)
}

func validateExperimentTag(i int, t KeyValue) *wire.Error {
	field := fieldf("tags[%d].key", i)
	if t.Key == "" {
		return wire.MissingParam(field)
	}
	if err := validateKey(field, t.Key); err != nil {
		return err
	}
	if err := wire.CheckText(fieldf("tags[%d].value", i), t.Value); err != nil {
		return err
	}
	if len([]rune(t.Value)) > maxExperimentTagValueLen {
		return wire.Errorf(wire.InvalidParameterValue, "'%s' exceeds the maximum length of %d characters", fieldf("tags[%d].value", i), maxExperimentTagValueLen)
	}
	return nil
}

// getExperiment is GET experiments/get.
func (a *API) getExperiment(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.experimentID("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	exp, err := a.experimentByID(c.UserContext(), id)
	if isNoRows(err) {
		return wire.Send(c, wire.Errorf(wire.ResourceDoesNotExist, "No Experiment with id=%d exists", id))
	}
	return a.send(c, fiber.Map{"experiment": exp}, err)
}

// getExperimentByName is GET experiments/get-by-name; it finds deleted
// experiments too.
func (a *API) getExperimentByName(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	name, werr := p.reqStr("experiment_name")
	if werr != nil {
		return wire.Send(c, werr)
	}
	exp, err := a.experimentNamed(c.UserContext(), name)
	if isNoRows(err) {
		return wire.Send(c, wire.Errorf(wire.ResourceDoesNotExist, "Could not find experiment with name '%s'", name))
	}
	return a.send(c, fiber.Map{"experiment": exp}, err)
}
