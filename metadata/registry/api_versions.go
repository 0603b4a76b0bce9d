package registry

import (
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

func (a *API) createModelVersion(c *fiber.Ctx) error {
	r, name, werr := begin(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	source, werr := r.ReqStr("source")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if utf8.RuneCountInString(source) > maxSourceLen {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "'source' exceeds the maximum length of %d characters", maxSourceLen))
	}
	in := versionInput{name: name, source: source}
	for _, f := range []struct {
		field string
		dst   **string
		max   int
	}{{"run_id", &in.runID, 32}, {"run_link", &in.runLink, 500}, {"description", &in.description, maxDescriptionLen}} {
		s, ok, werr := r.Str(f.field)
		if werr == nil && utf8.RuneCountInString(s) > f.max {
			werr = wire.Errorf(wire.InvalidParameterValue, "'%s' exceeds the maximum length of %d characters", f.field, f.max)
		}
		if werr != nil {
			return wire.Send(c, werr)
		}
		if ok {
			v := s
			*f.dst = &v
		}
	}
	if in.tags, werr = readTags(r, "tags"); werr != nil {
		return wire.Send(c, werr)
	}
	isPrompt := false
	for _, t := range in.tags {
		if werr := a.validateVersionTag(t.Key, t.Value); werr != nil {
			return wire.Send(c, werr)
		}
		isPrompt = isPrompt || (t.Key == search.PromptTag && strings.EqualFold(t.Value, "true"))
	}
	modelID, _, werr := r.Str("model_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if !isPrompt {
		in.modelID = modelID
	}
	if werr := a.validateSource(c, source, in, modelID, isPrompt); werr != nil {
		return a.send(c, nil, werr)
	}
	v, err := a.insertVersion(c.UserContext(), in)
	a.emitVersionCreated(err, v, in, isPrompt)
	return a.send(c, fiber.Map{"model_version": v}, err)
}

// beginVersion reads the request, its name and version.
func beginVersion(c *fiber.Ctx) (*wire.Request, string, int64, *wire.Error) {
	r, name, werr := begin(c)
	if werr != nil {
		return nil, "", 0, werr
	}
	v, werr := versionParam(r)
	return r, name, v, werr
}

func (a *API) getModelVersion(c *fiber.Ctx) error {
	_, name, version, werr := beginVersion(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	v, err := a.readVersion(c.UserContext(), name, version)
	return a.send(c, fiber.Map{"model_version": v}, err)
}

func (a *API) updateModelVersion(c *fiber.Ctx) error {
	r, name, version, werr := beginVersion(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	desc, _, werr := r.Str("description")
	if werr == nil {
		werr = checkDescription(desc)
	}
	if werr != nil {
		return wire.Send(c, werr)
	}
	v, err := a.updateVersionDescription(c.UserContext(), name, version, desc)
	return a.send(c, fiber.Map{"model_version": v}, err)
}

func (a *API) deleteModelVersion(c *fiber.Ctx) error {
	_, name, version, werr := beginVersion(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	return a.send(c, fiber.Map{}, a.deleteVersion(c.UserContext(), name, version))
}

func (a *API) transitionStage(c *fiber.Ctx) error {
	r, name, version, werr := beginVersion(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	raw, werr := r.ReqStr("stage")
	if werr != nil {
		return wire.Send(c, werr)
	}
	stage, werr := canonicalStage(raw)
	if werr != nil {
		return wire.Send(c, werr)
	}
	archive, werr := r.Bool("archive_existing_versions")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if archive && stage != stageStaging && stage != stageProd {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"Model version transition cannot archive existing model versions because '%s' is not an Active stage. Valid stages are %s", stage, "Staging, Production"))
	}
	v, err := a.transition(c.UserContext(), name, version, stage, archive)
	return a.send(c, fiber.Map{"model_version": v}, err)
}

func (a *API) getDownloadURI(c *fiber.Ctx) error {
	_, name, version, werr := beginVersion(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	v, err := a.readVersion(c.UserContext(), name, version)
	if err != nil {
		return a.send(c, nil, err)
	}
	uri := ""
	switch {
	case v.storageLocation != nil && *v.storageLocation != "":
		uri = *v.storageLocation
	case v.Source != nil:
		uri = *v.Source
	}
	return c.JSON(fiber.Map{"artifact_uri": uri})
}

func (a *API) setModelVersionTag(c *fiber.Ctx) error {
	r, name, version, werr := beginVersion(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	key, _, werr := r.Str("key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	value, hasValue, werr := r.Str("value")
	if werr == nil && !hasValue {
		werr = wire.MissingParam("value")
	}
	if werr == nil {
		werr = a.validateVersionTag(key, value)
	}
	if werr != nil {
		return wire.Send(c, werr)
	}
	err := a.setVersionTag(c.UserContext(), name, version, keyValue{key, value})
	a.emitVersionTag(err, name, version, key, &value)
	return a.send(c, fiber.Map{}, err)
}

func (a *API) deleteModelVersionTag(c *fiber.Ctx) error {
	r, name, version, werr := beginVersion(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	key, werr := r.ReqStr("key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	err := a.deleteVersionTag(c.UserContext(), name, version, key)
	a.emitVersionTag(err, name, version, key, nil)
	return a.send(c, fiber.Map{}, err)
}

// validateSource applies upstream's source rules in its order: the
// optional regex, then the prompt rule or the run / logged-model rule
// (the owner is looked up only for a local source).
func (a *API) validateSource(c *fiber.Ctx, source string, in versionInput, modelID string, isPrompt bool) error {
	if werr := checkSourceRegex(a.sourceRegex, source); werr != nil {
		return werr
	}
	if isPrompt {
		if werr := checkPromptSource(source); werr != nil {
			return werr
		}
		return nil
	}
	owner := sourceOwner{kind: "run_id"}
	if in.runID != nil {
		owner.id = *in.runID
	}
	if modelID != "" {
		owner = sourceOwner{kind: "model_id", id: modelID}
	}
	local, werr := isLocalURI(source)
	if werr != nil {
		return werr
	}
	if local && owner.id != "" {
		root, err := a.artifactRoot(c.UserContext(), owner.kind, owner.id)
		if err != nil {
			return err
		}
		owner.root, owner.found = root, true
	}
	if werr := checkSource(source, owner); werr != nil {
		return werr
	}
	return nil
}
