package tracking

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

type createExperimentRequest struct {
	Name             *string    `json:"name"`
	ArtifactLocation *string    `json:"artifact_location"`
	Tags             []KeyValue `json:"tags"`
}

// createExperiment is POST experiments/create (spec §2.1, §5.1).
func (a *API) createExperiment(c *fiber.Ctx) error {
	var req createExperimentRequest
	if err := wire.DecodeRequest(c, &req); err != nil {
		return wire.Send(c, err)
	}
	if req.Name == nil || *req.Name == "" {
		return wire.Send(c, wire.MissingParam("name"))
	}
	if err := validateExperimentName("name", *req.Name); err != nil {
		return wire.Send(c, err)
	}
	loc := ""
	if req.ArtifactLocation != nil && *req.ArtifactLocation != "" {
		if err := validateArtifactLocation(*req.ArtifactLocation); err != nil {
			return wire.Send(c, err)
		}
		loc = *req.ArtifactLocation
	}
	for i, t := range req.Tags {
		if err := validateExperimentTag(i, t); err != nil {
			return wire.Send(c, err)
		}
	}
	id, err := a.insertExperiment(c.UserContext(), *req.Name, loc, req.Tags)
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
	args, werr := wire.GetArgs(c, "experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := parseExperimentID("experiment_id", args["experiment_id"])
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
	args, werr := wire.GetArgs(c, "experiment_name")
	if werr != nil {
		return wire.Send(c, werr)
	}
	name := args["experiment_name"]
	if name == "" {
		return wire.Send(c, wire.MissingParam("experiment_name"))
	}
	if werr := wire.CheckText("experiment_name", name); werr != nil {
		return wire.Send(c, werr)
	}
	exp, err := a.experimentNamed(c.UserContext(), name)
	if isNoRows(err) {
		return wire.Send(c, wire.Errorf(wire.ResourceDoesNotExist, "Could not find experiment with name '%s'", name))
	}
	return a.send(c, fiber.Map{"experiment": exp}, err)
}
