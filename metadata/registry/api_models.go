package registry

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// modelName reads and validates the required name parameter (3.11
// validates it first in every registry call).
func modelName(r *wire.Request, field string) (string, *wire.Error) {
	name, ok, werr := r.Str(field)
	if werr != nil {
		return "", werr
	}
	if !ok || name == "" {
		return "", wire.MissingParam(field)
	}
	return name, validateName(field, name)
}

// begin reads the request and its name.
func begin(c *fiber.Ctx) (*wire.Request, string, *wire.Error) {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return nil, "", werr
	}
	name, werr := modelName(r, "name")
	return r, name, werr
}

func (a *API) createRegisteredModel(c *fiber.Ctx) error {
	r, name, werr := begin(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	desc, hasDesc, werr := r.Str("description")
	if werr == nil {
		werr = checkDescription(desc)
	}
	if werr != nil {
		return wire.Send(c, werr)
	}
	tags, werr := readTags(r, "tags")
	if werr != nil {
		return wire.Send(c, werr)
	}
	for _, t := range tags {
		if werr := validateTag(t.Key, t.Value, maxModelTagValue); werr != nil {
			return wire.Send(c, werr)
		}
	}
	var d *string
	if hasDesc {
		d = &desc
	}
	m, err := a.insertModel(c.UserContext(), name, d, tags)
	a.emitModelCreated(err, name, d, tags)
	return a.send(c, fiber.Map{"registered_model": m}, err)
}

func (a *API) getRegisteredModel(c *fiber.Ctx) error {
	_, name, werr := begin(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	m, err := a.readModel(c.UserContext(), name)
	return a.send(c, fiber.Map{"registered_model": m}, err)
}

func (a *API) renameRegisteredModel(c *fiber.Ctx) error {
	r, name, werr := begin(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	newName, werr := modelName(r, "new_name")
	if werr != nil {
		return wire.Send(c, werr)
	}
	m, err := a.renameModel(c.UserContext(), name, newName)
	return a.send(c, fiber.Map{"registered_model": m}, err)
}

func (a *API) updateRegisteredModel(c *fiber.Ctx) error {
	r, name, werr := begin(c)
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
	m, err := a.updateModelDescription(c.UserContext(), name, desc)
	return a.send(c, fiber.Map{"registered_model": m}, err)
}

func (a *API) deleteRegisteredModel(c *fiber.Ctx) error {
	_, name, werr := begin(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	return a.send(c, fiber.Map{}, a.deleteModel(c.UserContext(), name))
}

func (a *API) getLatestVersions(c *fiber.Ctx) error {
	r, name, werr := begin(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	raw, werr := r.Strs("stages")
	if werr != nil {
		return wire.Send(c, werr)
	}
	stages := make([]string, 0, len(raw))
	for _, s := range raw {
		st, werr := canonicalStage(s)
		if werr != nil {
			return wire.Send(c, werr)
		}
		stages = append(stages, st)
	}
	vs, err := a.readLatest(c.UserContext(), name, stages)
	if vs == nil {
		vs = []modelVersion{}
	}
	return a.send(c, latestBody{vs}, err)
}

// latestBody omits an empty list, as upstream's message_to_json.
type latestBody struct {
	ModelVersions []modelVersion `json:"model_versions,omitempty"`
}

func (a *API) setRegisteredModelTag(c *fiber.Ctx) error {
	r, name, werr := begin(c)
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
		werr = validateTag(key, value, maxModelTagValue)
	}
	if werr != nil {
		return wire.Send(c, werr)
	}
	err := a.setModelTag(c.UserContext(), name, keyValue{key, value})
	a.emitModelTag(err, name, key, &value)
	return a.send(c, fiber.Map{}, err)
}

func (a *API) deleteRegisteredModelTag(c *fiber.Ctx) error {
	r, name, werr := begin(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	key, werr := r.ReqStr("key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	err := a.deleteModelTag(c.UserContext(), name, key)
	a.emitModelTag(err, name, key, nil)
	return a.send(c, fiber.Map{}, err)
}

func (a *API) setAlias(c *fiber.Ctx) error {
	r, name, werr := begin(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	alias, _, werr := r.Str("alias")
	if werr == nil {
		werr = validateAlias(alias)
	}
	if werr != nil {
		return wire.Send(c, werr)
	}
	version, werr := versionParam(r)
	if werr != nil {
		return wire.Send(c, werr)
	}
	err := a.setAliasRow(c.UserContext(), name, alias, version)
	a.emitAlias(err, name, alias, version)
	return a.send(c, fiber.Map{}, err)
}

func (a *API) deleteAlias(c *fiber.Ctx) error {
	r, name, werr := begin(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	alias, werr := r.ReqStr("alias")
	if werr != nil {
		return wire.Send(c, werr)
	}
	err := a.deleteAliasRow(c.UserContext(), name, alias)
	a.emitAlias(err, name, alias, 0)
	return a.send(c, fiber.Map{}, err)
}

func (a *API) getByAlias(c *fiber.Ctx) error {
	r, name, werr := begin(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	alias, werr := r.ReqStr("alias")
	if werr != nil {
		return wire.Send(c, werr)
	}
	v, err := a.versionByAlias(c.UserContext(), name, alias)
	return a.send(c, fiber.Map{"model_version": v}, err)
}

// versionParam reads the required version (a string holding an integer).
func versionParam(r *wire.Request) (int64, *wire.Error) {
	s, werr := r.ReqStr("version")
	if werr != nil {
		return 0, werr
	}
	return parseVersion(s)
}

// readTags reads a list of {key, value} objects; an absent or null member
// is "" (the callers' validateTag then refuses an empty key).
func readTags(r *wire.Request, name string) ([]keyValue, *wire.Error) {
	objs, werr := r.Objects(name)
	if werr != nil {
		return nil, werr
	}
	out := make([]keyValue, 0, len(objs))
	for i, obj := range objs {
		path := fmt.Sprintf("%s[%d]", name, i)
		var kv keyValue
		if kv.Key, werr = member(obj, path, "key"); werr != nil {
			return nil, werr
		}
		if kv.Value, werr = member(obj, path, "value"); werr != nil {
			return nil, werr
		}
		out = append(out, kv)
	}
	return out, nil
}

// member is an optional string member of a nested message, "" when
// absent or null.
func member(obj map[string]any, path, name string) (string, *wire.Error) {
	v := obj[name]
	if v == nil {
		return "", nil
	}
	return wire.AsString(path+"."+name, v)
}
